"""``python -m grootvl_core train {classify,segment,lm}``: run a bundled-model recipe end to end.

Trains (resumable), evaluates, and writes ``<out>/model/``: the Hub-style folder with its model
card and ``reference_outputs.json`` (fixed inputs and the exact outputs, checked by the tests of
the shipped checkpoints). ``--bundle NAME`` also copies that folder to ``checkpoints/NAME``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib import import_module
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .bundle import write_bundle
from .cards import classifier_card, lm_card, segmenter_card
from .loop import record_command, resolve_device

__all__ = [
    "TASKS",
    "RECIPES",
    "TaskRecipe",
    "run_training",
    "classifier_reference_outputs",
    "segmenter_reference_outputs",
    "lm_reference_outputs",
    "mask_to_rows",
    "rows_to_mask",
    "REFERENCE_PROMPTS",
]

REFERENCE_PROMPTS = ("The meaning of life", "Q: What is a computer?\nA:", "Love is")


def classifier_reference_outputs(model, input_size: int, count: int = 8, root=None) -> dict:
    """Predicted classes (and rounded top probabilities) of the first ``count`` test images."""
    from ..data.fashion_mnist import load_fashion_mnist
    from .fashion_mnist import preprocess_batch

    images, labels = load_fashion_mnist("test", root)
    with torch.no_grad():
        probs = model(preprocess_batch(torch.from_numpy(np.array(images[:count])), input_size)).softmax(-1)
    return {
        "inputs": {"dataset": "fashion-mnist", "split": "test", "indices": list(range(count))},
        "true_labels": labels[:count].tolist(),
        "predicted": probs.argmax(-1).tolist(),
        "top_probability": [round(float(p), 4) for p in probs.max(-1).values],
    }


def mask_to_rows(mask: np.ndarray) -> list[str]:
    """A class mask as readable text rows (one base-36 digit per pixel)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    if mask.max() >= len(digits):
        raise ValueError("mask_to_rows: more than 36 classes")
    return ["".join(digits[v] for v in row) for row in mask.tolist()]


def rows_to_mask(rows: list[str]) -> np.ndarray:
    return np.array([[int(ch, 36) for ch in row] for row in rows], dtype=np.int64)


def segmenter_reference_outputs(model, size: int, count: int = 2, root=None) -> dict:
    """Predicted masks of the first ``count`` evaluation scenes."""
    from ..data.scenes import FashionScenes
    from .scenes import EVAL_SEED, normalise

    scenes = FashionScenes("test", count, size=size, seed=EVAL_SEED, root=root)
    x = normalise(torch.stack([scenes[i][0] for i in range(count)]))
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    return {
        "inputs": {
            "dataset": "fashion-mnist-scenes",
            "split": "test",
            "seed": EVAL_SEED,
            "size": size,
            "indices": list(range(count)),
        },
        "predicted_masks": [mask_to_rows(m) for m in pred],
    }


def lm_reference_outputs(model, tokenizer, max_new_tokens: int = 24) -> dict:
    """Greedy continuations of :data:`REFERENCE_PROMPTS` (token ids and text)."""
    from ..generation import generate

    out = []
    for prompt in REFERENCE_PROMPTS:
        ids = torch.tensor([tokenizer.encode(prompt)])
        new = generate(model, ids, max_new_tokens=max_new_tokens, temperature=0.0)[0, ids.shape[1] :].tolist()
        out.append({"prompt": prompt, "greedy_ids": new, "greedy_text": tokenizer.decode(new)})
    return {"max_new_tokens": max_new_tokens, "continuations": out}


def _apply(recipe, overrides: dict | None):
    for key, value in (overrides or {}).items():
        if not hasattr(recipe, key):
            raise ValueError(f"train: unknown recipe field {key!r} for {type(recipe).__name__}")
        if key == "model":
            recipe.model.update(value)
        else:
            setattr(recipe, key, value)
    return recipe


def _load(module: str, name: str):
    """``name`` from this package's ``module``, imported only when a run needs it (the recipe modules pull
    in the data and the models; importing this module stays cheap)."""
    return getattr(import_module(f"{__package__}.{module}"), name)


def _lazy(module: str, name: str) -> Callable:
    """A function that calls :func:`_load` ``(module, name)`` with its arguments (imported at the call)."""
    return lambda *args, **kwargs: _load(module, name)(*args, **kwargs)


def _keep_all(metrics: dict) -> dict:
    return metrics


def _drop_nan(metrics: dict) -> dict:
    """The metrics without NaN floats (e.g. the IoU of a class absent from every evaluation scene)."""
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and np.isnan(v))}


@dataclass(frozen=True)
class TaskRecipe:
    """One row of :data:`RECIPES`: how ``python -m grootvl_core train <name>`` builds, trains and ships a model.

    Attributes:
        name: the task (``run_training``'s ``task``).
        make_recipe: ``arm -> recipe``, a fresh recipe dataclass with the bundled model's defaults.
        arms: the accepted ``--arm`` values.
        train: ``(out, recipe, *, resume, progress, device) -> (model, result)``, or ``(model, tokenizer,
            result)`` when ``with_tokenizer``.
        references: ``(model, recipe, tokenizer) -> reference outputs`` (tokenizer None without one).
        card: ``(recipe, model, arm) -> {"title", "summary", "data"}``, the model card's texts (:mod:`.cards`).
        arm_sets_scan_order: a non-tree arm sets ``recipe.model["scan_order"]`` (the vision tasks; the lm
            recipe takes the arm itself).
        metrics: ``final_metrics -> the metrics written`` to the card and ``metrics.json`` (segment: NaN dropped).
        with_tokenizer: the train function returns a tokenizer, which is saved beside the model.
    """

    name: str
    make_recipe: Callable[[str], Any]
    arms: tuple[str, ...]
    train: Callable[..., tuple]
    references: Callable[[Any, Any, Any], dict]
    card: Callable[[Any, Any, str], dict[str, str]]
    arm_sets_scan_order: bool = True
    metrics: Callable[[dict], dict] = _keep_all
    with_tokenizer: bool = False


_VISION_ARMS = ("tree", "raster")
_LM_ARMS = ("tree", "chain", "plain")

RECIPES: dict[str, TaskRecipe] = {
    "classify": TaskRecipe(
        name="classify",
        arms=_VISION_ARMS,
        card=classifier_card,
        make_recipe=lambda arm: _load("fashion_mnist", "ClassifierRecipe")(),
        train=_lazy("fashion_mnist", "train_classifier"),
        references=lambda model, recipe, tokenizer: classifier_reference_outputs(model, recipe.input_size),
    ),
    "segment": TaskRecipe(
        name="segment",
        arms=_VISION_ARMS,
        card=segmenter_card,
        metrics=_drop_nan,
        make_recipe=lambda arm: _load("scenes", "SegmenterRecipe")(),
        train=_lazy("scenes", "train_segmenter"),
        references=lambda model, recipe, tokenizer: segmenter_reference_outputs(model, recipe.size),
    ),
    "lm": TaskRecipe(
        name="lm",
        arms=_LM_ARMS,
        card=lm_card,
        arm_sets_scan_order=False,
        with_tokenizer=True,
        make_recipe=lambda arm: _load("fortunes", "LMRecipe")(arm=arm),
        train=_lazy("fortunes", "train_lm"),
        references=lambda model, recipe, tokenizer: lm_reference_outputs(model, tokenizer),
    ),
}
TASKS = tuple(RECIPES)


def run_training(
    task: str,
    out: str | Path,
    *,
    steps: int | None = None,
    seed: int = 0,
    arm: str = "tree",
    resume: bool = False,
    bundle: str | None = None,
    checkpoints_root: str | Path = "checkpoints",
    batch_size: int | None = None,
    lr: float | None = None,
    ema_decay: float | None = None,
    device: str = "auto",
    progress: bool = True,
    argv: list[str] | None = None,
    recipe_overrides: dict | None = None,
) -> dict:
    """Train one recipe and write ``<out>/model``; returns the result dict (also ``<out>/result.json``).

    Args:
        task: ``"classify"``, ``"segment"`` or ``"lm"``.
        out: output folder (checkpoints, metrics, command, model).
        steps: override the recipe's step count (the bundled models use the defaults).
        seed: training seed.
        arm: ``"tree"`` (default) or ``"raster"`` (vision: the row-major chain instead of the
            tree); for ``lm`` also ``"chain"`` / ``"plain"`` (see :class:`LMRecipe`).
        resume: continue from ``<out>/last.pt``.
        lr: override the recipe's peak learning rate (e.g. lower for fine-tuning).
        device: where to train and evaluate: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``,
            ``"cuda"``, ``"cuda:1"``...; the written model and its reference outputs are on the CPU.
        ema_decay: keep, evaluate and ship an exponential moving average of the weights (see
            :class:`~grootvl_core.train.loop.TrainConfig`); None keeps the recipe's (no average).
        bundle: also copy the model folder to ``<checkpoints_root>/<bundle>``.
        recipe_overrides: recipe fields to replace (``{"model": {...}}`` entries are merged into the
            model config), e.g. for quick experiments and smoke tests.
    """
    if task not in RECIPES:
        raise ValueError(f"train: task must be one of {TASKS}, got {task!r}")
    spec = RECIPES[task]
    if arm not in spec.arms:
        raise ValueError(f"train {task}: --arm must be one of {spec.arms}, got {arm!r}")
    dev = resolve_device(device)
    out = Path(out)
    command = record_command(out, argv)
    model_dir = out / "model"
    recipe = _apply(spec.make_recipe(arm), recipe_overrides)
    if spec.arm_sets_scan_order and arm != "tree":
        recipe.model["scan_order"] = arm
    recipe.train = replace(
        recipe.train,
        seed=seed,
        **({"steps": steps} if steps else {}),
        **({"lr": lr} if lr else {}),
        **({"ema_decay": ema_decay} if ema_decay is not None else {}),
    )
    if batch_size:
        recipe.batch_size = batch_size
    trained = spec.train(out, recipe, resume=resume, progress=progress, device=dev)
    model, tokenizer, result = trained if spec.with_tokenizer else (trained[0], None, trained[1])
    model.cpu()
    refs = spec.references(model, recipe, tokenizer)
    write_bundle(
        model,
        model_dir,
        **spec.card(recipe, model, arm),
        command=command,
        train_seconds=result["train_seconds"],
        metrics=spec.metrics(result["final_metrics"]),
        reference_outputs=refs,
        **({"tokenizer": tokenizer} if spec.with_tokenizer else {}),
        device=dev,
    )
    result["command"] = command
    with open(out / "result.json", "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    if bundle:
        dest = Path(checkpoints_root) / bundle
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(model_dir, dest)
    return result
