"""The tree GrootV would build from the raw pixels alone: no model, any image (the demo's
"tree on pixels" view)."""

from __future__ import annotations

import numpy as np
import torch

from .. import ops
from .image import as_rgb_uint8

__all__ = ["pixel_tree"]


def pixel_tree(image, max_side: int = 48, distance: str = "l2"):
    """Minimum spanning tree of the 4-connected grid of the (downscaled) image.

    Args:
        image: any image :func:`as_rgb_uint8` takes.
        max_side: the image is area-downscaled so its longer side is at most this (the tree has
            one vertex per remaining pixel).
        distance: ``"l2"`` (squared RGB distance; the published ``norm2`` variant, reference 1.2)
            or ``"cosine"`` (``exp(-cos)`` of the RGB vectors, the variant GrootV uses on
            features; on raw colours it ignores brightness).

    Returns:
        dict with ``edges`` ``(V-1, 2)`` int64 numpy, ``order`` / ``parent`` ``(V,)`` BFS from the
        top-left pixel, ``grid`` ``(h, w)``, and ``weights`` ``(V-1,)`` the edge weights of the tree.
    """
    import cv2

    if max_side < 1:
        raise ValueError(f"pixel_tree: max_side must be >= 1, got {max_side}")
    rgb = as_rgb_uint8(image)
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    h, w = max(1, round(rgb.shape[0] * scale)), max(1, round(rgb.shape[1] * scale))
    small = cv2.resize(rgb, (w, h), interpolation=cv2.INTER_AREA) if (h, w) != rgb.shape[:2] else rgb
    feat = torch.from_numpy(small.astype(np.float32) / 255.0).permute(2, 0, 1)[None]  # (1, 3, h, w)
    edges = ops.grid_edges(h, w)
    if distance == "cosine":
        weights = ops.cosine_edge_weights(feat + 1e-3)
    elif distance == "l2":
        flat = feat.flatten(2)[0]  # (3, V)
        weights = ((flat[:, edges[:, 0]] - flat[:, edges[:, 1]]) ** 2).sum(0)[None]
    else:
        raise ValueError(f"pixel_tree: distance must be 'l2' or 'cosine', got {distance!r}")
    tree = ops.minimum_spanning_tree(edges, weights, h * w)
    order = ops.bfs(tree)
    t = tree[0].long()
    lookup = {(int(s), int(d)): k for k, (s, d) in enumerate(edges.tolist())}
    tree_w = weights[0, [lookup[(int(s), int(d))] for s, d in t.tolist()]] if len(t) else weights[0, :0]
    return {
        "edges": t.numpy(),
        "order": order.order[0].numpy(),
        "parent": order.parent[0].numpy(),
        "grid": (h, w),
        "weights": tree_w.numpy(),
    }
