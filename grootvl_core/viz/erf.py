"""Effective receptive fields per stage, the RepLKNet way (Ding et al., CVPR 2022, section 5.1;
VMamba ships the same script, ``analyze/erf``).

For each image, the stage's output at the central position is summed over channels after a ReLU,
``sum_c relu(y[c, h // 2, w // 2])``, and differentiated with respect to the input pixels; the
ReLU of that gradient, summed over the input channels, is the image's contribution map. The maps
are averaged over the images. For display (and for the area figures) the average goes through
``log10(1 + m)`` and is scaled to a maximum of 1, as RepLKNet's ``analyze_erf.py`` does; the
"high-contribution area ratio" is the smallest centred square holding a given share of the total.

Works on any backbone with timm's ``forward_intermediates(x, indices, intermediates_only=True)``
(GrootV, the backbone of a GrootV segmenter), on the device the backbone lives on.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

__all__ = ["AREA_SHARES", "StageERF", "area_ratio", "effective_receptive_fields", "erf_display"]

AREA_SHARES = (0.2, 0.5, 0.99)


@dataclass
class StageERF:
    """One stage's effective receptive field.

    Attributes:
        stage: stage index (0-based).
        grid: ``(h, w)`` of the stage's output.
        contribution: ``(S, S)`` float64, mean over the images of the input-gradient map.
        display: ``log10(1 + contribution)`` scaled to max 1 (all zeros when nothing contributes).
        area: ``{share: side of the smallest centred square holding that share / input side, squared}``
            (1.0 when no smaller square does).
    """

    stage: int
    grid: tuple[int, int]
    contribution: np.ndarray
    display: np.ndarray
    area: dict[float, float]


def erf_display(contribution: np.ndarray) -> np.ndarray:
    """``log10(1 + m) / max`` (RepLKNet's normalisation); zeros stay zeros."""
    data = np.log10(1.0 + np.maximum(np.asarray(contribution, dtype=np.float64), 0.0))
    top = data.max() if data.size else 0.0
    return data / top if top > 0 else np.zeros_like(data)


def area_ratio(display: np.ndarray, share: float) -> float:
    """Area (as a fraction of the input) of the smallest square centred on the input's centre whose
    sum exceeds ``share`` of the total (RepLKNet's ``get_rectangle``); 1.0 if none smaller does."""
    if not 0.0 < share < 1.0:
        raise ValueError(f"area_ratio: share must lie in (0, 1), got {share}")
    h, w = display.shape
    total = float(display.sum())
    if total <= 0:
        return 1.0
    for i in range(0, min(h, w) // 2):
        window = display[h // 2 - i : h // 2 + 1 + i, w // 2 - i : w // 2 + 1 + i]
        if float(window.sum()) / total > share:
            side = 2 * i + 1
            return side / h * side / w
    return 1.0


def effective_receptive_fields(
    backbone: torch.nn.Module,
    images: Sequence[Tensor] | Tensor,
    stages: Sequence[int] | None = None,
    around_each: Callable[[], object] | None = None,
    batch_size: int = 8,
) -> list[StageERF]:
    """Per-stage ERFs of ``backbone`` averaged over ``images``.

    Args:
        backbone: a module with ``forward_intermediates`` (timm contract), in eval mode, whose
            outputs for one image do not depend on the other images of the batch (GrootV's do not).
        images: ``(N, C, S, S)`` normalised inputs, or a list of ``(C, S, S)`` / ``(1, C, S, S)``.
        stages: stage indices (default: every stage ``forward_intermediates`` returns).
        around_each: a context-manager factory entered around each batch's forward and backward
            (e.g. a model lock), so a long computation never holds it for all images at once.
        batch_size: images per forward pass (each image's gradient is its own: the central
            outputs of a batch are summed, and no image's output depends on another's).

    Returns:
        one :class:`StageERF` per stage, in stage order.
    """
    if not hasattr(backbone, "forward_intermediates"):
        raise TypeError(f"effective_receptive_fields: {type(backbone).__name__} has no forward_intermediates")
    if int(batch_size) < 1:
        raise ValueError(f"effective_receptive_fields: batch_size must be >= 1, got {batch_size}")
    single = [x if x.dim() == 4 else x[None] for x in (images if not isinstance(images, Tensor) else images.split(1))]
    if not single:
        raise ValueError("effective_receptive_fields: need at least one image")
    if any(x.dim() != 4 or x.shape[0] != 1 or x.shape != single[0].shape for x in single):
        raise ValueError("effective_receptive_fields: images must be (C, S, S) or (1, C, S, S) each, all one size")
    device = next(backbone.parameters()).device
    sums: dict[int, np.ndarray] = {}
    grids: dict[int, tuple[int, int]] = {}
    for first in range(0, len(single), int(batch_size)):
        with around_each() if around_each is not None else contextlib.nullcontext(), torch.enable_grad():
            x = torch.cat(single[first : first + int(batch_size)]).detach().to(device=device, dtype=torch.float32)
            x.requires_grad_(True)
            outputs = backbone.forward_intermediates(x, intermediates_only=True)
            wanted = range(len(outputs)) if stages is None else stages
            for k, s in enumerate(wanted):
                if not 0 <= int(s) < len(outputs):
                    raise ValueError(f"effective_receptive_fields: stage {s} out of range 0..{len(outputs) - 1}")
                y = outputs[int(s)]  # (b, C_s, h, w)
                h, w = y.shape[-2:]
                central = torch.relu(y[:, :, h // 2, w // 2]).sum()
                if not central.requires_grad:  # dead centre: every channel is <= 0 after the ReLU
                    grad = torch.zeros_like(x)
                else:
                    (grad,) = torch.autograd.grad(central, x, retain_graph=k < len(wanted) - 1)
                m = torch.relu(grad).sum(dim=(0, 1)).detach().cpu().double().numpy()  # (S, S), summed over images
                sums[int(s)] = sums.get(int(s), 0.0) + m
                grids[int(s)] = (int(h), int(w))
            del outputs
    out = []
    for s in sorted(sums):
        contribution = sums[s] / len(single)
        display = erf_display(contribution)
        out.append(StageERF(s, grids[s], contribution, display, {a: area_ratio(display, a) for a in AREA_SHARES}))
    return out
