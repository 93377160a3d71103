"""The chain ``parent(t) = t + 1`` as a tree already in BFS order (rooted at the last vertex).

Its subtree scan is exactly a causal 1-D recurrence ``h_t = a_t h_{t-1} + x_t``: GrootL's tree 1
(reference-grootvl.md 4.3) and the vision ``scan_order="raster"`` ablation both use it.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from .spanning_tree import TreeOrder

__all__ = ["chain_tree"]


@functools.lru_cache(maxsize=64)
@torch.inference_mode(False)  # NOTE: cached across calls, so never an inference tensor (see chain_tree)
def _chain_tree_cpu(length: int) -> tuple[Tensor, Tensor, Tensor]:
    order = torch.arange(length - 1, -1, -1, dtype=torch.int64)  # root L-1, then L-2, ... 0
    parent = (torch.arange(length, dtype=torch.int64) - 1).clamp_(min=0)
    depth = torch.arange(length, dtype=torch.int64)
    return order, parent, depth


def chain_tree(batch: int, length: int, device: torch.device | str | None = None) -> TreeOrder:
    """The chain ``parent(t) = t + 1`` rooted at the last vertex ``L - 1``, already in BFS order.

    Args:
        batch: ``B``.
        length: ``L >= 1``.
        device: device of the result.

    Returns:
        :class:`~grootvl_core.ops.TreeOrder` with ``(B, L)`` int64 tensors.
    """
    # NOTE: copies, never views of the cached tensors: a caller may write into its tree, and a view
    # made under torch.inference_mode would be an inference tensor that autograd cannot save later.
    return TreeOrder(*(t.to(device).repeat(batch, 1) for t in _chain_tree_cpu(int(length))))
