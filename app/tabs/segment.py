"""Segment tab: the class mask over the image with a legend, and the trees the model built."""

from __future__ import annotations

import html
import time

import cv2
import gradio as gr
import numpy as np

from grootvl_core.models import capture_trees
from grootvl_core.viz import legend_entries, overlay_mask

from ..errors import user_errors
from ..examples import photo_examples, scene_examples
from ..images import image_input, load_user_image
from ..limits import STATE_TTL_S
from ..model_cache import ModelCache
from ..outputs import png
from ..tree_panel import VIEW_SIZE, TreePanel, tree_state
from ..zoo_info import default_model, model_choices

__all__ = ["build", "render_overlay", "legend_html", "segment"]


def render_overlay(seg: dict, opacity: float) -> np.ndarray:
    """The mask over the image at display size (the mask scaled with nearest neighbours)."""
    if not seg:
        raise ValueError("run the model first")
    if not 0.0 <= float(opacity) <= 1.0:
        raise ValueError(f"opacity must lie in [0, 1], got {opacity}")
    image, mask = seg["image"], seg["mask"]
    scale = VIEW_SIZE / max(mask.shape)
    size = (max(1, round(mask.shape[1] * scale)), max(1, round(mask.shape[0] * scale)))
    big_image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
    big_mask = cv2.resize(mask.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
    return overlay_mask(big_image, big_mask, seg["palette"], alpha=float(opacity))


def legend_html(seg: dict) -> str:
    items = []
    for name, color, frac in legend_entries(seg["mask"], seg["class_names"], seg["palette"]):
        items.append(
            f'<span class="legend-item"><span class="legend-swatch" style="background:{color}"></span>'
            f"{html.escape(name)} <small>{100 * frac:.1f}%</small></span>"
        )
    return '<div class="legend">' + " ".join(items) + "</div>"


def segment(cache: ModelCache, image, model_name: str, opacity: float, flip: bool = False):
    """The tab's outputs; ``flip``: average with the mirrored image's prediction (flip test-time
    augmentation, as the bundled model card's "with flip" mIoU; two forward passes)."""
    pil, note = load_user_image(image)
    loaded = cache.get(model_name, "segmentation")
    segmenter = loaded.predictor
    start = time.perf_counter()
    with loaded.lock, capture_trees(segmenter.model) as records:
        result = segmenter.predict(pil, flip=bool(flip))
    elapsed = (time.perf_counter() - start) * 1000
    if flip:  # the mirrored pass recorded its trees after the image's own: show the image's
        records = records[: len(records) // 2]
    seg = {"image": result.image, "mask": result.mask, "palette": result.palette, "class_names": result.class_names}
    size = segmenter.preprocess.input_size
    passes = "two forward passes (image and mirror, flip averaging)" if flip else "forward pass"
    lines = [f"`{model_name}` on a {size}x{size} input: {elapsed:.0f} ms ({passes} with tree recording)."]
    if note:
        lines.append(note)
    state = tree_state(records, result.image)
    return [png(render_overlay(seg, opacity)), legend_html(seg), "\n\n".join(lines), seg, *TreePanel.updates(state)]


def build(cache: ModelCache) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input(label="Image", elem_id="segment-input", height=320)
            model = gr.Dropdown(
                model_choices("segmentation"),
                value=default_model("segmentation"),
                label="Model",
                elem_id="segment-model",
            )
            run = gr.Button("Segment", variant="primary", elem_id="segment-run")
        with gr.Column(scale=1):
            overlay = gr.Image(label="Mask", interactive=False, format="png", elem_id="segment-mask")
            opacity = gr.Slider(0.0, 1.0, value=0.55, step=0.05, label="Mask opacity")
            flip = gr.Checkbox(
                False,
                label="Flip test-time augmentation",
                info="average with the mirrored image's prediction (two passes; the bundled "
                "model's card: 70.65% mIoU without, 72.87% with)",
                elem_id="segment-flip",
            )
            legend = gr.HTML(elem_id="segment-legend")
            info = gr.Markdown()
    gr.Examples(scene_examples(), inputs=[image], label="Fashion-MNIST scenes (test split, for the bundled model)")
    gr.Examples(photo_examples(), inputs=[image], label="Photos")
    seg_state = gr.State(None, time_to_live=STATE_TTL_S)
    panel = TreePanel("segment")
    panel.wire()

    def on_run(img, name, alpha, mirror=False, progress=gr.Progress(track_tqdm=True)):
        with user_errors("segment"):
            return segment(cache, img, name, alpha, mirror)

    def on_opacity(seg, alpha):
        with user_errors("segment"):
            return png(render_overlay(seg, alpha))

    panel.draw_after(
        run.click(
            on_run,
            [image, model, opacity, flip],
            [overlay, legend, info, seg_state, *panel.outputs()],
            api_name="segment",
        )
    )
    opacity.input(on_opacity, [seg_state, opacity], [overlay], api_name=False)
