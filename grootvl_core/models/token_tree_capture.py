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

from grootvl_core.ops import TreeOrder, chain_tree

from .grootl import GrootLMixer

__all__ = ["TokenTreeRecord", "capture_token_trees", "mean_path_products_to_root", "path_products_to_root"]

CHUNK_CHANNELS = 256  # channels per step of mean_path_products_to_root (2 MB at 1000 tokens)


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


def mean_path_products_to_root(tree: TreeOrder, weight: Tensor, chunk_channels: int = CHUNK_CHANNELS) -> Tensor:
    """``path_products_to_root(tree, weight).mean(dim=1)`` without its ``(B, C, V)`` float64 tensors.

    By pointer jumping in vertex order: after step ``k`` every vertex holds the product over the
    first ``2**k`` vertices of its path to the root (the root counting 1) and points ``2**k``
    levels up, so ``ceil(log2 V)`` steps finish any tree. ``chunk_channels`` channels at a time:
    every temporary is ``(V, chunk_channels)``, so a long prompt's capture never allocates
    (and frees) hundreds of megabytes per request.

    Returns:
        ``(B, V)`` float64 CPU tensor in vertex order (1 at the root).
    """
    order, parent = tree.order, tree.parent
    b, c, v = weight.shape
    up = torch.empty_like(order)
    up.scatter_(1, order, torch.gather(order, 1, parent))  # parent VERTEX of each vertex; the root: itself
    ancestors = [up]
    for _ in range(max(1, (v - 1).bit_length()) - 1):
        ancestors.append(torch.gather(ancestors[-1], 1, ancestors[-1]))
    # NumPy (one thread, one pass per row gather) rather than torch: these ops are too small to gain
    # from intra-op threads and lose much to their start-up when the cores are busy.
    w = weight.detach().cpu().numpy()
    total = np.zeros((b, v), dtype=np.float64)
    for i in range(b):
        root = int(order[i, 0])
        jumps = [anc[i].cpu().numpy() for anc in ancestors]
        for start in range(0, c, chunk_channels):
            prod = np.ascontiguousarray(w[i, start : start + chunk_channels].T, dtype=np.float64)  # (V, chunk)
            prod[root] = 1.0  # the root's own value is ignored
            for anc in jumps:
                prod *= prod[anc]
            total[i] += prod.sum(axis=1)
    return torch.from_numpy(total / c)


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
            reach = mean_path_products_to_root(tree, weight).cpu().numpy()
            reach_chain = mean_path_products_to_root(chain, weight).cpu().numpy()
        order, parent_pos = tree.order.cpu(), tree.parent.cpu()
        for i in range(batch):
            parent = np.full(length, -1, dtype=np.int64)
            o = order[i].numpy()
            parent[o[1:]] = o[parent_pos[i, 1:].numpy()]
            is_chain = bool(np.array_equal(parent[:-1], np.arange(1, length)))
            records.append(
                TokenTreeRecord(
                    layer=mixer.layer_idx,
                    sample=i,
                    length=length,
                    context_length=int(context_lengths[i]),
                    is_chain=is_chain,
                    parent=parent,
                    reach=reach[i],
                    reach_chain=reach_chain[i],
                )
            )

    previous = [m._capture for m in mixers]
    for m in mixers:
        m._capture = hook
    try:
        yield records
    finally:
        for m, prev in zip(mixers, previous):
            m._capture = prev
