"""Classify tab: top-5 labels of an image, and the trees the model built for it."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
import torch

from grootvl_core.models import capture_trees

from ..errors import user_errors
from ..examples import fashion_examples, photo_examples
from ..images import image_input, load_user_image
from ..model_cache import ModelCache
from ..tree_panel import TreePanel, tree_state
from ..zoo_info import default_model, model_choices

__all__ = ["build", "classify", "input_picture"]

TOP_K = 5


def input_picture(x: torch.Tensor, mean, std) -> np.ndarray:
    """The normalised ``(C, S, S)`` model input back as ``(S, S, 3)`` uint8 RGB (what the model saw)."""
    m = torch.tensor(mean, dtype=x.dtype)[:, None, None]
    s = torch.tensor(std, dtype=x.dtype)[:, None, None]
    img = ((x.cpu() * s + m).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def classify(cache: ModelCache, image, model_name: str):
    """Top-k ``{label: probability}``, a note, and the tree panel's outputs (the recorded trees)."""
    pil, note = load_user_image(image)
    loaded = cache.get(model_name, "classification")
    clf = loaded.predictor
    x = clf.to_tensor(pil)[None]
    start = time.perf_counter()
    with loaded.lock, capture_trees(clf.model) as records:
        probs = clf.predict_torch(x)[0].cpu()
    elapsed = (time.perf_counter() - start) * 1000
    values, indices = probs.topk(min(TOP_K, probs.numel()))
    labels = clf.labels
    top = {labels[int(i)]: float(p) for p, i in zip(values, indices)}
    size = clf.preprocess.input_size
    lines = [f"`{model_name}` on a {size}x{size} input: {elapsed:.0f} ms (forward pass with tree recording)."]
    if note:
        lines.append(note)
    if loaded.entry.labels != "imagenet-1k":
        lines.append(f"This model knows {len(labels)} classes ({', '.join(labels)}); anything else gets the "
                     "nearest of them.")
    state = tree_state(records, input_picture(x[0], clf.preprocess.mean, clf.preprocess.std))
    return [top, "\n\n".join(lines), *TreePanel.updates(state)]


def build(cache: ModelCache) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input(label="Image", elem_id="classify-input", height=320)
            model = gr.Dropdown(model_choices("classification"), value=default_model("classification"),
                                label="Model", elem_id="classify-model")
            run = gr.Button("Classify", variant="primary", elem_id="classify-run")
        with gr.Column(scale=1):
            labels = gr.Label(num_top_classes=TOP_K, label="Top-5", elem_id="classify-labels")
            info = gr.Markdown(elem_id="classify-info")
    gr.Examples(fashion_examples(), inputs=[image], label="Fashion-MNIST test images (for the bundled model)",
                examples_per_page=10)
    gr.Examples(photo_examples(), inputs=[image], label="Photos (for the ImageNet models)")
    panel = TreePanel("classify")
    panel.wire()

    def on_run(img, name, progress=gr.Progress(track_tqdm=True)):
        with user_errors("classify"):
            return classify(cache, img, name)

    panel.draw_after(run.click(on_run, [image, model], [labels, info, *panel.outputs()], api_name="classify"))
