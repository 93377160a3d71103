"""Small image helpers shared by the drawing functions."""

from __future__ import annotations

import numpy as np

__all__ = ["as_rgb_uint8", "colormap"]

_COLORMAPS = ("turbo", "viridis", "inferno", "magma", "plasma", "jet")


def as_rgb_uint8(image) -> np.ndarray:
    """Any of: PIL image, ``(H, W)`` grey, ``(H, W, 1|3|4)``, uint8/uint16/float in [0, 1] ->
    ``(H, W, 3)`` uint8 RGB (alpha dropped, 16-bit scaled down)."""
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ValueError(f"expected an (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    if arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.shape[2] == 1:
        arr = np.repeat(arr, 3, axis=2)
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        return (np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255 + 0.5).astype(np.uint8)
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    return np.clip(arr, 0, 255).astype(np.uint8)


def colormap(values: np.ndarray, name: str = "turbo", vmin: float | None = None,
             vmax: float | None = None) -> np.ndarray:
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
