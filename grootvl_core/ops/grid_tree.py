"""The spanning tree of a feature map's pixel grid, in one op (reference 1.1-1.5).

``grid_spanning_tree(u)`` is ``bfs(minimum_spanning_tree(grid_edges(H, W),
cosine_edge_weights(u), H * W), 0)`` with the tree's edge rows kept: what every GrootV block builds
before its scan. On the CPU the native backend runs the three steps in one call (no per-op
dispatch, no int64 edge list, no validity passes: a grid is connected by construction); other
devices, and ``GROOTVL_OPS=reference``, compose the single ops. Registered as the custom op
``grootvl::grid_spanning_tree`` so ``torch.compile`` can trace it. Not differentiable.
"""

from __future__ import annotations

import torch
from torch import Tensor

from .backend import fused_cpu, fused_cpu_eligible
from .graph import cosine_edge_weights, grid_edges
from .spanning_tree import TreeOrder, bfs, bfs_ref, minimum_spanning_tree, minimum_spanning_tree_ref

__all__ = ["grid_spanning_tree", "grid_spanning_tree_ref"]


@torch.library.custom_op("grootvl::grid_spanning_tree", mutates_args=())
def _grid_tree_op(feature: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    mod = fused_cpu(feature)
    if mod is not None:
        return mod.grid_tree(feature)
    b, _, h, w = feature.shape
    tree = minimum_spanning_tree(grid_edges(h, w, feature.device), cosine_edge_weights(feature), h * w, validate=False)
    order = bfs(tree, 0, validate=False)
    return tree, order.order, order.parent, order.depth


@_grid_tree_op.register_fake
def _grid_tree_fake(feature):
    b, v = feature.shape[0], feature.shape[2] * feature.shape[3]
    return (
        feature.new_empty((b, v - 1, 2), dtype=torch.int32),
        *(feature.new_empty((b, v), dtype=torch.int64) for _ in range(3)),
    )


def _check_feature(fn: str, feature) -> None:
    if not isinstance(feature, Tensor) or feature.dim() != 4:
        shape = tuple(feature.shape) if isinstance(feature, Tensor) else type(feature).__name__
        raise ValueError(f"{fn}: feature must be (B, D, H, W), got {shape}")
    if not feature.is_floating_point():
        raise TypeError(f"{fn}: feature must be floating point, got {feature.dtype}")
    if feature.shape[2] < 1 or feature.shape[3] < 1:
        raise ValueError(f"{fn}: the grid needs H, W >= 1, got {tuple(feature.shape)}")


def grid_spanning_tree(feature: Tensor) -> tuple[Tensor, TreeOrder]:
    """Maximum-similarity spanning tree of ``feature``'s pixel grid and its BFS order from pixel 0.

    Edge weights are ``exp(-cosine similarity)`` of the endpoint vectors over all channels (in
    float32); the MST breaks ties by the lower edge index of :func:`grid_edges`.

    Args:
        feature: ``(B, D, H, W)`` floating tensor.

    Returns:
        ``(tree_edges, order)``: ``(B, V-1, 2)`` int32 edge rows (as
        :func:`minimum_spanning_tree` gives them) and the :class:`TreeOrder` of :func:`bfs` from
        vertex 0 (the top-left pixel), ``V = H * W``.
    """
    _check_feature("grid_spanning_tree", feature)
    with torch.no_grad():
        f = feature.detach().float()
        native = fused_cpu_eligible(f)
        # eager: the fused kernel itself, without the custom-op dispatch (see backend.fused_cpu_eligible)
        # (the op packet: calls of the CustomOpDef can go missing from torch.profiler traces)
        tree, order, parent, depth = (
            native.grid_tree(f) if native is not None else torch.ops.grootvl.grid_spanning_tree(f)
        )
    return tree, TreeOrder(order, parent, depth)


def grid_spanning_tree_ref(feature: Tensor) -> tuple[Tensor, TreeOrder]:
    """Reference :func:`grid_spanning_tree`: the pure-PyTorch weights, Kruskal and BFS."""
    from . import reference

    _check_feature("grid_spanning_tree_ref", feature)
    b, _, h, w = feature.shape
    with torch.no_grad():
        weights = reference.grid_cosine_weights(feature.detach().float())
        tree = minimum_spanning_tree_ref(grid_edges(h, w, feature.device), weights, h * w)
        return tree, bfs_ref(tree, 0)
