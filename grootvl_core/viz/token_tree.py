"""The tree over a prompt's tokens, drawn as arcs above the tokens (GrootL, reference 4.3)."""

from __future__ import annotations

import numpy as np

from .image import colormap

__all__ = ["draw_token_tree"]


def draw_token_tree(
    tokens: list[str], edges, strengths=None, max_tokens: int = 64, cell: int = 56, arc_height: int = 120
) -> np.ndarray:
    """Tokens in a row, one arc per tree edge, and a colour bar under each token.

    Args:
        tokens: the tokens' display strings, in order.
        edges: ``(E, 2)`` token index pairs (e.g. the feature tree's edges).
        strengths: optional ``(L,)`` non-negative values (e.g. how strongly each token reaches the
            last one), drawn as a colour bar (log scale) under the tokens.
        max_tokens: longer prompts are cut to their last ``max_tokens`` tokens (edges touching the
            cut part are dropped) so the picture stays readable.

    Returns:
        ``(H, W, 3)`` uint8 RGB.
    """
    from PIL import Image, ImageDraw, ImageFont

    tokens = [str(t) for t in tokens]
    if not tokens:
        raise ValueError("draw_token_tree: no tokens to draw")
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    if edges.size and (edges.min() < 0 or edges.max() >= len(tokens)):
        raise ValueError(
            f"draw_token_tree: edge ids must lie in [0, {len(tokens)}), got [{edges.min()}, {edges.max()}]"
        )
    start = max(0, len(tokens) - max_tokens)
    shown = tokens[start:]
    keep = (edges >= start).all(axis=1) if edges.size else np.zeros(0, bool)
    edges = edges[keep] - start
    n = len(shown)
    width, base = n * cell + 20, arc_height + 20
    height = base + 70
    img = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    try:
        font = ImageFont.load_default(size=13)
    except TypeError:  # Pillow < 10.1
        font = ImageFont.load_default()
    xs = [10 + cell * i + cell // 2 for i in range(n)]
    for s, t in sorted(edges.tolist(), key=lambda e: -abs(e[1] - e[0])):
        lo, hi = sorted((s, t))
        span = max(hi - lo, 1)
        h = min(arc_height, 18 + 22 * span)
        color = (40, 90, 200) if span == 1 else (220, 80, 30)
        draw.arc([xs[lo], base - h, xs[hi], base + h], 180, 360, fill=color, width=2)
    if strengths is not None:
        vals = np.asarray(strengths, dtype=np.float64).reshape(-1)[start:]
        if len(vals) != n:
            raise ValueError(f"draw_token_tree: strengths must have one value per token ({len(tokens)})")
        logv = np.log10(np.maximum(np.abs(vals), 1e-12))
        colors = colormap(logv, "viridis")
        for i, col in enumerate(colors.tolist()):
            draw.rectangle([xs[i] - cell // 2 + 2, base + 34, xs[i] + cell // 2 - 2, base + 46], fill=tuple(col))
    for i, tok in enumerate(shown):
        label = tok.replace("\n", "\\n")
        if len(label) > 7:
            label = label[:6] + "…"
        tw = draw.textlength(label, font=font)
        draw.text((xs[i] - tw / 2, base + 8), label, fill=(0, 0, 0), font=font)
        draw.ellipse([xs[i] - 3, base - 3, xs[i] + 3, base + 3], fill=(0, 0, 0))
    return np.asarray(img)
