"""Minimum spanning tree and BFS order in fixed-round PyTorch tensor ops: no host round trip.

The GPU backends' tree builders (reference-grootvl.md 1.3 and 1.5) for devices where a queue or a
union-find loop would need the host: every step is a gather, scatter, sort or prefix sum over the
whole batch, repeated a number of times fixed by the sizes alone, so nothing waits for the device
to say when to stop (no ``.item()``, no data-dependent shape). Both return exactly what
:mod:`.reference` returns for a valid input, row order and BFS order included; they run on any
device (CI runs them on the CPU).

- :func:`mst`: Boruvka. Every edge gets one int64 key ``(float32 weight as an ordered integer,
  edge index)``, so "the lightest crossing edge, ties to the lower index" is one ``amin`` scatter
  per round; the chosen edges hook components together (only mutual pairs form cycles, broken
  towards the lower label) and pointer jumping flattens them. ``ceil(log2 V)`` rounds always
  suffice, since every round at least halves the components of a connected graph. The tree's
  rows come sorted by key: Kruskal's acceptance order, the reference's row order.
- :func:`bfs`: the Euler tour technique. Two tours of the tree's arcs (list ranking by pointer
  jumping, ``ceil(log2 2V)`` rounds each): the first roots the tree (parents, depths), the second
  gives the preorder with children in row order. The reference's breadth-first order is the
  order of ``(depth, preorder)``: within a level, both compare the rows along the paths from the
  root at the first place they differ.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["mst", "bfs", "edge_keys"]

_INF = torch.iinfo(torch.int64).max
_INDEX_BITS = 31  # edge indices below 2**31; the ordered float32 takes the 32 bits above them


def _rounds(n: int) -> int:
    """``ceil(log2 n)`` for ``n >= 1`` (0 for 1)."""
    return max(0, math.ceil(math.log2(n))) if n > 1 else 0


def edge_keys(weights: Tensor) -> Tensor:
    """``(B, E)`` int64 keys ordered as ``(float32 weight, edge index)`` with NaN last and
    ``-0.0 == +0.0`` (``torch.sort``'s order of the weights, made total by the index)."""
    w = weights.float() + 0.0  # -0.0 + 0.0 == +0.0
    bits = w.view(torch.int32).to(torch.int64) & 0xFFFFFFFF
    ordered = torch.where(bits >= 2**31, 0xFFFFFFFF - bits, bits + 2**31)  # IEEE order as integers
    ordered = torch.where(torch.isnan(w), torch.full_like(ordered, 0xFFFFFFFF), ordered)
    index = torch.arange(w.shape[1], device=w.device, dtype=torch.int64)
    return ordered * 2**_INDEX_BITS + index


def mst(edges: Tensor, weights: Tensor, num_vertices: int) -> tuple[Tensor, Tensor]:
    """Boruvka MST. ``edges (B, E, 2)`` int64 with ids in ``[0, V)``, ``weights (B, E)`` float32.

    Returns ``(tree (B, V-1, 2) int32, ok (B,) bool)`` as :func:`.reference.mst`: the unique MST
    under ``(float32 weight, edge index)``, rows in ascending key order; a batch element whose
    graph is not connected gets ``ok`` False and its missing rows ``-1``."""
    batch, n_edges, _ = edges.shape
    v = int(num_vertices)
    dev = edges.device
    if v <= 1 or n_edges == 0:
        tree = torch.full((batch, max(v - 1, 0), 2), -1, dtype=torch.int32, device=dev)
        return tree, torch.full((batch,), v <= 1, dtype=torch.bool, device=dev)
    if n_edges >= 2**_INDEX_BITS:
        raise ValueError(f"minimum_spanning_tree: at most 2**31 - 1 edges, got {n_edges}")
    src, dst = edges[..., 0], edges[..., 1]
    keys = edge_keys(weights)
    label = torch.arange(v, device=dev, dtype=torch.int64).expand(batch, v)
    comp = label.clone()  # component label of every vertex: a vertex of the component
    chosen = torch.zeros(batch, n_edges + 1, dtype=torch.bool, device=dev)  # last column: "none"
    rounds = _rounds(v)
    for r in range(rounds):
        cs, ct = comp.gather(1, src), comp.gather(1, dst)
        k = torch.where(cs != ct, keys, _INF)
        best = torch.full((batch, v), _INF, device=dev, dtype=torch.int64)
        best.scatter_reduce_(1, cs, k, "amin")
        best.scatter_reduce_(1, ct, k, "amin")
        has = best != _INF  # only component labels with a crossing edge
        e = torch.where(has, best & (2**_INDEX_BITS - 1), n_edges)
        chosen.scatter_(1, e, True)
        e = e.clamp_max(n_edges - 1)
        ce_s, ce_t = comp.gather(1, src.gather(1, e)), comp.gather(1, dst.gather(1, e))
        hook = torch.where(has, torch.where(ce_s == label, ce_t, ce_s), label)
        mutual = hook.gather(1, hook) == label
        hook = torch.where(mutual & (label < hook), label, hook)  # a mutual pair: lower label roots
        # round r starts with at most V / 2**r components per connected part, so a hook chain is
        # shorter than 2**(rounds - r): that many doublings flatten it
        for _ in range(rounds - r):
            hook = hook.gather(1, hook)
        comp = hook.gather(1, comp)
    picked = torch.where(chosen[:, :n_edges], keys, _INF)
    if n_edges < v - 1:  # too few edges to connect: missing rows stay -1
        picked = torch.cat([picked, picked.new_full((batch, v - 1 - n_edges), _INF)], dim=1)
    top, idx = torch.sort(picked, dim=1)
    top, idx = top[:, : v - 1], idx[:, : v - 1]
    valid = top != _INF
    rows = edges.gather(1, idx.clamp_max(n_edges - 1)[..., None].expand(-1, -1, 2))
    tree = torch.where(valid[..., None], rows, -1).to(torch.int32)
    return tree, valid.all(dim=1)


def _list_rank(succ: Tensor, end: int) -> tuple[Tensor, Tensor]:
    """Distance of every node to ``end`` along ``succ`` (``(B, N+1)``, ``succ[:, end] == end``),
    and whether it reaches ``end`` within ``N`` steps; pointer jumping, ``ceil(log2(N+1))``
    rounds."""
    dist = torch.ones_like(succ)
    dist[:, end] = 0
    nxt = succ
    for _ in range(_rounds(succ.shape[1])):
        dist = dist + dist.gather(1, nxt)
        nxt = nxt.gather(1, nxt)
    return dist, nxt == end


def _euler_tour(tail: Tensor, head: Tensor, rank: Tensor, v: int, root: int):
    """One Euler tour of the tree's arcs from ``root``; each vertex's arcs are taken in ascending
    ``rank`` (cyclically, so a vertex's children follow its parent arc in rank order).

    Returns ``(position of every arc in the tour, reached (B, N) bool, tour (B, N) arc at every
    position)``."""
    batch, n = tail.shape
    dev = tail.device
    perm = torch.argsort(tail * (n + 1) + rank, dim=1)  # arcs grouped by tail, by rank within
    slot = torch.empty_like(perm).scatter_(1, perm, torch.arange(n, device=dev).expand(batch, n))
    deg = torch.zeros(batch, v, dtype=torch.int64, device=dev).scatter_add_(1, tail, torch.ones_like(tail))
    first = torch.cumsum(deg, dim=1) - deg
    k = slot + 1
    k = torch.where(k < (first + deg).gather(1, tail), k, first.gather(1, tail))  # cyclic next
    next_arc = perm.gather(1, k)  # next arc out of the same vertex
    arcs = torch.arange(n, device=dev).expand(batch, n)
    succ = next_arc.gather(1, arcs ^ 1)  # after u->v comes the arc after v->u around v
    # the tour starts with the root's first arc and ends with the twin of its last one
    start = perm.gather(1, first[:, root : root + 1].clamp_max(n - 1))
    last = perm.gather(1, (first + deg)[:, root : root + 1].sub(1).clamp(0, n - 1)) ^ 1
    succ = succ.scatter(1, last, n)
    succ = torch.cat([succ, torch.full((batch, 1), n, dtype=succ.dtype, device=dev)], dim=1)
    dist, reached = _list_rank(succ, n)
    total = dist.gather(1, start)
    pos = (total - dist[:, :n]).clamp(0, n - 1)
    tour = torch.zeros_like(perm).scatter_(1, pos, arcs)
    return pos, reached[:, :n], tour, deg


def _walk(tail, head, pos, tour, v):
    """Parent, depth and preorder index of every vertex from one tour (root: parent -1 row)."""
    batch, n = tail.shape
    dev = tail.device
    down = pos < pos.gather(1, torch.arange(n, device=dev).expand(batch, n) ^ 1)  # parent -> child
    down_t = down.gather(1, tour)
    depth_t = torch.cumsum(torch.where(down_t, 1, -1), dim=1)
    pre_t = torch.cumsum(down_t.to(torch.int64), dim=1)
    child = torch.where(down_t, head.gather(1, tour), v)  # column v collects the up arcs
    zeros = torch.zeros(batch, v + 1, dtype=torch.int64, device=dev)
    parent = zeros.scatter(1, child, tail.gather(1, tour))[:, :v]
    depth = zeros.scatter(1, child, depth_t)[:, :v]
    pre = zeros.scatter(1, child, pre_t)[:, :v]
    return parent, depth, pre


def bfs(tree: Tensor, root: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Breadth-first order of spanning trees. ``tree (B, V-1, 2)`` int64 rows.

    Returns ``(order, parent, depth, ok)`` as :func:`.reference.bfs` (``(B, V)`` int64 each, parent
    as positions, neighbours visited in row order). A batch element whose rows are not a spanning
    tree (or name ids outside ``[0, V)``) gets ``ok`` False and all-zero tables."""
    batch, n_rows, _ = tree.shape
    v = n_rows + 1
    dev = tree.device
    zeros = torch.zeros(batch, v, dtype=torch.int64, device=dev)
    if v == 1:
        return zeros, zeros.clone(), zeros.clone(), torch.ones(batch, dtype=torch.bool, device=dev)
    rows = tree.to(torch.int64)
    in_range = ((rows >= 0) & (rows < v)).flatten(1).all(dim=1)
    rows = rows.clamp(0, v - 1)
    n = 2 * n_rows
    tail = torch.stack([rows[..., 0], rows[..., 1]], dim=2).reshape(batch, n)  # arc 2r: s->t, 2r+1: t->s
    head = torch.stack([rows[..., 1], rows[..., 0]], dim=2).reshape(batch, n)
    row_of = torch.arange(n, device=dev).expand(batch, n) // 2

    # tour 1: root the tree (each vertex's arcs in row order)
    pos, reached, tour, deg = _euler_tour(tail, head, row_of, v, root)
    parent_v, depth_v, _ = _walk(tail, head, pos, tour, v)
    ok = in_range & reached.all(dim=1) & (deg > 0).all(dim=1)
    # tour 2: the arc to the parent first, then the children in row order -> BFS's preorder
    to_parent = head == parent_v.gather(1, tail)
    to_parent &= tail != root
    pos, _, tour, _ = _euler_tour(tail, head, torch.where(to_parent, 0, row_of + 1), v, root)
    _, _, pre = _walk(tail, head, pos, tour, v)

    order = torch.argsort(depth_v * v + pre, dim=1)
    position = torch.empty_like(order).scatter_(1, order, torch.arange(v, device=dev).expand(batch, v))
    parent = position.gather(1, parent_v.gather(1, order))
    parent[:, 0] = 0
    depth = depth_v.gather(1, order)
    keep = ok[:, None]
    return (torch.where(keep, order, 0), torch.where(keep, parent, 0), torch.where(keep, depth, 0), ok)
