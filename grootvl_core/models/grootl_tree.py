"""The two token trees of GrootL's tree-scanning mixer (reference-grootvl.md 4.3, steps 6-9).

The published code flips the sequence in time and rolls the edge weights so that its tree root is
flipped position 0. We work in ORIGINAL token order instead, which gives the same trees and the
same scan results without the flip/roll:

- vertex ``t`` is token ``t``; the root is the last token ``L - 1``;
- the weight of the edge between token ``t`` and its parent is ``Abar[t + 1]`` for every tree
  (published quirk 6.4: the roll was designed for the chain and is reused for tree 2), i.e. the
  vertex-order weights are ``a[..., t] = Abar[..., t + 1]`` for ``t < L - 1`` (root value ignored);
- tree 1 is the chain ``parent(t) = t + 1``: its subtree scan is exactly Mamba's recurrence
  ``h_t = Abar_t h_{t-1} + Bbar_t u_t``;
- tree 2 is the minimum spanning tree of a "band graph": a band of width ``band`` (published: 3)
  over the first ``P`` tokens (the context / prompt) and a chain after it, with edge weights
  ``exp(-cos)`` of the ``Bbar * u`` features of the two endpoints.

The band graph's edge list is built in the published ``generate_pairs`` order (mapped from flipped
position ``p`` to token ``L - 1 - p``) because the MST breaks weight ties by edge index.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
from torch import Tensor

from grootvl_core.ops import TreeOrder, bfs, minimum_spanning_tree

# NOTE: chain_tree lives in ops (the vision raster ablation uses it too); re-exported here, with its
# cache (_chain_tree_cpu), for callers and tests that import it from this module.
from grootvl_core.ops.chain import _chain_tree_cpu, chain_tree  # noqa: F401

__all__ = [
    "band_graph_edges",
    "chain_tree",
    "feature_tree",
    "normalize_context_lengths",
]


@functools.lru_cache(maxsize=128)
@torch.inference_mode(False)  # NOTE: cached across calls, so never an inference tensor (see chain_tree)
def _band_graph_edges_cpu(length: int, context_length: int, band: int) -> Tensor:
    L, P = length, context_length
    pairs: list[tuple[int, int]] = []
    # Flipped positions, as in the published `generate_pairs(L, P)`: the chain over the non-prompt
    # tokens (flipped 0 .. L-P-1, including the bridge edge [L-P-1, L-P]) comes first ...
    for i in range(L - P):
        pairs.append((i, i + 1))
    # ... then, per flipped position of the prompt, its edges to the next `band` positions.
    for i in range(L - P, L):
        for k in range(1, band + 1):
            if i + k <= L - 1:
                pairs.append((i, i + k))
    flipped = torch.tensor(pairs, dtype=torch.int64).reshape(-1, 2)
    return (L - 1) - flipped  # flipped position p is token L-1-p


def band_graph_edges(
    length: int, context_length: int, band: int = 3, device: torch.device | str | None = None
) -> Tensor:
    """Edges of GrootL's band graph over ``length`` tokens, in original token order.

    The first ``context_length`` tokens are joined to every token at distance ``<= band`` inside the
    context; the remaining tokens form a chain attached to the last context token. Edge order is the
    published ``generate_pairs`` order mapped to token ids (each row ``[t, t - k]``): it decides MST
    tie-breaking. Example ``length=8, context_length=4`` (flipped rows ``[0,1],[1,2],[2,3],[3,4],
    [4,5],[4,6],[4,7],[5,6],[5,7],[6,7]``): ``[7,6],[6,5],[5,4],[4,3],[3,2],[3,1],[3,0],[2,1],
    [2,0],[1,0]``.

    Args:
        length: ``L >= 1`` tokens.
        context_length: ``P`` in ``[0, L]``; ``P <= 2`` gives the plain chain.
        band: band width (published: 3), ``>= 1``.
        device: device of the result.

    Returns:
        ``(E, 2)`` int64 with ``E = (L - P) + sum over the context of min(band, remaining)``
        (``L + 2P - 6`` for ``band = 3`` and ``3 <= P <= L``).
    """
    length, context_length, band = int(length), int(context_length), int(band)
    if length < 1:
        raise ValueError(f"band_graph_edges: length must be >= 1, got {length}")
    if not 0 <= context_length <= length:
        raise ValueError(f"band_graph_edges: context_length must lie in [0, {length}], got {context_length}")
    if band < 1:
        raise ValueError(f"band_graph_edges: band must be >= 1, got {band}")
    # NOTE: P = 0 would add the flipped pair [L-1, L] (out of range); its tree is the chain too.
    p = max(context_length, 1)
    return _band_graph_edges_cpu(length, p, band).to(device=device, copy=True)


def normalize_context_lengths(context_lengths, batch: int, length: int) -> list[int]:
    """Per-sample context lengths as a list of ``B`` ints clamped to ``[0, L]``.

    Args:
        context_lengths: ``None`` (the whole input is context: ``P = L``), an int (shared), or a
            sequence / 1-D tensor of ``B`` ints. Values above ``L`` are clamped to ``L`` (published
            bug 6.10 crashed instead).
        batch: ``B``.
        length: ``L``.

    Returns:
        ``list[int]`` of length ``B``.
    """
    if context_lengths is None:
        return [length] * batch
    if isinstance(context_lengths, Tensor):
        if context_lengths.dim() == 0:
            context_lengths = [int(context_lengths)] * batch
        elif context_lengths.dim() == 1:
            context_lengths = [int(v) for v in context_lengths.tolist()]
        else:
            raise ValueError(
                f"context_lengths must be an int or a 1-D tensor of {batch} values, got "
                f"shape {tuple(context_lengths.shape)}"
            )
    elif isinstance(context_lengths, int):
        context_lengths = [context_lengths] * batch
    elif isinstance(context_lengths, Sequence):
        context_lengths = [int(v) for v in context_lengths]
    else:
        raise TypeError(
            f"context_lengths must be None, an int, a sequence or a tensor, got {type(context_lengths).__name__}"
        )
    if len(context_lengths) != batch:
        raise ValueError(f"context_lengths must have one value per sample (B={batch}), got {len(context_lengths)}")
    if any(v < 0 for v in context_lengths):
        raise ValueError(f"context_lengths must be >= 0, got {context_lengths}")
    return [min(v, length) for v in context_lengths]


def _dots_by_offset(f: Tensor, band: int) -> tuple[Tensor, list[Tensor]]:
    """Norms ``(B, L)`` and, for ``k = 1..band``, ``dot[k-1][:, t] = <f[:, :, t + k], f[:, :, t]>``."""
    f = f.float()
    return f.norm(dim=1), [(f[:, :, k:] * f[:, :, :-k]).sum(dim=1) for k in range(1, band + 1)]


def _cosine_by_offset(feature: Tensor, band: int, factors: tuple[Tensor, Tensor] | None = None) -> list[Tensor]:
    """``cos[k-1][:, t] = cos(feature[:, :, t], feature[:, :, t - k])`` for ``t >= k``.

    With ``factors = (x (B, D, L), b (B, N, L))`` such that ``feature[:, d * N + n, t] = x[:, d, t]
    * b[:, n, t]`` (GrootL's ``Bbar u = (Delta u) outer B``), dot products and norms factorise:
    ``<x_t (x) b_t, x_s (x) b_s> = <x_t, x_s> <b_t, b_s>``, so D + N channels are read instead of
    D * N (16x less work for mamba-130m); same value up to float rounding.
    """
    if factors is None:
        norm, dots = _dots_by_offset(feature, band)
    else:
        (nx, dx), (nb, db) = (_dots_by_offset(t, band) for t in factors)
        norm, dots = nx * nb, [a * b for a, b in zip(dx, db)]
    # NOTE: same eps rule as F.cosine_similarity (clamp of the norm product at 1e-8).
    return [dot / (norm[:, k:] * norm[:, :-k]).clamp_min(1e-8) for k, dot in enumerate(dots, start=1)]


def feature_tree(
    feature: Tensor, context_lengths: Sequence[int], band: int = 3, factors: tuple[Tensor, Tensor] | None = None
) -> TreeOrder:
    """Tree 2: per sample, the MST of its band graph under ``exp(-cos)`` feature weights.

    Each sample uses its own context length (fixing published bugs 6.9/6.10, which used one
    batch-wide value). A sample with ``P <= 2`` gets the chain, which is exactly what its band graph
    is then (the published code special-cases ``P <= 2`` to "tree 2 := tree 1" with the same result).

    Args:
        feature: ``(B, C, L)`` features the weights are computed from (GrootL: ``Bbar * u``, all
            ``D * N`` channels); not differentiated (the tree is topology).
        context_lengths: ``B`` ints in ``[0, L]`` (see :func:`normalize_context_lengths`).
        band: band width of the context part (published: 3).
        factors: optional ``(x (B, D, L), b (B, N, L))`` with ``feature = x outer b`` per token;
            the cosines are then computed from the factors (see :func:`_cosine_by_offset`).

    Returns:
        :class:`~grootvl_core.ops.TreeOrder` rooted at the last token, ``(B, L)`` int64 tensors.
    """
    batch, _, length = feature.shape
    device = feature.device
    tree = chain_tree(batch, length, device)
    order, parent, depth = (t.clone() for t in tree)
    groups: dict[int, list[int]] = {}
    for b, p in enumerate(context_lengths):
        if p > 2:
            groups.setdefault(int(p), []).append(b)
    if not groups:
        return tree
    with torch.no_grad():
        cos = _cosine_by_offset(feature.detach(), band, None if factors is None else tuple(t.detach() for t in factors))
        for p, members in groups.items():
            edges = band_graph_edges(length, p, band, device=device)  # (E, 2) rows [t, t-k]
            k = edges[:, 0] - edges[:, 1]
            idx = torch.tensor(members, device=device)
            weights = torch.empty(len(members), edges.shape[0], device=device)
            for off in range(1, band + 1):
                sel = torch.nonzero(k == off).flatten()
                if sel.numel():
                    # cos[off-1][:, j] belongs to the pair (j + off, j): index by the smaller token.
                    weights[:, sel] = torch.exp(-cos[off - 1][idx][:, edges[sel, 1]])
            mst = minimum_spanning_tree(edges, weights, length)
            o, par, dep = bfs(mst, root=length - 1)
            order[idx], parent[idx], depth[idx] = o, par, dep
    return TreeOrder(order, parent, depth)
