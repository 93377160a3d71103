"""Minimum spanning tree and BFS ordering (reference-grootvl.md 1.3 and 1.5).

Both are registered as torch custom ops (``grootvl::minimum_spanning_tree``, ``grootvl::bfs``) so
``torch.compile`` can trace models that use them. Neither is differentiable: trees are topology.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from .backend import implementation

__all__ = ["TreeOrder", "minimum_spanning_tree", "bfs", "minimum_spanning_tree_ref", "bfs_ref"]


class TreeOrder(NamedTuple):
    """A rooted tree visited in BFS order (parents before children).

    Attributes:
        order: ``(B, V)`` int64, vertex id at each BFS position; ``order[:, 0]`` is the root.
        parent: ``(B, V)`` int64, POSITION of each position's parent; 0 for the root.
        depth: ``(B, V)`` int64, distance of each position from the root (non-decreasing).
    """

    order: Tensor
    parent: Tensor
    depth: Tensor


def _check_int_tensor(name: str, fn: str, t) -> None:
    if not isinstance(t, Tensor):
        raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{fn}: {name} must be an integer tensor, got {t.dtype}")


# ----------------------------------------------------------------------------------------------
# MST
# ----------------------------------------------------------------------------------------------


@torch.library.custom_op("grootvl::minimum_spanning_tree", mutates_args=())
def _mst_op(edges: Tensor, weights: Tensor, num_vertices: int, validate: bool) -> Tensor:
    tree, ok = implementation(edges.device).mst(edges, weights, num_vertices)
    if validate and not bool(ok.all()):
        bad = torch.nonzero(~ok.cpu()).flatten().tolist()
        raise ValueError(
            f"minimum_spanning_tree: the graph is not connected (batch elements {bad[:8]}"
            f"{'...' if len(bad) > 8 else ''}); a spanning tree needs every vertex reachable"
        )
    return tree


@_mst_op.register_fake
def _mst_fake(edges, weights, num_vertices, validate):
    return edges.new_empty((weights.shape[0], max(num_vertices - 1, 0), 2), dtype=torch.int32)


def _prepare_mst_args(edges, weights, num_vertices):
    fn = "minimum_spanning_tree"
    _check_int_tensor("edges", fn, edges)
    if not isinstance(weights, Tensor) or not weights.is_floating_point():
        raise TypeError(
            f"{fn}: weights must be a floating-point tensor, got {getattr(weights, 'dtype', type(weights).__name__)}"
        )
    if weights.dim() != 2:
        raise ValueError(f"{fn}: weights must be (B, E), got {tuple(weights.shape)}")
    if edges.device != weights.device:
        raise ValueError(f"{fn}: edges on {edges.device} but weights on {weights.device}; move both to one device")
    batch, n_edges = weights.shape
    if edges.dim() == 2:
        edges = edges.unsqueeze(0).expand(batch, -1, -1)
    if edges.dim() != 3 or edges.shape[0] != batch or edges.shape[1:] != (n_edges, 2):
        raise ValueError(
            f"{fn}: edges must be (E, 2) or (B, E, 2) matching weights (B={batch}, "
            f"E={n_edges}), got {tuple(edges.shape)}"
        )
    v = int(num_vertices)
    if v < 1:
        raise ValueError(f"{fn}: num_vertices must be >= 1, got {num_vertices}")
    if n_edges < v - 1:
        raise ValueError(f"{fn}: {n_edges} edges cannot connect {v} vertices (need >= {v - 1})")
    if edges.numel():
        lo, hi = int(edges.min()), int(edges.max())
        if lo < 0 or hi >= v:
            raise ValueError(f"{fn}: edge endpoints must lie in [0, {v}), got values in [{lo}, {hi}]")
    return edges.to(torch.int64).contiguous(), weights.float().contiguous(), v


def minimum_spanning_tree(edges: Tensor, weights: Tensor, num_vertices: int, *, validate: bool = True) -> Tensor:
    """Minimum spanning tree of each batch element's weighted graph.

    The result is the unique MST under the total order (float32 weight, edge index): ties go to
    the lower edge index, as in the published Boruvka (reference 1.3). NaN weights sort last.

    Args:
        edges: ``(E, 2)`` (shared by the batch) or ``(B, E, 2)`` integer vertex pairs.
        weights: ``(B, E)`` floating weights (compared as float32).
        num_vertices: ``V``; edge endpoints must lie in ``[0, V)``.
        validate: check connectivity and endpoint ranges (costs a host sync on CUDA). A graph
            that is not connected raises ``ValueError``; it never hangs.

    Returns:
        ``(B, V-1, 2)`` int32 edge rows of the tree (each row as given in ``edges``).
    """
    if validate:
        edges, weights, v = _prepare_mst_args(edges, weights, num_vertices)
    else:
        if edges.dim() == 2:
            edges = edges.unsqueeze(0).expand(weights.shape[0], -1, -1)
        edges, weights, v = edges.to(torch.int64).contiguous(), weights.float().contiguous(), int(num_vertices)
    return _mst_op(edges, weights, v, validate)


def minimum_spanning_tree_ref(edges: Tensor, weights: Tensor, num_vertices: int) -> Tensor:
    """Reference (Python Kruskal) :func:`minimum_spanning_tree`."""
    from . import reference

    edges, weights, v = _prepare_mst_args(edges, weights, num_vertices)
    tree, ok = reference.mst(edges, weights, v)
    if not bool(ok.all()):
        raise ValueError("minimum_spanning_tree_ref: the graph is not connected")
    return tree


# ----------------------------------------------------------------------------------------------
# BFS
# ----------------------------------------------------------------------------------------------


@torch.library.custom_op("grootvl::bfs", mutates_args=())
def _bfs_op(tree_edges: Tensor, root: int, validate: bool) -> tuple[Tensor, Tensor, Tensor]:
    order, parent, depth, ok = implementation(tree_edges.device).bfs(tree_edges, root)
    if validate and not bool(ok.all()):
        bad = torch.nonzero(~ok.cpu()).flatten().tolist()
        raise ValueError(
            f"bfs: tree_edges is not a spanning tree (batch elements {bad[:8]}): with V-1 edges "
            "every vertex must be reachable from the root"
        )
    return order, parent, depth


@_bfs_op.register_fake
def _bfs_fake(tree_edges, root, validate):
    shape = (tree_edges.shape[0], tree_edges.shape[1] + 1)
    return tuple(tree_edges.new_empty(shape, dtype=torch.int64) for _ in range(3))


def _prepare_bfs_args(tree_edges, root):
    _check_int_tensor("tree_edges", "bfs", tree_edges)
    if tree_edges.dim() == 2:
        tree_edges = tree_edges.unsqueeze(0)
    if tree_edges.dim() != 3 or tree_edges.shape[2] != 2:
        raise ValueError(f"bfs: tree_edges must be (B, V-1, 2), got {tuple(tree_edges.shape)}")
    v = tree_edges.shape[1] + 1
    root = int(root)
    if not 0 <= root < v:
        raise ValueError(f"bfs: root must lie in [0, {v}) for a tree of {v} vertices, got {root}")
    if tree_edges.numel():
        lo, hi = int(tree_edges.min()), int(tree_edges.max())
        if lo < 0 or hi >= v:
            raise ValueError(f"bfs: vertex ids must lie in [0, {v}) (V = rows + 1), got values in [{lo}, {hi}]")
    return tree_edges.to(torch.int64).contiguous(), root


def bfs(tree_edges: Tensor, root: int = 0, *, validate: bool = True) -> TreeOrder:
    """Breadth-first order of a spanning tree from ``root`` (reference 1.5, made deterministic).

    Args:
        tree_edges: ``(B, V-1, 2)`` (or ``(V-1, 2)``) integer edge rows, e.g. from
            :func:`minimum_spanning_tree`.
        root: root vertex id (GrootV uses 0, the top-left pixel).
        validate: check ids and that the rows form a spanning tree (``ValueError`` otherwise;
            costs a host sync on CUDA).

    Returns:
        :class:`TreeOrder` ``(order, parent, depth)``, each ``(B, V)`` int64.
    """
    if validate:
        tree_edges, root = _prepare_bfs_args(tree_edges, root)
    else:
        if tree_edges.dim() == 2:
            tree_edges = tree_edges.unsqueeze(0)
        tree_edges = tree_edges.to(torch.int64).contiguous()
    return TreeOrder(*_bfs_op(tree_edges, int(root), validate))


def bfs_ref(tree_edges: Tensor, root: int = 0) -> TreeOrder:
    """Reference (Python queue) :func:`bfs`."""
    from . import reference

    tree_edges, root = _prepare_bfs_args(tree_edges, root)
    order, parent, depth, ok = reference.bfs(tree_edges, root)
    if not bool(ok.all()):
        raise ValueError("bfs_ref: tree_edges is not a spanning tree")
    return TreeOrder(order, parent, depth)
