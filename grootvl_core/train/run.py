"""``python -m grootvl_core train {classify,segment,lm}``: run a bundled-model recipe end to end.

Trains (resumable), evaluates, and writes ``<out>/model/``: the Hub-style folder with its model
card and ``reference_outputs.json`` (fixed inputs and the exact outputs, checked by the tests of
the shipped checkpoints). ``--bundle NAME`` also copies that folder to ``checkpoints/NAME``.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .bundle import write_bundle
from .loop import record_command, resolve_device

__all__ = ["TASKS", "run_training", "classifier_reference_outputs", "segmenter_reference_outputs",
           "lm_reference_outputs"]

TASKS = ("classify", "segment", "lm")
REFERENCE_PROMPTS = ("The meaning of life", "Q: What is a computer?\nA:", "Love is")


def classifier_reference_outputs(model, input_size: int, count: int = 8, root=None) -> dict:
    """Predicted classes (and rounded top probabilities) of the first ``count`` test images."""
    from ..data.fashion_mnist import load_fashion_mnist
    from .fashion_mnist import preprocess_batch

    images, labels = load_fashion_mnist("test", root)
    with torch.no_grad():
        probs = model(preprocess_batch(torch.from_numpy(np.array(images[:count])), input_size)).softmax(-1)
    return {"inputs": {"dataset": "fashion-mnist", "split": "test", "indices": list(range(count))},
            "true_labels": labels[:count].tolist(), "predicted": probs.argmax(-1).tolist(),
            "top_probability": [round(float(p), 4) for p in probs.max(-1).values]}


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
    return {"inputs": {"dataset": "fashion-mnist-scenes", "split": "test", "seed": EVAL_SEED, "size": size,
                       "indices": list(range(count))},
            "predicted_masks": [mask_to_rows(m) for m in pred]}


def lm_reference_outputs(model, tokenizer, max_new_tokens: int = 24) -> dict:
    """Greedy continuations of :data:`REFERENCE_PROMPTS` (token ids and text)."""
    from ..generation import generate

    out = []
    for prompt in REFERENCE_PROMPTS:
        ids = torch.tensor([tokenizer.encode(prompt)])
        new = generate(model, ids, max_new_tokens=max_new_tokens, temperature=0.0)[0, ids.shape[1]:].tolist()
        out.append({"prompt": prompt, "greedy_ids": new, "greedy_text": tokenizer.decode(new)})
    return {"max_new_tokens": max_new_tokens, "continuations": out}


def _averaged_note(cfg) -> str:
    """The model card's sentence on shipped averaged weights (empty without them)."""
    if not cfg.ema_decay:
        return ""
    return (f" The weights are the exponential moving average (decay {cfg.ema_decay} per step) of the training "
            "weights, which is what was evaluated.")


def _apply(recipe, overrides: dict | None):
    for key, value in (overrides or {}).items():
        if not hasattr(recipe, key):
            raise ValueError(f"train: unknown recipe field {key!r} for {type(recipe).__name__}")
        if key == "model":
            recipe.model.update(value)
        else:
            setattr(recipe, key, value)
    return recipe


def run_training(task: str, out: str | Path, *, steps: int | None = None, seed: int = 0, arm: str = "tree",
                 resume: bool = False, bundle: str | None = None, checkpoints_root: str | Path = "checkpoints",
                 batch_size: int | None = None, lr: float | None = None, ema_decay: float | None = None, device: str = "auto", progress: bool = True, argv: list[str] | None = None,
                 recipe_overrides: dict | None = None) -> dict:
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
    if task not in TASKS:
        raise ValueError(f"train: task must be one of {TASKS}, got {task!r}")
    lm_arms = ("tree", "chain", "plain")
    vision_arms = ("tree", "raster")
    if task == "lm" and arm not in lm_arms:
        raise ValueError(f"train lm: --arm must be one of {lm_arms}, got {arm!r}")
    if task != "lm" and arm not in vision_arms:
        raise ValueError(f"train {task}: --arm must be one of {vision_arms}, got {arm!r}")
    dev = resolve_device(device)
    out = Path(out)
    command = record_command(out, argv)
    model_dir = out / "model"
    if task == "classify":
        from ..data.fashion_mnist import FASHION_MNIST_CLASSES
        from .fashion_mnist import ClassifierRecipe, train_classifier

        recipe = _apply(
            ClassifierRecipe(), recipe_overrides)
        if arm != "tree":
            recipe.model["scan_order"] = arm
        recipe.train = replace(recipe.train, seed=seed, **({"steps": steps} if steps else {}),
                               **({"lr": lr} if lr else {}),
                               **({"ema_decay": ema_decay} if ema_decay is not None else {}))
        if batch_size:
            recipe.batch_size = batch_size
        model, result = train_classifier(out, recipe, resume=resume, progress=progress, device=dev)
        model.cpu()
        refs = classifier_reference_outputs(model, recipe.input_size)
        write_bundle(
            model, model_dir, title="GrootV-nano, Fashion-MNIST",
            summary=(f"A {sum(p.numel() for p in model.parameters()):,}-parameter GrootV ({arm} scan) trained "
                     + (f"from the classifier in `{recipe.init_from}`" if recipe.init_from else "from scratch")
                     + " by grootvl on Fashion-MNIST"
                     + (" (each item shown as inside a segmentation scene: scale jitter, textured background, "
                        "other garments behind or over it; to pretrain the scenes segmenter's backbone)"
                        if recipe.augment == "scene" else ", so the demo classifies offline")
                     + f". Input: one grey channel, resized to {recipe.input_size}x{recipe.input_size}, "
                     "normalised with mean 0.2860 / std 0.3530. Classes: " + ", ".join(FASHION_MNIST_CLASSES) + "."
                     + _averaged_note(recipe.train)),
            data=("Fashion-MNIST (Zalando Research, MIT licence), official 60,000 / 10,000 train/test split, read "
                  "from Debian's `dataset-fashion-mnist` package. Metrics are on the full test split."),
            command=command, train_seconds=result["train_seconds"], metrics=result["final_metrics"],
            reference_outputs=refs, device=dev)
    elif task == "segment":
        from .scenes import SegmenterRecipe, train_segmenter

        recipe = _apply(
            SegmenterRecipe(), recipe_overrides)
        if arm != "tree":
            recipe.model["scan_order"] = arm
        recipe.train = replace(recipe.train, seed=seed, **({"steps": steps} if steps else {}),
                               **({"lr": lr} if lr else {}),
                               **({"ema_decay": ema_decay} if ema_decay is not None else {}))
        if batch_size:
            recipe.batch_size = batch_size
        model, result = train_segmenter(out, recipe, resume=resume, progress=progress, device=dev)
        model.cpu()
        refs = segmenter_reference_outputs(model, recipe.size)
        m = result["final_metrics"]
        write_bundle(
            model, model_dir, title="GrootV-nano + UperNet, Fashion-MNIST scenes",
            summary=(f"GrootV ({arm} scan) + UperNet segmenter trained by grootvl on "
                     f"{recipe.size}x{recipe.size} \"Fashion-MNIST scenes\" (2 to 5 garments pasted on a textured "
                     "background; 11 classes: background + the 10 Fashion-MNIST classes)."
                     + (f" Fine-tuned from the trained segmenter in `{recipe.init_from}`." if recipe.init_from
                        else f" The backbone started from the trained classifier in `{recipe.backbone_init}` (as the "
                        "paper's UperNet starts from ImageNet weights); the decoder from scratch."
                        if recipe.backbone_init else " Trained from scratch (backbone included).")
                     + _averaged_note(recipe.train)),
            data=("Scenes generated deterministically (grootvl_core.data.scenes) from Fashion-MNIST (MIT licence, "
                  "Debian `dataset-fashion-mnist`): training scenes only from the training images, evaluation "
                  f"scenes ({recipe.eval_scenes}, seed 1234) only from the test images."),
            command=command, train_seconds=result["train_seconds"],
            metrics={k: v for k, v in m.items() if not (isinstance(v, float) and np.isnan(v))},
            reference_outputs=refs, device=dev)
    else:
        from .fortunes import LMRecipe, train_lm

        recipe = _apply(
            LMRecipe(arm=arm), recipe_overrides)
        recipe.train = replace(recipe.train, seed=seed, **({"steps": steps} if steps else {}),
                               **({"lr": lr} if lr else {}),
                               **({"ema_decay": ema_decay} if ema_decay is not None else {}))
        if batch_size:
            recipe.batch_size = batch_size
        model, tok, result = train_lm(out, recipe, resume=resume, progress=progress, device=dev)
        model.cpu()
        refs = lm_reference_outputs(model, tok)
        write_bundle(
            model, model_dir, title="GrootL-nano, byte-level, fortunes",
            summary=(f"A {sum(p.numel() for p in model.parameters()):,}-parameter GrootL (Mamba + tree scanning, "
                     f"arm '{arm}', tree_scale {model.config.tree_scale}) byte-level language model trained from "
                     "scratch by grootvl on fortune cookies, so the demo generates text offline. It writes "
                     "fortune-cookie-like English; it knows nothing else." + _averaged_note(recipe.train)),
            data=("Debian's `fortunes` package (BSD fortune cookie files; see /usr/share/doc/fortunes/copyright), "
                  "split by cookie into train / validation (5%, by SHA-1 of the cookie text). Validation metric: "
                  "bits per byte of each validation cookie's continuation after 16 bytes of context."),
            command=command, train_seconds=result["train_seconds"], metrics=result["final_metrics"],
            reference_outputs=refs, tokenizer=tok, device=dev)
    result["command"] = command
    with open(out / "result.json", "w") as fh:
        json.dump(result, fh, indent=1, default=str)
    if bundle:
        dest = Path(checkpoints_root) / bundle
        if dest.exists():
            shutil.rmtree(dest)
        shutil.copytree(model_dir, dest)
    return result
