"""Small image helpers shared by the drawing functions."""

from __future__ import annotations

import numpy as np

from ..image_io import to_rgb_array

__all__ = ["as_rgb_uint8", "colormap"]

_COLORMAPS = ("turbo", "viridis", "inferno", "magma", "plasma", "jet")


def as_rgb_uint8(image) -> np.ndarray:
    """Any of: PIL image, ``(H, W)`` grey, ``(H, W, 1|3|4)``, uint8/uint16/float in [0, 1] ->
    ``(H, W, 3)`` uint8 RGB by the one rule of :func:`grootvl_core.image_io.to_rgb_array` (alpha
    composited on white, 16-bit scaled by ``255 / 65535``, palette expanded, turned upright)."""
    if isinstance(image, np.ndarray):
        # NOTE: drawings are lenient where a model input is not: NaN is black, other integer
        # types are clipped to 0..255 (as before), then the shared rule applies
        if np.issubdtype(image.dtype, np.floating):
            image = np.nan_to_num(image, nan=0.0, posinf=1.0, neginf=0.0)
        elif np.issubdtype(image.dtype, np.integer) and image.dtype not in (np.uint8, np.uint16):
            image = np.clip(image, 0, 255).astype(np.uint8)
    return to_rgb_array(image)


def colormap(
    values: np.ndarray, name: str = "turbo", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """Map values (any shape) to RGB uint8 colours (shape + (3,)) through an OpenCV colormap;
    NaN maps to grey."""
    import cv2

    if name not in _COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {sorted(_COLORMAPS)}")
    v = np.asarray(values, dtype=np.float64)
    finite = np.isfinite(v)
    lo = float(np.min(v[finite])) if vmin is None and finite.any() else (vmin or 0.0)
    hi = float(np.max(v[finite])) if vmax is None and finite.any() else (vmax if vmax is not None else 1.0)
    scale = (hi - lo) if hi > lo else 1.0
    idx = np.clip((np.where(finite, v, lo) - lo) / scale, 0, 1) * 255
    code = getattr(cv2, f"COLORMAP_{name.upper()}")
    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], code)[:, 0, ::-1]
    out = lut[idx.astype(np.uint8)]
    out[~finite] = 128
    return out
