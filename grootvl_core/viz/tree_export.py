"""A recorded block's tree as plain data (JSON): what the tree pictures draw, for other tools.

``tree_to_dict(record)`` gives, for one :class:`~grootvl_core.models.TreeRecord`: the grid size,
the ``V - 1`` edges (vertex ids ``r * width + c``), every vertex's depth and parent from the root,
and the transition weights ``Abar`` per vertex (the weight of the edge to its parent, reference
1.6) and per edge (that of the edge's child end, as the tree scan applies it).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from .tree_overlay import vertex_depths

__all__ = ["TREE_JSON_FORMAT", "tree_to_dict", "tree_to_json"]

TREE_JSON_FORMAT = "grootvl.tree/1"


def tree_to_dict(record, digits: int = 6) -> dict[str, Any]:
    """The record's tree as JSON-ready data.

    Args:
        record: a :class:`~grootvl_core.models.TreeRecord` (``channels="mean"`` or ``"all"``; with
            ``"all"`` the weights are averaged over channels).
        digits: significant digits kept of each weight.

    Returns:
        ``{"format", "stage", "block", "grid": {"height", "width"}, "num_vertices", "root",
        "vertex_id", "edges": [[s, t], ...], "depth": [...], "parent": [...] (-1 for the root),
        "max_depth", "transition_weights": {"per_vertex": [...], "per_edge": [...]}}``.
    """
    h, w = int(record.height), int(record.width)
    v = h * w
    edges = np.asarray(record.tree_edges, dtype=np.int64).reshape(-1, 2)
    if edges.shape[0] != v - 1:
        raise ValueError(f"tree_to_dict: a spanning tree of a {h}x{w} grid has {v - 1} edges, got {edges.shape[0]}")
    order = np.asarray(record.tree.order, dtype=np.int64)
    root = int(order[0])
    depth = vertex_depths(edges, v, root)
    parent = np.full(v, -1, dtype=np.int64)
    parent_pos = np.asarray(record.tree.parent, dtype=np.int64)
    parent[order[1:]] = order[parent_pos[1:]]
    weights = np.asarray(record.weights, dtype=np.float64).reshape(-1, v).mean(axis=0)
    child = np.where(parent[edges[:, 0]] == edges[:, 1], edges[:, 0], edges[:, 1])

    def rounded(values: np.ndarray) -> list[float]:
        return [float(f"{x:.{digits}g}") for x in values.tolist()]

    per_vertex = rounded(weights)
    per_vertex[root] = None  # the root has no parent edge: its weight is unused by the scan
    return {
        "format": TREE_JSON_FORMAT,
        "stage": int(record.stage),
        "block": int(record.block),
        "grid": {"height": h, "width": w},
        "num_vertices": v,
        "vertex_id": "row * width + col",
        "root": root,
        "edges": edges.tolist(),
        "depth": depth.tolist(),
        "parent": parent.tolist(),
        "max_depth": int(depth.max()) if v else 0,
        "transition_weights": {
            "meaning": "Abar = exp(Delta * A), channel mean; per_vertex[v] weighs the edge from v to its parent, "
            "per_edge[k] is that of edges[k]'s child end",
            "per_vertex": per_vertex,
            "per_edge": rounded(weights[child]),
        },
    }


def tree_to_json(record, indent: int | None = None) -> str:
    """:func:`tree_to_dict` as a JSON string."""
    return json.dumps(tree_to_dict(record), indent=indent)
