"""Tree on pixels tab: the minimum spanning tree of the raw image's pixel grid, no model needed."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np

from grootvl_core.viz import draw_tree, pixel_tree

from ..errors import user_errors
from ..examples import photo_examples, scene_examples
from ..images import image_input, load_user_image
from ..outputs import png
from ..tree_panel import VIEW_SIZE

__all__ = ["build", "tree_on_pixels"]


def tree_on_pixels(image, max_side: int = 48, distance: str = "l2", color_by: str = "depth"):
    """The tree picture and a note: the image is area-downscaled to ``max_side`` on its longer side,
    each remaining pixel is a vertex of the 4-connected grid, and edges weigh the colour distance."""
    pil, note = load_user_image(image)
    max_side = int(max_side)
    if not 2 <= max_side <= 128:
        raise ValueError(f"grid size must lie in [2, 128], got {max_side}")
    start = time.perf_counter()
    tree = pixel_tree(np.asarray(pil), max_side=max_side, distance=distance)
    elapsed = (time.perf_counter() - start) * 1000
    h, w = tree["grid"]
    picture = draw_tree(
        np.asarray(pil),
        tree["edges"],
        (h, w),
        color_by=color_by,
        edge_values=tree["weights"] if color_by == "weight" else None,
        size=VIEW_SIZE,
    )
    text = (
        f"{h}x{w} grid, {h * w} vertices, {len(tree['edges'])} tree edges; MST + BFS in {elapsed:.0f} ms. "
        "Root (white dot) at the top-left pixel."
    )
    return picture, " ".join(t for t in (text, note) if t)


def build() -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input(label="Image", elem_id="pixels-input", height=320)
            max_side = gr.Slider(4, 128, value=48, step=1, label="Grid size (longer side)")
            distance = gr.Radio(
                ["l2", "cosine"],
                value="l2",
                label="Edge weight",
                info="l2: squared RGB distance; cosine: exp(-cos) of the RGB vectors",
            )
            color_by = gr.Radio(["depth", "weight"], value="depth", label="Colour edges by")
            run = gr.Button("Build the tree", variant="primary", elem_id="pixels-run")
        with gr.Column(scale=1):
            picture = gr.Image(label="Minimum spanning tree", interactive=False, format="png", elem_id="pixels-tree")
            info = gr.Markdown()
    gr.Examples(photo_examples() + scene_examples()[:1], inputs=[image], label="Examples")

    def on_run(img, side, dist, color):
        with user_errors("tree on pixels"):
            picture, text = tree_on_pixels(img, side, dist, color)
            return png(picture), text

    run.click(on_run, [image, max_side, distance, color_by], [picture, info], api_name="pixel_tree")
