"""Draw a spanning tree of an ``h x w`` grid over an image (design.md: "the tree over the image")."""

from __future__ import annotations

import numpy as np

from .image import as_rgb_uint8, colormap

__all__ = ["draw_tree", "vertex_depths"]


def vertex_depths(tree_edges: np.ndarray, num_vertices: int, root: int = 0) -> np.ndarray:
    """Depth of every vertex from ``root`` in the tree given by its ``(V-1, 2)`` edge rows."""
    from collections import deque

    adj = [[] for _ in range(num_vertices)]
    for s, t in np.asarray(tree_edges, dtype=np.int64).reshape(-1, 2).tolist():
        adj[s].append(t)
        adj[t].append(s)
    depth = np.full(num_vertices, -1, dtype=np.int64)
    depth[root] = 0
    queue = deque([root])
    while queue:
        v = queue.popleft()
        for w in adj[v]:
            if depth[w] < 0:
                depth[w] = depth[v] + 1
                queue.append(w)
    return depth


def draw_tree(
    image,
    tree_edges,
    grid: tuple[int, int],
    color_by: str = "depth",
    edge_values=None,
    size: int = 448,
    colormap_name: str = "turbo",
    root: int = 0,
    dim: float = 0.45,
) -> np.ndarray:
    """The tree drawn over the image resized to ``size`` on its longer side.

    Args:
        image: the input image (any form :func:`as_rgb_uint8` takes).
        tree_edges: ``(V-1, 2)`` vertex pairs on the ``grid`` (vertex ``r * w + c``).
        grid: ``(h, w)`` of the feature map the tree was built on.
        color_by: ``"depth"`` (distance from ``root`` of the edge's deeper end) or ``"weight"``
            (``edge_values``, one per edge row, e.g. the transition weight of the child).
        edge_values: ``(V-1,)`` values for ``color_by="weight"``.
        size: output's longer side in pixels.
        dim: how much the photo is darkened under the tree (0 = not at all).

    Returns:
        ``(H', W', 3)`` uint8 RGB.
    """
    import cv2

    h, w = (int(g) for g in grid)
    edges = np.asarray(tree_edges, dtype=np.int64).reshape(-1, 2)
    if edges.shape[0] != max(h * w - 1, 0):
        raise ValueError(f"draw_tree: a spanning tree of a {h}x{w} grid has {h * w - 1} edges, got {edges.shape[0]}")
    rgb = as_rgb_uint8(image)
    scale = size / max(rgb.shape[:2])
    out_h, out_w = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    canvas = cv2.resize(rgb, (out_w, out_h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
    canvas = (canvas.astype(np.float32) * (1 - dim)).astype(np.uint8)
    if color_by == "depth":
        depth = vertex_depths(edges, h * w, root)
        values = np.maximum(depth[edges[:, 0]], depth[edges[:, 1]]).astype(np.float64)
    elif color_by == "weight":
        if edge_values is None or len(edge_values) != len(edges):
            raise ValueError("draw_tree: color_by='weight' needs edge_values with one value per edge")
        values = np.asarray(edge_values, dtype=np.float64)
    else:
        raise ValueError(f"draw_tree: color_by must be 'depth' or 'weight', got {color_by!r}")
    if len(values) == 0:
        colors = np.zeros((0, 3), np.uint8)
    else:  # robust range: a few extreme weights must not wash out the rest
        lo, hi = np.nanpercentile(values, [2, 98]) if np.isfinite(values).any() else (0.0, 1.0)
        colors = colormap(values, colormap_name, vmin=float(lo), vmax=float(hi))
    cy, cx = out_h / h, out_w / w
    thickness = max(1, int(round(min(cx, cy) / 4)))
    for (s, t), col in zip(edges.tolist(), colors.tolist()):
        p1 = (int((s % w + 0.5) * cx), int((s // w + 0.5) * cy))
        p2 = (int((t % w + 0.5) * cx), int((t // w + 0.5) * cy))
        cv2.line(canvas, p1, p2, tuple(int(c) for c in col), thickness, lineType=cv2.LINE_AA)
    rr = (int((root % w + 0.5) * cx), int((root // w + 0.5) * cy))
    cv2.circle(canvas, rr, thickness + 2, (255, 255, 255), -1, lineType=cv2.LINE_AA)
    return canvas
