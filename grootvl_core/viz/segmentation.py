"""Segmentation masks over images, and the legend that goes with them."""

from __future__ import annotations

import numpy as np

from .image import as_rgb_uint8

__all__ = ["overlay_mask", "legend_entries"]


def overlay_mask(image, mask, palette, alpha: float = 0.5) -> np.ndarray:
    """Blend a colour-coded class mask over the image.

    Args:
        image: the input image; resized to the mask's size if they differ.
        mask: ``(H, W)`` integer class ids.
        palette: ``(num_classes, 3)`` RGB colours.
        alpha: opacity of the mask (0 shows only the image, 1 only the mask).

    Returns:
        ``(H, W, 3)`` uint8 RGB at the mask's resolution.
    """
    import cv2

    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"overlay_mask: mask must be (H, W), got shape {mask.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay_mask: alpha must be in [0, 1], got {alpha}")
    pal = np.asarray(palette, dtype=np.uint8).reshape(-1, 3)
    if mask.size and (mask.min() < 0 or mask.max() >= len(pal)):
        raise ValueError(f"overlay_mask: class ids must lie in [0, {len(pal)}), got [{mask.min()}, {mask.max()}]")
    rgb = as_rgb_uint8(image)
    if rgb.shape[:2] != mask.shape:
        rgb = cv2.resize(rgb, (mask.shape[1], mask.shape[0]), interpolation=cv2.INTER_LINEAR)
    colors = pal[mask]
    return (rgb.astype(np.float32) * (1 - alpha) + colors.astype(np.float32) * alpha).astype(np.uint8)


def legend_entries(mask, class_names, palette, min_fraction: float = 0.0) -> list[tuple[str, str, float]]:
    """``(class name, "#rrggbb", fraction of pixels)`` for each class present in the mask, largest
    first (classes under ``min_fraction`` omitted)."""
    mask = np.asarray(mask)
    counts = np.bincount(mask.reshape(-1), minlength=len(class_names))
    total = max(int(counts.sum()), 1)
    pal = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    out = []
    for k in np.argsort(-counts, kind="stable"):
        frac = counts[k] / total
        if counts[k] == 0 or frac < min_fraction:
            continue
        r, g, b = (int(c) for c in pal[k])
        out.append((str(class_names[k]), f"#{r:02x}{g:02x}{b:02x}", float(frac)))
    return out
