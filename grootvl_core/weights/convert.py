"""Conversion of a checkpoint into a Hub folder (``config.json``, ``model.safetensors``, ``README.md``)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from .model_card import write_model_card
from .state_dict import load_weights
from .transfer import sha256sum

__all__ = ["convert_checkpoint"]


def convert_checkpoint(
    checkpoint: str | os.PathLike,
    model: torch.nn.Module,
    out_dir: str | os.PathLike,
    filter_fn: Callable[[dict, torch.nn.Module], dict] | None = None,
    use_ema: bool = False,
    card: Mapping[str, Any] | None = None,
) -> Path:
    """Convert a checkpoint into a Hub folder: ``config.json``, ``model.safetensors``, ``README.md``.

    Args:
        checkpoint: source file (official training checkpoint, bare state dict, or safetensors).
        model: freshly built ``PyTorchModelHubMixin`` model of the matching architecture.
        out_dir: destination folder (created).
        filter_fn: the architecture's ``checkpoint_filter_fn``.
        use_ema: convert ``model_ema`` instead of ``model``.
        card: model-card fields for :func:`write_model_card` (``title``, ``arch``, ``metrics``, ...).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        CheckpointError: see :func:`load_weights`.
    """
    load_weights(model, checkpoint, filter_fn=filter_fn, use_ema=use_ema)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    info = dict(card or {})
    info.setdefault("source", Path(checkpoint).name)
    info.setdefault("source_sha256", sha256sum(checkpoint))
    info.setdefault("weights", "model_ema" if use_ema else "model")
    info.setdefault("model_class", type(model).__name__)
    info.setdefault("num_parameters", sum(p.numel() for p in model.parameters()))
    write_model_card(out, info)
    return out
