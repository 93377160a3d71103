"""Record the trees GrootL builds over a prompt's tokens, for visualisation (reference 4.3).

    with capture_token_trees(model) as records:
        model(input_ids)
    rec = records[0]                  # layer 0, sample 0
    rec.edges                         # (L-1, 2) token pairs of the feature tree (tree 2)
    rec.reach                         # (L,) how strongly each token reaches the last token

Every :class:`~grootvl_core.models.grootl.GrootLMixer` reports, during the ordinary full-sequence
forward pass (no second pass; decoding steps report nothing), its feature tree (tree 2: the
minimum spanning tree of the band graph over the context, rooted at the last token) and the
vertex-order transition weights ``Abar``. In the subtree scan rooted at the last token, token
``j`` enters the last token's state multiplied by ``S(j, root)``, the product of the weights on
the tree path; ``reach`` is that product averaged over the ``D * N`` state channels (exact per
channel, then averaged), ``reach_chain`` the same for tree 1, the plain Mamba chain. The mixer's
output mixes them: ``chain + tree_scale * tree``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from grootvl_core.ops import TreeOrder

from .grootl import GrootLMixer
from .grootl_tree import chain_tree

__all__ = ["TokenTreeRecord", "capture_token_trees", "path_products_to_root"]


@dataclass
class TokenTreeRecord:
    """The tree one GrootL layer used for one sequence.

    Attributes:
        layer: index of the layer (``backbone.layers.{layer}``).
        sample: index of the sequence in the batch.
        length: number of tokens ``L``.
        context_length: the context (prompt) length the band graph was built over.
        is_chain: True when tree 2 is the chain (``tree_scale = 0`` or a context of <= 2 tokens).
        parent: ``(L,)`` int64 parent TOKEN of each token (the root, the last token, has -1).
        reach: ``(L,)`` float64, channel mean of the tree-path weight product from each token to
            the last token (1 for the last token itself).
        reach_chain: ``(L,)`` float64, the same along the chain (tree 1).
    """

    layer: int
    sample: int
    length: int
    context_length: int
    is_chain: bool
    parent: np.ndarray
    reach: np.ndarray
    reach_chain: np.ndarray

    @property
    def edges(self) -> np.ndarray:
        """``(L-1, 2)`` int64 ``(child, parent)`` token pairs of the tree."""
        child = np.nonzero(self.parent >= 0)[0]
        return np.stack([child, self.parent[child]], axis=1).astype(np.int64)


def path_products_to_root(tree: TreeOrder, weight: Tensor) -> Tensor:
    """``out[b, c, v]`` = product of ``weight[b, c, u]`` over the vertices ``u`` on the tree path
    from ``v`` up to (not including) the root; 1 at the root.

    Args:
        tree: :class:`TreeOrder` with ``(B, V)`` tensors (BFS order, parent positions).
        weight: ``(B, C, V)`` in vertex order (``weight[..., v]`` is the weight of the edge between
            ``v`` and its parent).

    Returns:
        ``(B, C, V)`` float64 in vertex order.
    """
    order, parent = tree.order, tree.parent
    b, c, v = weight.shape
    w = torch.gather(weight.double(), 2, order[:, None, :].expand(b, c, v))  # BFS-position order
    out = torch.ones_like(w)
    rows = torch.arange(b, device=w.device)
    for pos in range(1, v):  # parents come before children in BFS order
        out[:, :, pos] = out[rows, :, parent[:, pos]] * w[:, :, pos]
    result = torch.empty_like(out)
    result.scatter_(2, order[:, None, :].expand(b, c, v), out)
    return result


@contextlib.contextmanager
def capture_token_trees(model: nn.Module) -> Iterator[list[TokenTreeRecord]]:
    """Collect a :class:`TokenTreeRecord` per (layer, sequence) of each full forward pass inside
    the block (prefills included, decoding steps not).

    Args:
        model: a :class:`~grootvl_core.models.GrootL` (or any module containing GrootL mixers).

    Yields:
        The list the records are appended to, in call order (layer, then sample).
    """
    mixers = [m for m in model.modules() if isinstance(m, GrootLMixer)]
    if not mixers:
        raise ValueError(f"capture_token_trees: {type(model).__name__} contains no GrootL mixer")
    records: list[TokenTreeRecord] = []

    def hook(mixer: GrootLMixer, tree: TreeOrder, weight: Tensor, context_lengths: list[int]) -> None:
        batch, _, length = weight.shape
        chain = chain_tree(batch, length, weight.device)
        with torch.no_grad():
            reach = path_products_to_root(tree, weight).mean(dim=1).cpu().numpy()
            reach_chain = path_products_to_root(chain, weight).mean(dim=1).cpu().numpy()
        order, parent_pos = tree.order.cpu(), tree.parent.cpu()
        for i in range(batch):
            parent = np.full(length, -1, dtype=np.int64)
            o = order[i].numpy()
            parent[o[1:]] = o[parent_pos[i, 1:].numpy()]
            is_chain = bool(np.array_equal(parent[:-1], np.arange(1, length)))
            records.append(TokenTreeRecord(
                layer=mixer.layer_idx, sample=i, length=length, context_length=int(context_lengths[i]),
                is_chain=is_chain, parent=parent, reach=reach[i], reach_chain=reach_chain[i]))

    previous = [m._capture for m in mixers]
    for m in mixers:
        m._capture = hook
    try:
        yield records
    finally:
        for m, prev in zip(mixers, previous):
            m._capture = prev
