"""Receptive field tab: the effective receptive field of each stage of a vision model (RepLKNet's
method, ``grootvl_core.viz.effective_receptive_fields``), averaged over the model's example images,
computed on request and kept per model (:class:`ErfCache`)."""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

import gradio as gr
import numpy as np

from grootvl_core import zoo
from grootvl_core.data.fashion_mnist import FASHION_MNIST_CLASSES
from grootvl_core.data.scenes import SCENE_CLASSES
from grootvl_core.viz import StageERF, effective_receptive_fields, overlay_heatmap

from ..errors import user_errors
from ..examples import fashion_examples, photo_examples, scene_examples
from ..images import load_user_image
from ..model_cache import ModelCache
from ..outputs import png
from ..zoo_info import default_model, model_choices

__all__ = ["ERF_SIZE", "ErfCache", "ErfResult", "build", "compute_erf", "erf_examples", "render_erf"]

ERF_SIZE = 224  # side of each stage's picture
TASKS = ("classification", "segmentation")


def erf_examples(entry: zoo.ZooEntry) -> list[str]:
    """The example images a model is averaged over: the test images of the data it was trained on
    for the bundled models, the photos for the rest."""
    labels = tuple(entry.labels) if isinstance(entry.labels, (tuple, list)) else entry.labels
    if labels == tuple(FASHION_MNIST_CLASSES):
        return fashion_examples()
    if labels == tuple(SCENE_CLASSES):
        return scene_examples()
    return photo_examples()


class ErfResult:
    """What one model's computation gives: per-stage ERFs, the images used, the seconds it took."""

    def __init__(self, name: str, stages: list[StageERF], images: int, seconds: float, input_size: int):
        self.name, self.stages, self.images, self.seconds, self.input_size = name, stages, images, seconds, input_size


def compute_erf(cache: ModelCache, name: str) -> ErfResult:
    """Per-stage ERFs of model ``name`` (a classifier, or a segmenter's backbone) over its examples."""
    entry = zoo.get_entry(name)
    if entry.task not in TASKS:
        raise ValueError(f"{name!r} is a {entry.task} model; the receptive field needs a vision model")
    loaded = cache.get(name, entry.task)
    predictor = loaded.predictor
    paths = erf_examples(entry)
    if not paths:
        raise ValueError(f"no example images for {name!r} in assets/")
    if entry.task == "classification":
        backbone = predictor.model
        inputs = [predictor.to_tensor(load_user_image(p)[0]) for p in paths]
    else:
        backbone = predictor.model.backbone
        inputs = [predictor.to_input(load_user_image(p)[0])[0] for p in paths]
    # NOTE: small batches for the ImageNet-size models bound the memory of a backward pass (and
    # how long the model's lock is held at a time)
    batch = 8 if entry.preprocess.input_size <= 128 else 2
    start = time.perf_counter()
    # the model lock, batch by batch: no tree-recording pass of another request sees these passes
    stages = effective_receptive_fields(backbone, inputs, around_each=lambda: loaded.lock, batch_size=batch)
    return ErfResult(name, stages, len(inputs), time.perf_counter() - start, entry.preprocess.input_size)


class ErfCache:
    """Computed ERFs by model name, at most ``capacity`` (least recently used dropped); one
    computation per name at a time (others asking for it wait for that one)."""

    def __init__(self, capacity: int = 8):
        if capacity < 1:
            raise ValueError(f"ErfCache: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._results: OrderedDict[str, ErfResult] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[str, threading.Lock] = {}

    def get(self, cache: ModelCache, name: str) -> tuple[ErfResult, bool]:
        """``(result, was_cached)``."""
        with self._lock:
            if name in self._results:
                self._results.move_to_end(name)
                return self._results[name], True
            computing = self._computing.setdefault(name, threading.Lock())
        with computing:
            with self._lock:
                if name in self._results:
                    return self._results[name], True
            result = compute_erf(cache, name)
            with self._lock:
                self._results[name] = result
                while len(self._results) > self.capacity:
                    self._results.popitem(last=False)
                self._computing.pop(name, None)
            return result, False


def _caption(s: StageERF) -> str:
    return f"stage {s.stage + 1} ({s.grid[0]}x{s.grid[1]} output)"


def _area_table(result: ErfResult) -> str:
    shares = list(result.stages[0].area) if result.stages else []
    head = "| stage | output | " + " | ".join(f"{int(100 * a)}% of the contribution within" for a in shares) + " |"
    rows = [head, "|" + "---|" * (2 + len(shares))]
    for s in result.stages:
        cells = " | ".join(f"{100 * s.area[a]:.1f}% of the input" for a in shares)
        rows.append(f"| {s.stage + 1} | {s.grid[0]}x{s.grid[1]} | {cells} |")
    return "\n".join(rows)


def render_erf(result: ErfResult, cached: bool) -> tuple[list[tuple[np.ndarray, str]], str]:
    """``([(picture, caption) per stage], summary)``: each stage's ``log10(1 + m) / max`` map."""
    pictures = []
    for s in result.stages:
        side = s.display.shape[0]
        blank = np.zeros((side, side, 3), np.uint8)
        centre = (side // 2, side // 2)
        pictures.append(
            (
                overlay_heatmap(
                    blank,
                    s.display,
                    alpha=1.0,
                    size=ERF_SIZE,
                    colormap_name="viridis",
                    log_scale=False,
                    value_range=(0.0, 1.0),
                    mark=centre,
                ),
                _caption(s),
            )
        )
    how = "from the cache" if cached else f"computed in {result.seconds:.1f} s"
    summary = (
        f"`{result.name}`, {result.input_size}x{result.input_size} input, averaged over {result.images} example "
        f"images ({how}). Each map: the gradient of the stage's central output (ReLU, summed over channels) "
        "with respect to the input pixels, `log10(1 + m)` scaled to 1 (RepLKNet). The percentages are "
        "the smallest centred squares holding that share of the contribution, as a share of the input area."
    )
    return pictures, summary + "\n\n" + _area_table(result)


def build(cache: ModelCache) -> None:
    results = ErfCache()
    choices = model_choices("classification") + model_choices("segmentation")
    gr.Markdown(
        "**Effective receptive field.** How far each stage of a model looks: the input pixels its "
        "central output depends on, averaged over the model's example images (computed on request, "
        "then kept). A tree scan can reach along the image's structure within one block, so a GrootV "
        "stage's field need not be a square that grows with depth."
    )
    with gr.Row():
        model = gr.Dropdown(choices, value=default_model("classification"), label="Model", elem_id="erf-model")
        run = gr.Button("Compute the receptive fields", variant="primary", elem_id="erf-run", scale=0)
    gallery = gr.Gallery(
        label="Per stage (the ring: the central output's position)",
        columns=4,
        rows=1,
        height=300,
        object_fit="contain",
        elem_id="erf-gallery",
    )
    info = gr.Markdown(elem_id="erf-info")

    def on_run(name, progress=gr.Progress(track_tqdm=True)):
        with user_errors("receptive field"):
            if not name:
                raise ValueError("pick a model")
            result, cached = results.get(cache, name)
            pictures, summary = render_erf(result, cached)
            return [(png(p), c) for p, c in pictures], summary

    run.click(on_run, [model], [gallery, info], api_name="erf")
