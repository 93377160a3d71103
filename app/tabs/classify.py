"""Classify tab: top-5 labels of an image, and the trees the model built for it."""

from __future__ import annotations

import time

import gradio as gr
import numpy as np
import torch

from grootvl_core.models import capture_trees

from ..errors import failure_message, user_errors
from ..examples import fashion_examples, photo_examples
from ..images import image_input, load_user_image
from ..model_cache import ModelCache
from ..tree_panel import TreePanel, tree_state
from ..zoo_info import default_model, model_choices

__all__ = ["MAX_BATCH", "build", "classify_batch", "input_picture", "record_trees"]

TOP_K = 5
MAX_BATCH = 16  # requests the queue may gather into one /classify call


def input_picture(x: torch.Tensor, mean, std) -> np.ndarray:
    """The normalised ``(C, S, S)`` model input back as ``(S, S, 3)`` uint8 RGB (what the model saw)."""
    m = torch.tensor(mean, dtype=x.dtype)[:, None, None]
    s = torch.tensor(std, dtype=x.dtype)[:, None, None]
    img = ((x.cpu() * s + m).clamp(0, 1) * 255 + 0.5).to(torch.uint8).permute(1, 2, 0).numpy()
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def classify_batch(cache: ModelCache, images: list, model_names: list[str]) -> tuple[list, list[str]]:
    """The ``/classify`` endpoint, batched: Gradio's queue gathers up to :data:`MAX_BATCH` waiting
    requests (from any sessions) into one call, and each model runs one forward pass for all of its
    requests. Returns ``(labels, notes)``, one per request: the top-k ``{label: probability}`` (None
    when that request failed) and a note (the timing, or what was wrong with that request alone: a
    file that is not an image, a model of another task never fails the rest of the batch)."""
    n = len(images)
    labels: list = [None] * n
    notes = [""] * n
    models: dict = {}  # name -> the LoadedModel its requests run on
    todo: dict[str, list[tuple[int, torch.Tensor, str]]] = {}
    for i, (image, name) in enumerate(zip(images, model_names)):
        try:
            if not name:
                raise ValueError("no model given: pick one of the zoo's classification models")
            pil, note = load_user_image(image)
            if name not in models:
                models[name] = cache.get(name, "classification")
            todo.setdefault(name, []).append((i, models[name].predictor.to_tensor(pil), note))
        except Exception as exc:  # noqa: BLE001 - this request's message, not the batch's failure
            notes[i] = "**Cannot classify this input.** " + failure_message("classify", exc)[0]
    for name, items in todo.items():
        try:
            loaded = models[name]
            clf = loaded.predictor
            start = time.perf_counter()
            with loaded.lock:  # not while another request records this model's trees
                probs = clf.predict_torch(torch.stack([x for _, x, _ in items])).cpu()
            elapsed = (time.perf_counter() - start) * 1000
        except Exception as exc:  # noqa: BLE001
            for i, _, _ in items:
                notes[i] = "**Cannot classify this input.** " + failure_message("classify", exc)[0]
            continue
        size = clf.preprocess.input_size
        batch = f", {len(items)} images in one batch" if len(items) > 1 else ""
        for (i, _, note), p in zip(items, probs):
            values, indices = p.topk(min(TOP_K, p.numel()))
            labels[i] = {clf.labels[int(k)]: float(v) for v, k in zip(values, indices)}
            lines = [f"`{name}` on a {size}x{size} input: {elapsed:.0f} ms (forward pass{batch})."]
            if note:
                lines.append(note)
            if loaded.entry.labels != "imagenet-1k":
                lines.append(
                    f"This model knows {len(clf.labels)} classes ({', '.join(clf.labels)}); anything else "
                    "gets the nearest of them."
                )
            notes[i] = "\n\n".join(lines)
    return labels, notes


def _choices_checked_per_request(dropdown: gr.Dropdown) -> gr.Dropdown:
    """Let a value outside the dropdown's choices reach the batched callback (which rejects it for
    that request alone, via the model cache) instead of failing the whole batch in preprocessing."""
    check = dropdown.preprocess

    def preprocess(payload):
        try:
            return check(payload)
        except gr.Error:
            return str(payload)

    dropdown.preprocess = preprocess  # this instance only
    return dropdown


def record_trees(cache: ModelCache, image, model_name: str) -> list:
    """The tree panel's outputs for one image: a forward pass that records every block's tree
    (``capture_trees``), kept in the session's state so the views never recompute it."""
    pil, _ = load_user_image(image)
    loaded = cache.get(model_name, "classification")
    clf = loaded.predictor
    x = clf.to_tensor(pil)[None]
    with loaded.lock, capture_trees(clf.model) as records:
        clf.predict_torch(x)
    return TreePanel.updates(tree_state(records, input_picture(x[0], clf.preprocess.mean, clf.preprocess.std)))


def build(cache: ModelCache) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            image = image_input(label="Image", elem_id="classify-input", height=320)
            model = _choices_checked_per_request(
                gr.Dropdown(
                    model_choices("classification"),
                    value=default_model("classification"),
                    label="Model",
                    elem_id="classify-model",
                )
            )
            run = gr.Button("Classify", variant="primary", elem_id="classify-run")
        with gr.Column(scale=1):
            labels = gr.Label(num_top_classes=TOP_K, label="Top-5", elem_id="classify-labels")
            info = gr.Markdown(elem_id="classify-info")
    gr.Examples(
        fashion_examples(),
        inputs=[image],
        label="Fashion-MNIST test images (for the bundled model)",
        examples_per_page=10,
    )
    gr.Examples(photo_examples(), inputs=[image], label="Photos (for the ImageNet models)")
    panel = TreePanel("classify")
    panel.wire()

    def on_model(name, progress=gr.Progress(track_tqdm=True)):
        # load (download, with progress) the picked model now, not inside a batch of predictions
        with user_errors("load model"):
            cache.get(name, "classification")

    def on_trees(img, name, progress=gr.Progress(track_tqdm=True)):
        with user_errors("classify"):
            return record_trees(cache, img, name)

    model.input(on_model, [model], [], api_name=False)
    predicted = run.click(
        lambda images, names: classify_batch(cache, images, names),
        [image, model],
        [labels, info],
        api_name="classify",
        batch=True,
        max_batch_size=MAX_BATCH,
    )
    # the trees follow the labels: an unbatched step, since it fills this session's state
    panel.draw_after(predicted.success(on_trees, [image, model], panel.outputs(), api_name="classify_trees"))
