"""An affinity map (how strongly one pixel reaches every other through the tree) over an image."""

from __future__ import annotations

import numpy as np

from .image import as_rgb_uint8, colormap

__all__ = ["overlay_heatmap"]


def overlay_heatmap(
    image,
    heat,
    alpha: float = 0.6,
    size: int = 448,
    mark: tuple[int, int] | None = None,
    colormap_name: str = "inferno",
    log_scale: bool = True,
    value_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """Blend a heat map over the image.

    Args:
        image: the input image.
        heat: ``(h, w)`` non-negative values (e.g. tree-path products), any grid size; resized
            with nearest-neighbour so grid cells stay visible.
        alpha: opacity of the heat map.
        mark: ``(row, col)`` on the heat grid to mark (the clicked pixel).
        log_scale: show ``log10`` of the values (products along long paths span decades).
        value_range: ``(lo, hi)`` the colours span (in ``log10`` units with ``log_scale``), to put
            several maps on one colour scale; default: this map's own range.

    Returns:
        ``(H', W', 3)`` uint8 RGB, longer side ``size``.
    """
    import cv2

    rgb = as_rgb_uint8(image)
    heat = np.asarray(heat, dtype=np.float64)
    if heat.ndim != 2:
        raise ValueError(f"overlay_heatmap: heat must be (h, w), got shape {heat.shape}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"overlay_heatmap: alpha must be in [0, 1], got {alpha}")
    scale = size / max(rgb.shape[:2])
    out_h, out_w = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    base = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    vals = np.abs(heat)
    if log_scale:
        floor = max(vals[vals > 0].min(), 1e-12) if (vals > 0).any() else 1e-12
        if value_range is not None:
            floor = min(floor, 10.0 ** float(value_range[0]))
        vals = np.log10(np.maximum(vals, floor))
    if value_range is None:
        colors = colormap(vals, colormap_name)
    else:
        lo, hi = (float(v) for v in value_range)
        if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
            raise ValueError(f"overlay_heatmap: value_range must be finite (lo, hi) with lo < hi, got {value_range}")
        if log_scale:
            vals = np.maximum(vals, lo)
        colors = colormap(vals, colormap_name, vmin=lo, vmax=hi)
    colors = cv2.resize(colors, (out_w, out_h), interpolation=cv2.INTER_NEAREST)
    out = (base.astype(np.float32) * (1 - alpha) + colors.astype(np.float32) * alpha).astype(np.uint8)
    if mark is not None:
        r, c = mark
        cy, cx = out_h / heat.shape[0], out_w / heat.shape[1]
        center = (int((c + 0.5) * cx), int((r + 0.5) * cy))
        rad = max(4, int(min(cx, cy) / 2) + 2)
        cv2.circle(out, center, rad, (0, 255, 255), 2, lineType=cv2.LINE_AA)
    return out
