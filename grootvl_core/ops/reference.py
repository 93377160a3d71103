"""Pure-PyTorch reference of the tree-scan op: the oracle every fast path is tested against, and
the runtime fallback when no native build is available.

Conventions (reference-grootvl.md 1.2 to 1.9, design.md "Op API"):

- A tree over ``V`` vertices is visited in BFS order from a root. ``order[b, i]`` is the vertex at
  BFS position ``i`` (``order[:, 0] == root``), ``parent[b, i]`` the POSITION of its parent (0 for
  the root), ``depth[b, i]`` its distance to the root. Parents come before children.
- ``x`` and ``a`` are ``(B, D, V)`` in vertex order; ``a[b, d, v]`` is the weight of the edge between
  ``v`` and its parent (the root's value is ignored). ``S(i, j)`` is the product of ``a`` over the
  tree path between ``i`` and ``j``.
- ``full``:    ``y_i = sum_j S(i, j) x_j``                (two passes, vision)
- ``subtree``: ``y_i = sum_{j in subtree(i)} S(i, j) x_j`` (leaf-to-root pass only, language)

Backend interface (the native extension exposes the same eight functions with the same meaning):

    grid_cosine_weights(feature (B,D,H,W) float32) -> (B,E) float32 exp(-cos) per grid edge (native: CPU)
    ssm_output(h, u, c, ds, h_w, h_b, h_eps, o_w, o_b, o_eps, z) -> TreeSSM output (native: CPU, no autograd)
    mst(edges (B,E,2) int64, weights (B,E) float32, num_vertices) -> (tree (B,V-1,2) int32, ok (B,) bool)
    bfs(tree (B,V-1,2) int, root) -> (order, parent, depth: (B,V) int64, ok (B,) bool)
    scan_full_fwd(x, a, order, parent, depth) -> (y vertex space, u sorted space)
    scan_full_bwd(g, a, order, parent, depth, y, u) -> (grad_x, grad_a)
    scan_subtree_fwd(x, a, order, parent, depth) -> y
    scan_subtree_bwd(g, a, order, parent, depth, y) -> (grad_x, grad_a)

CPU-only inference kernels of the native extension, each with its oracle here or in ``ops``:
``ssm_discretize``, ``depthwise_conv_silu`` (below), ``grid_tree`` (``ops.grid_spanning_tree_ref``)
and ``scan_full_infer`` (``scan_full_fwd``'s ``y``).

Scan functions take float32 or float64 ``(B, D, V)`` contiguous tensors (the native CPU ones
also channels-last views, see ``tree_scan``) and return the same dtype; ``u`` is the pass-1
aggregate in sorted (position) space.
"""

from __future__ import annotations

from collections import deque

import torch

__all__ = [
    "depthwise_conv_silu",
    "grid_cosine_weights",
    "ssm_discretize",
    "ssm_output",
    "check_tree",
    "mst",
    "bfs",
    "scan_full_fwd",
    "scan_full_bwd",
    "scan_subtree_fwd",
    "scan_subtree_bwd",
    "tree_scan_ref",
]


# ----------------------------------------------------------------------------------------------
# Grid edge weights (reference 1.2): exp(-cosine similarity) of the two endpoints' features
# ----------------------------------------------------------------------------------------------


def grid_cosine_weights(feature: torch.Tensor) -> torch.Tensor:
    """``(B, D, H, W)`` float32 -> ``(B, E)`` ``exp(-cos)`` per grid edge, vertical edges first, then
    horizontal, each row-major (``grid_edges`` order); eps 1e-8 on each norm as
    ``F.cosine_similarity``."""
    b = feature.shape[0]
    # NOTE: normalise every pixel once (PyTorch's rule: each norm clamped to eps separately),
    # then neighbours' dot products: 2x faster than F.cosine_similarity per edge, same values
    # up to float rounding.
    n = feature / torch.linalg.vector_norm(feature, dim=1, keepdim=True).clamp_min(1e-8)
    vertical = (n[:, :, :-1, :] * n[:, :, 1:, :]).sum(1)
    horizontal = (n[:, :, :, :-1] * n[:, :, :, 1:]).sum(1)
    cos = torch.cat([vertical.reshape(b, -1), horizontal.reshape(b, -1)], dim=1)
    return torch.exp(-cos)


def depthwise_conv_silu(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    """``silu(conv2d(x, weight, bias, padding=k // 2, groups=C))`` on channels-last ``x``
    ``(B, H, W, C)``; returns ``(B, H, W, C)`` (TreeSSM step 4)."""
    k = weight.shape[-1]
    y = torch.nn.functional.conv2d(x.permute(0, 3, 1, 2), weight, bias, padding=k // 2, groups=x.shape[-1])
    return torch.nn.functional.silu(y).permute(0, 2, 3, 1)


def ssm_discretize(
    dt: torch.Tensor, bias: torch.Tensor, a: torch.Tensor, b: torch.Tensor, u: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """GrootV TreeSSM's discretisation (reference 2.2 steps 7-9) over ``(B, L, D)`` rows:
    ``delta = softplus(dt + bias)``, returns ``(exp(delta * a), delta * b * u)``; ``a`` is the
    continuous ``A = -exp(A_logs)`` per channel, ``b`` the per-pixel ``B`` as ``(B, L, 1)``."""
    delta = torch.nn.functional.softplus(dt + bias)
    return torch.exp(delta * a), delta * b * u


def ssm_output(
    h: torch.Tensor,
    u: torch.Tensor,
    c: torch.Tensor,
    ds: torch.Tensor,
    h_weight,
    h_bias,
    h_eps: float,
    o_weight: torch.Tensor,
    o_bias: torch.Tensor,
    o_eps: float,
    z: torch.Tensor,
    silu_gate: bool = False,
) -> torch.Tensor:
    """GrootV TreeSSM's output (reference 2.2 steps 3, 13-16): ``out_norm(h_norm(h) * c + u * ds) * g``
    over ``(B, L, D)`` rows, LayerNorms over ``D`` (``h_norm`` skipped when its weight is None),
    gate ``g = silu(z)`` if ``silu_gate`` else ``z``; ``h``, ``u``, ``c`` float32, the result cast
    to ``z``'s dtype before the gate."""
    d = h.shape[-1]
    if h_weight is not None:
        h = torch.nn.functional.layer_norm(h, (d,), h_weight, h_bias, h_eps)
    y = torch.addcmul(u * ds, h, c)
    y = torch.nn.functional.layer_norm(y, (d,), o_weight, o_bias, o_eps)
    return y.to(z.dtype) * (torch.nn.functional.silu(z) if silu_gate else z)


# ----------------------------------------------------------------------------------------------
# Minimum spanning tree: Kruskal on a stable sort, i.e. the unique MST under the total order
# (float32 weight, edge index). NaN weights sort last (torch.sort's rule).
# ----------------------------------------------------------------------------------------------


def _find(parent: list[int], v: int) -> int:
    root = v
    while parent[root] != root:
        root = parent[root]
    while parent[v] != root:  # path compression
        parent[v], v = root, parent[v]
    return root


def mst(edges: torch.Tensor, weights: torch.Tensor, num_vertices: int):
    """Kruskal with union-find. ``ok[b]`` is False when the graph of batch ``b`` is not connected
    (its rows are then padded with ``-1``)."""
    batch, _, _ = edges.shape
    v = int(num_vertices)
    tree = torch.full((batch, max(v - 1, 0), 2), -1, dtype=torch.int32)
    ok = torch.ones(batch, dtype=torch.bool)
    ranks = torch.sort(weights.detach().float().cpu(), dim=1, stable=True).indices
    edges_cpu = edges.detach().cpu().tolist()
    for b in range(batch):
        uf = list(range(v))
        count = 0
        eb = edges_cpu[b]
        for e in ranks[b].tolist():
            if count == v - 1:
                break
            s, t = eb[e]
            rs, rt = _find(uf, s), _find(uf, t)
            if rs != rt:
                uf[rs] = rt
                tree[b, count, 0] = s
                tree[b, count, 1] = t
                count += 1
        ok[b] = count == v - 1
    return tree.to(edges.device), ok.to(edges.device)


# ----------------------------------------------------------------------------------------------
# BFS: exact breadth-first order; neighbours are visited in the order of the tree's edge rows.
# ----------------------------------------------------------------------------------------------


def bfs(tree: torch.Tensor, root: int):
    batch, n_edges, _ = tree.shape
    v = n_edges + 1
    order = torch.zeros(batch, v, dtype=torch.int64)
    parent = torch.zeros(batch, v, dtype=torch.int64)
    depth = torch.zeros(batch, v, dtype=torch.int64)
    ok = torch.ones(batch, dtype=torch.bool)
    rows = tree.detach().cpu().tolist()
    for b in range(batch):
        adj: list[list[int]] = [[] for _ in range(v)]
        for s, t in rows[b]:
            adj[s].append(t)
            adj[t].append(s)
        pos = [-1] * v
        pos[root] = 0
        order[b, 0] = root
        n = 1
        queue = deque([root])
        while queue:
            cur = queue.popleft()
            pc = pos[cur]
            for nb in adj[cur]:
                if pos[nb] < 0:
                    pos[nb] = n
                    order[b, n] = nb
                    parent[b, n] = pc
                    depth[b, n] = depth[b, pc] + 1
                    n += 1
                    queue.append(nb)
        ok[b] = n == v
    dev = tree.device
    return order.to(dev), parent.to(dev), depth.to(dev), ok.to(dev)


# ----------------------------------------------------------------------------------------------
# Scans, vectorised per BFS depth level.
# ----------------------------------------------------------------------------------------------


def check_tree(order: torch.Tensor, parent: torch.Tensor, depth: torch.Tensor, op: str = "tree_scan") -> None:
    """Raise ``ValueError`` unless ``(order, parent, depth)`` is a rooted tree visited parents first:
    each ``order[b]`` a permutation of ``[0, V)``, ``parent[b, i]`` a position before ``i``, ``depth``
    the root's 0 and one more than the parent's elsewhere. The native CPU op checks the same; a
    forged table must never make the level loops below run for ``max(depth)`` rounds or read
    values that are not computed yet."""
    batch, v = order.shape
    if v == 0:
        return
    bad = []
    ids = torch.sort(order, dim=1).values
    if not torch.equal(ids, torch.arange(v, device=order.device).expand(batch, v)):
        bad.append(f"order[b] must be a permutation of [0, {v})")
    pos = torch.arange(v, device=parent.device)
    if v > 1 and not bool(((parent[:, 1:] >= 0) & (parent[:, 1:] < pos[1:])).all()):
        bad.append("parent[b, i] must be a position in [0, i) (parents come before children)")
    elif not bool((depth[:, 0] == 0).all()) or (
        v > 1 and not torch.equal(depth[:, 1:], depth.gather(1, parent[:, 1:].clamp(0, v - 1)) + 1)
    ):
        bad.append("depth must be 0 at the root and the parent's depth + 1 elsewhere")
    if bad:
        raise ValueError(
            f"{op}: the tree is not a valid TreeOrder: {'; '.join(bad)}. Build it with grootvl_core.ops.bfs"
        )


def _levels(depth: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(batch index, position)`` pairs of every non-root position, grouped by depth 1..max."""
    batch, v = depth.shape
    flat = depth.reshape(-1)
    idx = torch.argsort(flat, stable=True)
    counts = torch.bincount(flat, minlength=1).tolist()
    groups = torch.split(idx, counts)
    out = []
    for g in groups[1:]:
        if g.numel():
            out.append((torch.div(g, v, rounding_mode="floor"), g % v))
    return out


def _to_sorted(t: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``(B, D, V)`` vertex space -> ``(B, V, D)`` sorted space (a fresh tensor)."""
    return t.gather(2, order[:, None, :].expand_as(t)).transpose(1, 2).contiguous()


def _to_vertex(s: torch.Tensor, order: torch.Tensor) -> torch.Tensor:
    """``(B, V, D)`` sorted space -> ``(B, D, V)`` vertex space."""
    t = s.transpose(1, 2)
    out = torch.empty_like(t)
    out.scatter_(2, order[:, None, :].expand_as(t), t)
    return out


def _leaf_to_root(xs, es, parent, levels):
    """Pass 1 in sorted space: ``U[i] = x[i] + sum_{c in ch(i)} e_c U[c]``."""
    u = xs.clone()
    for bi, pos in reversed(levels):
        par = parent[bi, pos]
        u.index_put_((bi, par), es[bi, pos] * u[bi, pos], accumulate=True)
    return u


def _root_to_leaf_full(us, es, parent, levels):
    """Pass 2 in sorted space: ``Y[i] = (1 - e_i^2) U[i] + e_i Y[p(i)]``, ``Y[root] = U[root]``."""
    y = us.clone()
    for bi, pos in levels:
        e = es[bi, pos]
        y[bi, pos] = (1 - e * e) * us[bi, pos] + e * y[bi, parent[bi, pos]]
    return y


def _root_to_leaf_prefix(gs, es, parent, levels):
    """``G[i] = g[i] + e_i G[p(i)]``, ``G[root] = g[root]`` (sum over ancestors)."""
    out = gs.clone()
    for bi, pos in levels:
        out[bi, pos] = gs[bi, pos] + es[bi, pos] * out[bi, parent[bi, pos]]
    return out


def _like(t, ref):
    """``t`` with ``ref``'s memory layout (the registered ops' fake functions promise it)."""
    return t if t.stride() == ref.stride() else torch.empty_like(ref, dtype=t.dtype).copy_(t)


def scan_full_fwd(x, a, order, parent, depth):
    check_tree(order, parent, depth, "scan_full_fwd")
    levels = _levels(depth)
    xs, es = _to_sorted(x, order), _to_sorted(a, order)
    us = _leaf_to_root(xs, es, parent, levels)
    ys = _root_to_leaf_full(us, es, parent, levels)
    return _like(_to_vertex(ys, order), x), _like(us.transpose(1, 2), x)


def scan_full_bwd(g, a, order, parent, depth, y, u):
    """Reference 1.7: ``dx = M g`` (M is symmetric) and, for a non-root position ``i`` with parent
    ``p``, ``de_i = Ug_i (Yx_p - e_i Ux_i) + Ux_i (Yg_p - e_i Ug_i)``."""
    levels = _levels(depth)
    es = _to_sorted(a, order)
    gs = _to_sorted(g, order)
    ug = _leaf_to_root(gs, es, parent, levels)
    yg = _root_to_leaf_full(ug, es, parent, levels)
    ux = u.transpose(1, 2)
    yx = _to_sorted(y, order)
    bidx = torch.arange(order.shape[0], device=order.device)[:, None]
    yx_p, yg_p = yx[bidx, parent], yg[bidx, parent]
    ge = ug * (yx_p - es * ux) + ux * (yg_p - es * ug)
    ge[:, 0] = 0
    return _like(_to_vertex(yg, order), g), _like(_to_vertex(ge, order), a)


def scan_subtree_fwd(x, a, order, parent, depth):
    check_tree(order, parent, depth, "scan_subtree_fwd")
    levels = _levels(depth)
    us = _leaf_to_root(_to_sorted(x, order), _to_sorted(a, order), parent, levels)
    return _like(_to_vertex(us, order), x)


def scan_subtree_bwd(g, a, order, parent, depth, y):
    """Reference 1.9: ``dx_v = sum over ancestors q of v (v included) of S(q, v) g_q`` and
    ``de_i = G_{p(i)} U_i`` (U is the forward output)."""
    levels = _levels(depth)
    es = _to_sorted(a, order)
    gs = _root_to_leaf_prefix(_to_sorted(g, order), es, parent, levels)
    us = _to_sorted(y, order)
    bidx = torch.arange(order.shape[0], device=order.device)[:, None]
    ge = gs[bidx, parent] * us
    ge[:, 0] = 0
    return _like(_to_vertex(gs, order), g), _like(_to_vertex(ge, order), a)


def tree_scan_ref(x: torch.Tensor, a: torch.Tensor, tree, mode: str = "full") -> torch.Tensor:
    """Reference ``tree_scan`` with the public signature, differentiable through plain autograd.

    Same contract as :func:`grootvl_core.ops.tree_scan`; slow (a Python loop over depth levels)
    but readable. ``tree`` is a :class:`~grootvl_core.ops.TreeOrder`.
    """
    if mode not in ("full", "subtree"):
        raise ValueError(f"tree_scan_ref: mode must be 'full' or 'subtree', got {mode!r}")
    order, parent, depth = tree.order, tree.parent, tree.depth
    check_tree(order, parent, depth, "tree_scan_ref")
    dtype = x.dtype
    compute = torch.float64 if dtype == torch.float64 else torch.float32
    levels = _levels(depth)
    xs, es = _to_sorted(x.to(compute), order), _to_sorted(a.to(compute), order)
    # NOTE: the passes update clones in place; every value they read is an indexed copy, so plain
    # autograd differentiates through them.
    us = _leaf_to_root(xs, es, parent, levels)
    ys = us if mode == "subtree" else _root_to_leaf_full(us, es, parent, levels)
    return _to_vertex(ys, order).to(dtype)
