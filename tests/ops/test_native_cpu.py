"""The native CPU backend (csrc/cpu) against the pure-PyTorch reference (grootvl_core/ops/reference.py)
and the independent oracles of tests/ops/brute_force.py (reference-grootvl.md 1.3-1.9, 7).

The native functions are called directly (``grootvl_core.ops.backend.implementation("cpu")``) and
compared with the ``reference`` module: MST rows and BFS tables exactly (row order included),
scans and both gradients to rounding. The public API is exercised with ``GROOTVL_OPS=native``
(gradcheck, autograd vs ``tree_scan_ref``, errors, no hangs, no input mutation). Skipped, with the
build error as the reason, when the native CPU extension cannot be built here.
"""

from __future__ import annotations

import importlib
import math
import random

import pytest
import torch

from grootvl_core import ops
from grootvl_core.ops import reference

from . import brute_force

backend_mod = importlib.import_module("grootvl_core.ops.backend")

# Tolerances, relative to max(1, max |reference|) of the compared tensor. float32 sums thousands of
# terms in a different order than the reference (per position vs per depth level).
TOLERANCE = {
    torch.float32: 2e-5,
    torch.float64: 1e-11,
}


# ----------------------------------------------------------------------------------------------
# Builders (CPU, int64)
# ----------------------------------------------------------------------------------------------


def tree_rows(kind: str, v: int, rng: random.Random) -> list[tuple[int, int]]:
    """Rows of a spanning tree over ``v`` vertices with random labels, orientation and row order."""
    perm = list(range(v))
    rng.shuffle(perm)
    if kind == "chain":
        rows = [(perm[i], perm[i + 1]) for i in range(v - 1)]
    elif kind == "star":
        rows = [(perm[0], perm[i]) for i in range(1, v)]
    else:  # random recursive tree
        rows = [(perm[k], perm[rng.randrange(k)]) for k in range(1, v)]
    rows = [(s, t) if rng.random() < 0.5 else (t, s) for s, t in rows]
    rng.shuffle(rows)
    return rows


def grid_tree_rows(h: int, w: int, batch: int, seed: int, ties: bool = False) -> torch.Tensor:
    """(B, V-1, 2) int64 MST rows of random grid weights (reference Kruskal)."""
    g = torch.Generator().manual_seed(seed)
    n_e = ops.num_grid_edges(h, w)
    if ties:
        weights = torch.randint(0, 2, (batch, n_e), generator=g).float()
    else:
        weights = torch.rand(batch, n_e, generator=g)
    edges = ops.grid_edges(h, w).expand(batch, -1, -1).contiguous()
    tree, ok = reference.mst(edges, weights, h * w)
    assert bool(ok.all())
    return tree.long()


def tree_tables(rows: torch.Tensor, root: int = 0):
    order, parent, depth, ok = reference.bfs(rows, root)
    assert bool(ok.all())
    return order, parent, depth


def scan_inputs(batch: int, d: int, v: int, dtype, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d, v, generator=g, dtype=torch.float64)
    a = torch.rand(batch, d, v, generator=g, dtype=torch.float64) * 0.9 + 0.05  # GrootV: exp(dt*A) in (0, 1)
    gy = torch.randn(batch, d, v, generator=g, dtype=torch.float64)
    return x.to(dtype), a.to(dtype), gy.to(dtype)


def assert_close(got: torch.Tensor, want: torch.Tensor, dtype, what: str):
    assert got.dtype == dtype, f"{what}: dtype {got.dtype}, expected {dtype}"
    assert got.shape == want.shape, f"{what}: shape {tuple(got.shape)} vs {tuple(want.shape)}"
    got, want = got.double(), want.double()
    scale = want.abs().max().clamp_min(1.0) if want.numel() else 1.0
    err = (got - want).abs().max() if want.numel() else 0.0
    assert err <= TOLERANCE[dtype] * scale, f"{what}: max |native - reference| = {err:.3g} (scale {scale:.3g})"


def check_all_scans(native, order, parent, depth, d: int, dtype, seed: int):
    """Every native scan function (forward and backward, both modes) vs the reference module."""
    batch, v = order.shape
    x, a, gy = scan_inputs(batch, d, v, dtype, seed)
    want_y, want_u = reference.scan_full_fwd(x, a, order, parent, depth)
    got_y, got_u = native.scan_full_fwd(x, a, order, parent, depth)
    assert_close(got_y, want_y, dtype, "full y")
    assert_close(got_u, want_u, dtype, "full u (sorted space)")
    # backward on the same (reference) saved tensors, so each function is tested on its own
    y_c, u_c = want_y.contiguous(), want_u.contiguous()
    want = reference.scan_full_bwd(gy, a, order, parent, depth, y_c, u_c)
    got = native.scan_full_bwd(gy, a, order, parent, depth, y_c, u_c)
    assert_close(got[0], want[0], dtype, "full grad_x")
    assert_close(got[1], want[1], dtype, "full grad_a")
    assert torch.all(got[1].gather(2, order[:, None, :1].expand(batch, d, 1)) == 0), "root grad_a must be 0"

    want_s = reference.scan_subtree_fwd(x, a, order, parent, depth)
    got_s = native.scan_subtree_fwd(x, a, order, parent, depth)
    assert_close(got_s, want_s, dtype, "subtree y")
    s_c = want_s.contiguous()
    want = reference.scan_subtree_bwd(gy, a, order, parent, depth, s_c)
    got = native.scan_subtree_bwd(gy, a, order, parent, depth, s_c)
    assert_close(got[0], want[0], dtype, "subtree grad_x")
    assert_close(got[1], want[1], dtype, "subtree grad_a")


# ----------------------------------------------------------------------------------------------
# Scans vs the reference module
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 13), (13, 1), (7, 9), (16, 16)])
def test_scans_on_grid_msts(native, h, w, dtype):
    rows = grid_tree_rows(h, w, batch=2, seed=h * 31 + w)
    # D = 21: one full 64-byte channel block plus a partial one in both dtypes
    check_all_scans(native, *tree_tables(rows), d=21, dtype=dtype, seed=h + w)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["chain", "star", "random", "ties"])
def test_scans_on_adversarial_trees(native, kind, dtype):
    rng = random.Random(7)
    if kind == "ties":  # all-equal weights: the MST is decided by edge index alone
        rows = grid_tree_rows(9, 11, batch=2, seed=3, ties=True)
        order, parent, depth = tree_tables(rows)
    else:
        v = 97
        rows = torch.tensor([tree_rows(kind, v, rng), tree_rows(kind, v, rng)])
        tabs = [tree_tables(rows[b : b + 1], rng.randrange(v)) for b in range(2)]  # random roots
        order, parent, depth = (torch.cat(t) for t in zip(*tabs))
    check_all_scans(native, order, parent, depth, d=5, dtype=dtype, seed=11)


@pytest.mark.parametrize("mode", ["full", "subtree"])
@pytest.mark.parametrize("kind", ["chain", "star", "random"])
def test_scan_equals_closed_form(native, mode, kind):
    """Independent oracle: y = M x with M_ij = S(i, j) (restricted to subtrees for "subtree")."""
    rng = random.Random(5)
    v, root = 23, 4
    rows = [tree_rows(kind, v, rng) for _ in range(2)]
    order, parent, depth = tree_tables(torch.tensor(rows), root)
    x, a, _ = scan_inputs(2, 18, v, torch.float64, seed=2)
    if mode == "full":
        got = native.scan_full_fwd(x, a, order, parent, depth)[0]
    else:
        got = native.scan_subtree_fwd(x, a, order, parent, depth)
    want = brute_force.closed_form(x, a, rows, root, mode)
    assert_close(got, want, torch.float64, f"{mode} vs closed form")


def test_root_weight_is_ignored(native):
    rows = grid_tree_rows(5, 6, batch=1, seed=1)
    order, parent, depth = tree_tables(rows)
    x, a, gy = scan_inputs(1, 9, 30, torch.float64, seed=3)
    a_bad = a.clone()
    a_bad[:, :, 0] = float("nan")  # vertex 0 is the root
    y1, u1 = native.scan_full_fwd(x, a, order, parent, depth)
    y2, u2 = native.scan_full_fwd(x, a_bad, order, parent, depth)
    assert torch.equal(y1, y2) and torch.equal(u1, u2)
    s1 = native.scan_subtree_fwd(x, a_bad, order, parent, depth)
    gx, ga = native.scan_subtree_bwd(gy, a_bad, order, parent, depth, s1)
    assert torch.isfinite(gx).all() and torch.isfinite(ga).all()
    gx, ga = native.scan_full_bwd(gy, a_bad, order, parent, depth, y2, u2)
    assert torch.isfinite(gx).all() and torch.isfinite(ga).all()


@pytest.mark.parametrize("h,w,d,batch", [(56, 56, 160, 2), (7, 7, 1280, 2)])
def test_grootv_t_stage_shapes(native, h, w, d, batch):
    """GrootV-T stage 1 and stage 4 shapes (reference 1.2), float32, vs the reference module."""
    rows = grid_tree_rows(h, w, batch, seed=d)
    check_all_scans(native, *tree_tables(rows), d=d, dtype=torch.float32, seed=d)


# ----------------------------------------------------------------------------------------------
# Through the public API (GROOTVL_OPS=native)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["full", "subtree"])
def test_tree_scan_and_gradients_equal_reference_autograd(use_native, mode):
    h, w = 6, 7
    tree = ops.bfs(grid_tree_rows(h, w, batch=2, seed=9))
    for dtype in (torch.float32, torch.float64):
        x, a, gy = scan_inputs(2, 19, h * w, dtype, seed=4)
        xs = [x.clone().requires_grad_(), x.clone().requires_grad_()]
        as_ = [a.clone().requires_grad_(), a.clone().requires_grad_()]
        y_nat = ops.tree_scan(xs[0], as_[0], tree, mode=mode)
        y_ref = ops.tree_scan_ref(xs[1], as_[1], tree, mode=mode)
        assert_close(y_nat.detach(), y_ref.detach(), dtype, f"{mode} y")
        (y_nat * gy).sum().backward()
        (y_ref * gy).sum().backward()
        assert_close(xs[0].grad, xs[1].grad, dtype, f"{mode} dL/dx")
        assert_close(as_[0].grad, as_[1].grad, dtype, f"{mode} dL/da")


@pytest.mark.parametrize("mode", ["full", "subtree"])
@pytest.mark.parametrize("kind", ["grid", "random"])
def test_gradcheck_native(use_native, mode, kind):
    rng = random.Random(3)
    if kind == "grid":
        tree = ops.bfs(grid_tree_rows(3, 4, batch=2, seed=2))
        v = 12
    else:
        v = 10
        tree = ops.bfs(torch.tensor([tree_rows("random", v, rng)]), root=3)
    batch = tree.order.shape[0]
    x, a, _ = scan_inputs(batch, 3, v, torch.float64, seed=6)
    x.requires_grad_()
    a.requires_grad_()
    assert torch.autograd.gradcheck(lambda x_, a_: ops.tree_scan(x_, a_, tree, mode=mode), (x, a))


def test_inputs_are_not_mutated(native):
    rows = grid_tree_rows(8, 8, batch=2, seed=12)
    order, parent, depth = tree_tables(rows)
    x, a, gy = scan_inputs(2, 20, 64, torch.float32, seed=8)
    y, u = native.scan_full_fwd(x, a, order, parent, depth)
    s = native.scan_subtree_fwd(x, a, order, parent, depth)
    tensors = [x, a, gy, order, parent, depth, y, u, s, rows]
    before = [t.clone() for t in tensors]
    native.scan_full_fwd(x, a, order, parent, depth)
    native.scan_full_bwd(gy, a, order, parent, depth, y, u)
    native.scan_subtree_fwd(x, a, order, parent, depth)
    native.scan_subtree_bwd(gy, a, order, parent, depth, s)
    native.bfs(rows, 0)
    edges = ops.grid_edges(8, 8)[None].expand(2, -1, -1).contiguous()
    weights = torch.rand(2, edges.shape[1])
    eb, wb = edges.clone(), weights.clone()
    native.mst(edges, weights, 64)
    for t, t0 in zip(tensors + [edges, weights], before + [eb, wb]):
        assert torch.equal(t, t0)


# ----------------------------------------------------------------------------------------------
# MST and BFS
# ----------------------------------------------------------------------------------------------


def _special_weights(batch: int, n_e: int, g: torch.Generator) -> torch.Tensor:
    """NaN (last), +-0 (equal), +-inf, negatives, exact ties."""
    choices = torch.tensor([float("nan"), 0.0, -0.0, float("inf"), float("-inf"), -1.5, 1.0, 1.0, 2.5])
    return choices[torch.randint(0, len(choices), (batch, n_e), generator=g)]


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 1), (2, 2), (7, 9), (16, 16), (56, 56)])
@pytest.mark.parametrize("weights_kind", ["uniform", "ties", "special"])
def test_mst_equals_reference_and_kruskal(native, h, w, weights_kind):
    batch = 3
    g = torch.Generator().manual_seed(h * 1000 + w)
    edges = ops.grid_edges(h, w).expand(batch, -1, -1).contiguous()
    n_e = edges.shape[1]
    if weights_kind == "uniform":
        weights = torch.rand(batch, n_e, generator=g)
    elif weights_kind == "ties":
        weights = torch.randint(0, 3, (batch, n_e), generator=g).float()
    else:
        weights = _special_weights(batch, n_e, g)
    want_tree, want_ok = reference.mst(edges, weights, h * w)
    got_tree, got_ok = native.mst(edges, weights, h * w)
    assert got_tree.dtype == torch.int32 and got_tree.shape == (batch, h * w - 1, 2)
    assert bool(got_ok.all()) and bool(want_ok.all())
    assert torch.equal(got_tree, want_tree)  # same rows in the same (Kruskal) order
    for b in range(batch):
        want_set = brute_force.kruskal(edges[b].tolist(), weights[b].tolist(), h * w)
        assert {tuple(r) for r in got_tree[b].tolist()} == want_set


def test_mst_on_general_batched_graphs(native):
    """Different random connected multigraphs per batch element (with self-loops, duplicates)."""
    rng = random.Random(1)
    v, batch, n_e = 40, 4, 150
    all_edges = []
    for _ in range(batch):
        rows = tree_rows("random", v, rng)
        rows += [(rng.randrange(v), rng.randrange(v)) for _ in range(n_e - len(rows))]
        rng.shuffle(rows)
        all_edges.append(rows)
    edges = torch.tensor(all_edges)
    weights = torch.randint(0, 4, (batch, n_e)).float()
    weights[weights == 3] = float("nan")
    want_tree, _ = reference.mst(edges, weights, v)
    got_tree, got_ok = native.mst(edges, weights, v)
    assert bool(got_ok.all())
    assert torch.equal(got_tree, want_tree)
    for b in range(batch):
        assert {tuple(r) for r in got_tree[b].tolist()} == brute_force.kruskal(all_edges[b], weights[b].tolist(), v)


def test_mst_weights_compared_as_float32(use_native):
    """Weights that differ only beyond float32 precision tie, and the lower edge index wins."""
    edges = torch.tensor([[0, 1], [1, 2], [0, 2]])
    w64 = torch.tensor([[1.0 + 1e-12, 5.0, 1.0]], dtype=torch.float64)
    got, ok = use_native.mst(edges[None].contiguous(), w64.float(), 3)
    assert bool(ok.all())
    assert got[0].tolist() == [[0, 1], [0, 2]]
    assert torch.equal(ops.minimum_spanning_tree(edges, w64, 3), got)


@pytest.mark.timeout(60)
def test_disconnected_graph_raises_not_hangs(use_native):
    edges = torch.tensor([[0, 1], [2, 3], [1, 0]])  # {0,1} and {2,3}
    weights = torch.rand(2, 3)
    tree, ok = use_native.mst(edges[None].expand(2, -1, -1).contiguous(), weights, 4)
    assert not bool(ok.any())
    assert tree.shape == (2, 3, 2) and (tree[:, 2:] == -1).all()  # two edges found, the rest padded
    assert {tuple(sorted(r)) for r in tree[0, :2].tolist()} == {(0, 1), (2, 3)}
    with pytest.raises(ValueError, match="not connected"):
        ops.minimum_spanning_tree(edges, weights, 4)
    # a large disconnected grid (one vertex cut off) returns promptly too
    grid = ops.grid_edges(56, 56)
    keep = ~((grid == 0).any(dim=1))
    with pytest.raises(ValueError, match="not connected"):
        ops.minimum_spanning_tree(grid[keep], torch.rand(2, int(keep.sum())), 56 * 56)


def test_mst_out_of_range_ids_are_rejected_without_crash(use_native):
    edges = torch.tensor([[[0, 1], [1, 7]], [[0, 1], [-3, 2]]])
    tree, ok = use_native.mst(edges, torch.rand(2, 2), 3)
    assert not bool(ok.any())
    with pytest.raises(ValueError, match="edge endpoints"):
        ops.minimum_spanning_tree(edges, torch.rand(2, 2), 3)
    # validate=False skips the Python checks: the native code must still not crash
    tree = ops.minimum_spanning_tree(edges, torch.rand(2, 2), 3, validate=False)
    assert tree.shape == (2, 2, 2) and (tree == -1).all()


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 1), (7, 9), (16, 16), (56, 56)])
def test_bfs_equals_reference_on_grid_msts(native, h, w):
    rows = grid_tree_rows(h, w, batch=2, seed=h + 7 * w)
    for root in (0, (h * w) // 2, h * w - 1):
        want = reference.bfs(rows, root)
        got = native.bfs(rows, root)
        for name, gt, wt in zip(("order", "parent", "depth", "ok"), got, want):
            assert gt.dtype == wt.dtype, name
            assert torch.equal(gt, wt), f"{name} differs at root {root}"


@pytest.mark.parametrize("kind", ["chain", "star", "random"])
def test_bfs_equals_reference_on_random_trees(native, kind):
    rng = random.Random(2)
    v = 200
    rows = torch.tensor([tree_rows(kind, v, rng) for _ in range(3)])
    for root in (0, rng.randrange(v)):
        want = reference.bfs(rows, root)
        got = native.bfs(rows, root)
        for name, gt, wt in zip(("order", "parent", "depth", "ok"), got, want):
            assert torch.equal(gt, wt), f"{kind}: {name} differs at root {root}"
        order, parent, depth, _ = got
        assert (parent[:, 1:] < torch.arange(1, v)).all()  # parents come first
        assert torch.equal(depth.gather(1, parent)[:, 1:] + 1, depth[:, 1:])


@pytest.mark.timeout(60)
def test_bfs_rejects_non_trees_without_hanging(use_native):
    # a triangle plus an isolated vertex: 3 rows for 4 vertices, but 3 is unreachable
    cyc = torch.tensor([[[0, 1], [1, 2], [2, 0]]])
    _, _, _, ok = use_native.bfs(cyc, 0)
    assert not bool(ok.any())
    with pytest.raises(ValueError, match="spanning tree"):
        ops.bfs(cyc, 0)
    # out-of-range ids with validation off: no crash, ok = False
    bad = torch.tensor([[[0, 1], [1, 9]]])
    _, _, _, ok = use_native.bfs(bad, 0)
    assert not bool(ok.any())
    with pytest.raises(ValueError, match="vertex ids"):
        ops.bfs(bad, 0)
    order = ops.bfs(bad, 0, validate=False).order  # no checks above the native code: no crash
    assert order.shape == (1, 3)


def test_scans_reject_trees_that_would_read_out_of_bounds(native):
    x, a, _ = scan_inputs(1, 4, 5, torch.float32, seed=0)
    good = tree_tables(torch.tensor([[[0, 1], [1, 2], [2, 3], [3, 4]]]))
    order, parent, depth = (t.clone() for t in good)
    order[0, 2] = 99
    with pytest.raises(RuntimeError, match="permutation"):
        native.scan_full_fwd(x, a, order, parent, depth)
    order, parent, depth = (t.clone() for t in good)
    parent[0, 3] = 3  # a parent must come before its child
    with pytest.raises(RuntimeError, match="parent"):
        native.scan_subtree_fwd(x, a, order, parent, depth)


def test_end_to_end_pipeline_matches_reference(use_native):
    """cosine weights -> MST -> BFS -> scan, native vs *_ref twins, on a 12x10 feature map."""
    feat = torch.randn(2, 8, 12, 10)
    weights = ops.cosine_edge_weights(feat)
    edges = ops.grid_edges(12, 10)
    tree_n = ops.minimum_spanning_tree(edges, weights, 120)
    tree_r = ops.minimum_spanning_tree_ref(edges, weights, 120)
    assert torch.equal(tree_n, tree_r)
    order_n, order_r = ops.bfs(tree_n), ops.bfs_ref(tree_r)
    for gt, wt in zip(order_n, order_r):
        assert torch.equal(gt, wt)
    x, a, _ = scan_inputs(2, 6, 120, torch.float32, seed=1)
    assert_close(ops.tree_scan(x, a, order_n), ops.tree_scan_ref(x, a, order_r), torch.float32, "pipeline y")
    assert not math.isnan(float(ops.tree_scan(x, a, order_n, mode="subtree").sum()))


# ----------------------------------------------------------------------------------------------
# Channels-last memory: (B, D, V) views of contiguous (B, V, D) tensors, read and written in place
# ----------------------------------------------------------------------------------------------


def _channels_last(t: torch.Tensor) -> torch.Tensor:
    """The same values as ``t`` (B, D, V), held in (B, V, D) memory."""
    out = t.transpose(1, 2).contiguous().transpose(1, 2)
    assert out.stride(1) == 1 or t.shape[1] == 1
    return out


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(
    "kind, v, d, batch",
    [
        ("grid", 1, 7, 2),
        ("chain", 13, 1, 2),
        ("star", 40, 17, 3),
        ("random", 64, 33, 2),
        ("grid", 16 * 16, 160, 1),
        ("random", 300, 5, 1),
        ("chain", 2, 64, 4),
    ],
)
@pytest.mark.parametrize("which", ["all", "x_only", "a_only"])
def test_channels_last_inputs_equal_contiguous(native, dtype, kind, v, d, batch, which):
    """Every native scan on channels-last tensors (all of them, or mixed with contiguous ones)
    equals the contiguous call, forward and backward; outputs keep x's (or grad's) layout."""
    if kind == "grid":
        side = int(round(v**0.5))
        rows = grid_tree_rows(side, v // side, batch, seed=v)
    else:
        rng = random.Random(v * 31 + d)
        rows = torch.stack(
            [torch.tensor(tree_rows(kind, v, rng), dtype=torch.int64).reshape(-1, 2) for _ in range(batch)]
        )
    order, parent, depth = tree_tables(rows)
    x, a, gy = scan_inputs(batch, d, v, dtype, seed=d + v)
    cl_x = _channels_last(x) if which in ("all", "x_only") else x
    cl_a = _channels_last(a) if which in ("all", "a_only") else a
    cl_g = _channels_last(gy) if which == "all" else gy

    want_y, want_u = native.scan_full_fwd(x, a, order, parent, depth)
    got_y, got_u = native.scan_full_fwd(cl_x, cl_a, order, parent, depth)
    assert_close(got_y, want_y, dtype, "full y")
    assert_close(got_u, want_u, dtype, "full u")
    assert got_y.stride() == cl_x.stride() or d == 1 or v == 1, "y takes x's layout"
    want = native.scan_full_bwd(gy, a, order, parent, depth, want_y, want_u)
    got = native.scan_full_bwd(cl_g, cl_a, order, parent, depth, _channels_last(want_y), want_u)
    assert_close(got[0], want[0], dtype, "full grad_x")
    assert_close(got[1], want[1], dtype, "full grad_a")

    want_s = native.scan_subtree_fwd(x, a, order, parent, depth)
    got_s = native.scan_subtree_fwd(cl_x, cl_a, order, parent, depth)
    assert_close(got_s, want_s, dtype, "subtree y")
    want = native.scan_subtree_bwd(gy, a, order, parent, depth, want_s)
    got = native.scan_subtree_bwd(cl_g, cl_a, order, parent, depth, _channels_last(want_s))
    assert_close(got[0], want[0], dtype, "subtree grad_x")
    assert_close(got[1], want[1], dtype, "subtree grad_a")
    # and against the reference, to be sure both layouts are right (not equally wrong)
    ref_y, _ = reference.scan_full_fwd(x, a, order, parent, depth)
    assert_close(got_y, ref_y, dtype, "full y vs reference")


def test_other_strides_are_rejected_with_a_clear_error(native):
    rows = grid_tree_rows(4, 4, 1, seed=0)
    order, parent, depth = tree_tables(rows)
    x, a, _ = scan_inputs(1, 8, 16, torch.float32, seed=0)
    every_other = torch.randn(1, 16, 16)[:, ::2]  # (1, 8, 16), not dense
    with pytest.raises(RuntimeError, match="contiguous"):
        native.scan_full_fwd(every_other, a, order, parent, depth)


def test_tree_scan_keeps_channels_last_through_autograd(use_native):
    """tree_scan on channels-last views: same values and gradients as on contiguous tensors, and
    a channels-last output (what TreeSSM relies on to skip the transposes)."""
    rows = grid_tree_rows(9, 7, 2, seed=3)
    tree = ops.TreeOrder(*tree_tables(rows))
    x, a, gy = scan_inputs(2, 24, 63, torch.float32, seed=5)
    for mode in ("full", "subtree"):
        xs = [x.clone().requires_grad_(), _channels_last(x).requires_grad_()]
        as_ = [a.clone().requires_grad_(), _channels_last(a).requires_grad_()]
        ys = [ops.tree_scan(xi, ai, tree, mode) for xi, ai in zip(xs, as_)]
        assert ys[1].transpose(1, 2).is_contiguous()
        for yi in ys:
            (yi * gy).sum().backward()
        assert_close(ys[1].detach(), ys[0].detach(), torch.float32, f"{mode} y")
        assert_close(xs[1].grad, xs[0].grad, torch.float32, f"{mode} grad x")
        assert_close(as_[1].grad, as_[0].grad, torch.float32, f"{mode} grad a")


# ----------------------------------------------------------------------------------------------
# Grid edge weights
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shape", [(1, 160, 56, 56), (2, 17, 7, 9), (3, 5, 1, 7), (2, 1, 9, 1), (1, 4, 1, 1), (2, 640, 14, 14)]
)
@pytest.mark.parametrize("channels_last", [True, False])
def test_grid_cosine_weights_equal_reference(native, shape, channels_last):
    g = torch.Generator().manual_seed(sum(shape))
    f = torch.randn(*shape, generator=g) * 3
    if shape[1] > 1 and shape[2] > 1:
        f[0, :, 0, 0] = 0  # a zero vector: its norm is clamped to eps, cos = 0
        f[-1, :, -1, -1] = 1e-20  # tiny but nonzero
    if channels_last:
        f = f.contiguous(memory_format=torch.channels_last)
    got = native.grid_cosine_weights(f)
    want = reference.grid_cosine_weights(f)
    assert got.shape == want.shape == (shape[0], ops.num_grid_edges(*shape[2:]))
    assert got.dtype == torch.float32 and got.is_contiguous()
    assert torch.allclose(got, want, rtol=0, atol=2e-6), (got - want).abs().max()


def test_grid_cosine_weights_rejects_bad_input(native):
    with pytest.raises(RuntimeError, match="float32"):
        native.grid_cosine_weights(torch.randn(1, 3, 4, 4, dtype=torch.float64))
    with pytest.raises(RuntimeError, match=r"\(B, D, H, W\)"):
        native.grid_cosine_weights(torch.randn(3, 4, 4))


def test_cosine_edge_weights_uses_the_native_kernel_on_cpu(use_native, monkeypatch):
    calls = []
    real = use_native.grid_cosine_weights
    monkeypatch.setattr(use_native, "grid_cosine_weights", lambda f: calls.append(f.shape) or real(f))
    w = ops.cosine_edge_weights(torch.randn(2, 8, 5, 6, dtype=torch.float64))  # computed in float32
    assert calls == [(2, 8, 5, 6)] and w.dtype == torch.float32 and w.shape == (2, ops.num_grid_edges(5, 6))


# ----------------------------------------------------------------------------------------------
# TreeSSM output (inference kernel)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("b, n, d", [(1, 3136, 160), (2, 49, 1280), (3, 5, 7), (1, 1, 1), (2, 0, 4)])
@pytest.mark.parametrize("with_h_norm", [True, False])
@pytest.mark.parametrize("silu_gate", [True, False])
def test_ssm_output_equals_reference(native, b, n, d, with_h_norm, silu_gate):
    g = torch.Generator().manual_seed(b * 1000 + n + d)
    h, u = (torch.randn(b, n, d, generator=g) * 3 for _ in range(2))
    # z as TreeSSM passes it: the second half of in_proj's (B, L, 2D) output (strided rows)
    z = (torch.randn(b, n, 2 * d, generator=g) * 3)[:, :, d:]
    z[..., :1] = 95.0  # exp(-z) underflows and ...
    z[..., -1:] = -95.0  # ... overflows in the silu gate
    c_full = torch.randn(b, n, 4, generator=g)
    c = c_full[:, :, 2:3]  # a strided (B, L, 1) view, as TreeSSM passes it
    ds, ow, ob, hw, hb = (torch.randn(d, generator=g) for _ in range(5))
    args = (hw, hb, 1e-5) if with_h_norm else (None, None, 0.0)
    got = native.ssm_output(h, u, c, ds, *args, ow, ob, 1e-5, z, silu_gate)
    want = reference.ssm_output(h, u, c, ds, *args, ow, ob, 1e-5, z, silu_gate)
    assert got.shape == want.shape
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-4), (got - want).abs().max()


def test_ssm_output_checks_its_arguments(native):
    h = torch.randn(1, 4, 8)
    vec = torch.randn(8)
    with pytest.raises(RuntimeError, match="u must be"):
        native.ssm_output(h, torch.randn(1, 4, 7), h[..., :1], vec, None, None, 0.0, vec, vec, 1e-5, h)
    with pytest.raises(RuntimeError, match="float32"):
        native.ssm_output(h.double(), h.double(), h[..., :1].double(), vec, None, None, 0.0, vec, vec, 1e-5, h.double())
    with pytest.raises(RuntimeError, match="both"):
        native.ssm_output(h, h, h[..., :1], vec, vec, None, 1e-5, vec, vec, 1e-5, h)
    with pytest.raises(RuntimeError, match="z's rows must be contiguous"):
        native.ssm_output(h, h, h[..., :1], vec, None, None, 0.0, vec, vec, 1e-5, torch.randn(1, 4, 16)[..., ::2])
    with pytest.raises(RuntimeError, match="h and u must be contiguous"):
        native.ssm_output(torch.randn(1, 4, 16)[..., ::2], h, h[..., :1], vec, None, None, 0.0, vec, vec, 1e-5, h)


@pytest.mark.parametrize("b, n, d", [(1, 3136, 160), (2, 49, 1280), (3, 5, 7), (1, 1, 1), (2, 0, 4), (1, 3, 33)])
def test_ssm_discretize_equals_reference(native, b, n, d):
    g = torch.Generator().manual_seed(b * 1000 + n + d)
    dt, u = torch.randn(b, n, d, generator=g) * 4, torch.randn(b, n, d, generator=g)
    bias = torch.randn(d, generator=g)
    a = -torch.exp(torch.randn(d, generator=g) * 2)  # -exp(A_logs): 0.02 .. 50 in magnitude
    b_full = torch.randn(b, n, 3, generator=g)
    bs = b_full[:, :, 1:2]  # a strided (B, L, 1) view, as TreeSSM passes it
    got = native.ssm_discretize(dt, bias, a, bs, u)
    want = reference.ssm_discretize(dt, bias, a, bs, u)
    for x, y in zip(got, want):
        assert x.shape == y.shape and x.dtype == torch.float32
        torch.testing.assert_close(x, y, rtol=2e-5, atol=1e-7)


def test_ssm_discretize_softplus_and_exp_over_their_range(native):
    """The kernel's own exp / softplus (csrc/cpu/vec_math.h) against PyTorch's over [-120, 120]
    and the special values: with a = -1, b = u = 1 the outputs are exp(-softplus(x)) and softplus(x)."""
    x = torch.cat(
        [
            torch.linspace(-120, 120, 240_001),
            torch.tensor([0.0, -0.0, 20.0, 19.9999, 20.0001, 1e-30, -1e-30, 88.0, -87.0]),
        ]
    )
    x = torch.cat([x, torch.tensor([float("inf"), -float("inf"), float("nan")])])
    n = x.numel()
    ones = torch.ones(1, n, 1)
    abar, sp = native.ssm_discretize(x.view(1, n, 1), torch.zeros(1), -torch.ones(1), ones, ones)
    sp, abar = sp.flatten(), abar.flatten()
    want_sp = torch.nn.functional.softplus(x)
    assert sp[-3] == math.inf and sp[-2] == 0.0 and math.isnan(sp[-1]) and math.isnan(abar[-1])
    finite = torch.isfinite(x)
    # float32 turns denormal below ~1.2e-38: there the kernel's exp flushes to 0 (absolute error
    # below 1.2e-38); everywhere else it is within a few ulp
    torch.testing.assert_close(sp[finite], want_sp[finite], rtol=5e-7, atol=1.2e-38)
    want_abar = torch.exp(-want_sp)
    # exp(-s) amplifies s's rounding by |s| (up to 120 here): relative 120 * 6e-8
    torch.testing.assert_close(abar[finite], want_abar[finite], rtol=1e-5, atol=1.2e-38)


def test_ssm_discretize_checks_its_arguments(native):
    dt = torch.randn(1, 4, 8)
    vec = torch.randn(8)
    with pytest.raises(RuntimeError, match="u must be"):
        native.ssm_discretize(dt, vec, vec, dt[..., :1], torch.randn(1, 4, 7))
    with pytest.raises(RuntimeError, match="b must be"):
        native.ssm_discretize(dt, vec, vec, dt[..., :2], dt)
    with pytest.raises(RuntimeError, match="bias must be"):
        native.ssm_discretize(dt, torch.randn(7), vec, dt[..., :1], dt)
    with pytest.raises(RuntimeError, match="float32"):
        native.ssm_discretize(dt.double(), vec.double(), vec.double(), dt[..., :1].double(), dt.double())
    with pytest.raises(RuntimeError, match="contiguous"):
        native.ssm_discretize(torch.randn(1, 4, 16)[..., ::2], vec, vec, dt[..., :1], dt)


# ----------------------------------------------------------------------------------------------
# The fused grid tree (weights + MST + BFS in one native call)
# ----------------------------------------------------------------------------------------------


def _grid_feature(kind: str, batch: int, d: int, h: int, w: int, g: torch.Generator) -> torch.Tensor:
    if kind == "random":
        return torch.randn(batch, d, h, w, generator=g)
    if kind == "ties":  # few distinct pixel vectors: many exactly equal weights (ties by edge index)
        palette = torch.randn(3, d, generator=g)
        return palette[torch.randint(0, 3, (batch, h, w), generator=g)].permute(0, 3, 1, 2)
    if kind == "constant":  # every weight equal
        return torch.ones(batch, d, h, w)
    if kind == "zeros_and_nan":  # zero vectors (eps-clamped norms) and NaN pixels (NaN weights sort last)
        f = torch.randn(batch, d, h, w, generator=g)
        f[:, :, ::3] = 0.0
        f[:, :, 1::4, ::2] = float("nan")
        return f
    raise ValueError(kind)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 1), (2, 2), (7, 9), (16, 16), (56, 56)])
@pytest.mark.parametrize("kind", ["random", "ties", "constant", "zeros_and_nan"])
def test_grid_spanning_tree_equals_reference_and_single_ops(use_native, h, w, kind):
    g = torch.Generator().manual_seed(h * 100 + w)
    feature = _grid_feature(kind, 3, 5, h, w, g)
    # the reference MST and BFS on the native kernel's weights (equal vectors give weights that
    # differ from the PyTorch formula's in the last bit, which reorders exact ties)
    weights = ops.cosine_edge_weights(feature)
    torch.testing.assert_close(weights, reference.grid_cosine_weights(feature), rtol=1e-5, atol=1e-6, equal_nan=True)
    want_edges = ops.minimum_spanning_tree_ref(ops.grid_edges(h, w), weights, h * w)
    want = ops.bfs_ref(want_edges, 0)
    for f in (feature, feature.contiguous(memory_format=torch.channels_last), feature.double()):
        got_edges, got = ops.grid_spanning_tree(f)
        assert got_edges.dtype == torch.int32 and got_edges.shape == (3, h * w - 1, 2)
        assert torch.equal(got_edges, want_edges)
        for name in ("order", "parent", "depth"):
            assert getattr(got, name).dtype == torch.int64
            assert torch.equal(getattr(got, name), getattr(want, name)), name
    # the single native ops give the same tree
    rows = ops.minimum_spanning_tree(ops.grid_edges(h, w), ops.cosine_edge_weights(feature), h * w)
    assert torch.equal(rows, want_edges)
    assert all(torch.equal(a, b) for a, b in zip(ops.bfs(rows), want))


def test_grid_spanning_tree_batch_elements_are_independent(use_native):
    g = torch.Generator().manual_seed(5)
    feature = torch.randn(4, 8, 12, 10, generator=g)
    edges, order = ops.grid_spanning_tree(feature)
    for b in range(4):
        e1, o1 = ops.grid_spanning_tree(feature[b : b + 1])
        assert torch.equal(e1[0], edges[b]) and torch.equal(o1.order[0], order.order[b])


def test_grid_spanning_tree_reference_mode_and_errors(monkeypatch):
    g = torch.Generator().manual_seed(6)
    feature = torch.randn(2, 4, 6, 7, generator=g)
    monkeypatch.setenv("GROOTVL_OPS", "reference")
    got_edges, got = ops.grid_spanning_tree(feature)
    want_edges, want = ops.grid_spanning_tree_ref(feature)
    assert torch.equal(got_edges, want_edges) and all(torch.equal(a, b) for a, b in zip(got, want))
    with pytest.raises(ValueError, match=r"must be \(B, D, H, W\)"):
        ops.grid_spanning_tree(torch.randn(4, 6, 7))
    with pytest.raises(TypeError, match="floating point"):
        ops.grid_spanning_tree(torch.ones(1, 2, 3, 3, dtype=torch.int64))
    with pytest.raises(ValueError, match="H, W >= 1"):
        ops.grid_spanning_tree(torch.ones(1, 2, 0, 3))


def test_grid_spanning_tree_under_torch_compile(use_native):
    feature = torch.randn(2, 4, 5, 6)

    def f(u):
        edges, order = ops.grid_spanning_tree(u)
        return edges.sum() + order.order.sum() + order.depth.sum()

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    assert torch.equal(compiled(feature), f(feature))


# ----------------------------------------------------------------------------------------------
# Eager inference calls the kernels directly (no custom-op dispatch) only when nothing can tell
# ----------------------------------------------------------------------------------------------


def test_eager_native_only_where_the_custom_op_is_not_needed(use_native, monkeypatch):
    from torch.utils._python_dispatch import TorchDispatchMode

    x = torch.randn(2, 3, 4)
    assert backend_mod.eager_native(x) is use_native
    with torch.no_grad():
        assert backend_mod.eager_native(x.requires_grad_()) is use_native
    assert backend_mod.eager_native(x) is None  # autograd needs the op's backward
    x = x.detach()
    assert backend_mod.eager_native(torch.nn.Parameter(x)) is None  # a subclass
    assert backend_mod.eager_native(x, torch.zeros(2, 3, 4, device="meta")) is None
    with torch.profiler.profile():
        assert backend_mod.eager_native(x) is None  # profiles keep the op names

    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with Spy():
        assert backend_mod.eager_native(x) is None
    monkeypatch.setenv("GROOTVL_OPS", "reference")
    assert backend_mod.eager_native(x) is None


@pytest.mark.parametrize("mode", ["full", "subtree"])
def test_eager_inference_equals_the_custom_op(use_native, mode):
    """The direct call and the custom op give identical results (and the op shows in profiles)."""
    g = torch.Generator().manual_seed(3)
    feature = torch.randn(2, 6, 9, 7, generator=g)
    x = torch.randn(2, 63, 6, generator=g).transpose(1, 2)  # channels-last view, as TreeSSM gives
    a = torch.rand(2, 63, 6, generator=g).transpose(1, 2)
    with torch.no_grad():
        edges, tree = ops.grid_spanning_tree(feature)
        y = ops.tree_scan(x, a, tree, mode)
        with torch.profiler.profile() as prof:
            edges_op, tree_op = ops.grid_spanning_tree(feature)
            y_op = ops.tree_scan(x, a, tree_op, mode)
    names = {e.name for e in prof.events()}
    assert "grootvl::grid_spanning_tree" in names and f"grootvl::tree_scan_{mode}" in names
    assert torch.equal(edges, edges_op) and all(torch.equal(p, q) for p, q in zip(tree, tree_op))
    assert torch.equal(y, y_op) and y.stride() == y_op.stride()


@pytest.mark.parametrize("layout", ["contiguous", "channels_last"])
@pytest.mark.parametrize("h,w,d,batch", [(1, 1, 5, 1), (1, 9, 17, 2), (9, 1, 16, 1), (7, 9, 33, 3), (14, 14, 640, 1)])
def test_scan_full_infer_equals_forward(native, layout, h, w, d, batch):
    """The inference forward (y only) equals scan_full_fwd's y bit for bit, on tiles and on rows."""
    g = torch.Generator().manual_seed(h * w + d)
    v = h * w
    _, tree = ops.grid_spanning_tree(torch.randn(batch, 3, h, w, generator=g))
    x, a = torch.randn(batch, v, d, generator=g), torch.rand(batch, v, d, generator=g)
    x, a = (
        (x.transpose(1, 2), a.transpose(1, 2))
        if layout == "channels_last"
        else (x.transpose(1, 2).contiguous(), a.transpose(1, 2).contiguous())
    )
    y_fwd, _ = native.scan_full_fwd(x, a, *tree)
    y = native.scan_full_infer(x, a, *tree)
    assert torch.equal(y, y_fwd) and y.stride() == y_fwd.stride()
    torch.testing.assert_close(
        y.double(), reference.scan_full_fwd(x.double(), a.double(), *tree)[0], rtol=1e-5, atol=1e-5
    )


# ----------------------------------------------------------------------------------------------
# Depthwise conv + SiLU (TreeSSM step 4)
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "b,h,w,c,k",
    [
        (1, 1, 1, 1, 3),
        (2, 1, 9, 5, 3),
        (1, 9, 1, 16, 3),
        (2, 7, 9, 33, 3),
        (1, 14, 14, 640, 3),
        (1, 6, 5, 7, 1),
        (2, 6, 5, 7, 5),
        (1, 3, 3, 4, 7),
    ],
)
@pytest.mark.parametrize("with_bias", [True, False])
def test_depthwise_conv_silu_equals_reference(use_native, b, h, w, c, k, with_bias):
    g = torch.Generator().manual_seed(b * 1000 + h * 100 + w * 10 + c + k)
    x = torch.randn(b, h, w, c, generator=g)
    weight = torch.randn(c, 1, k, k, generator=g)
    bias = torch.randn(c, generator=g) if with_bias else None
    want = reference.depthwise_conv_silu(x, weight, bias)
    got = use_native.depthwise_conv_silu(x, weight, bias)
    assert got.shape == (b, h, w, c) and got.is_contiguous()
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    with torch.no_grad():  # the op: native here; the same through a strided input
        torch.testing.assert_close(
            ops.depthwise_conv_silu(x.transpose(1, 2).contiguous().transpose(1, 2), weight, bias),
            want,
            rtol=1e-5,
            atol=1e-5,
        )


def test_depthwise_conv_silu_special_values_and_errors(use_native):
    x = torch.tensor([0.0, 100.0, -100.0, 1e30, -1e30, float("inf"), float("-inf"), float("nan")]).view(1, 1, 1, 8)
    weight = torch.ones(8, 1, 3, 3)
    got = use_native.depthwise_conv_silu(x, weight, None)
    want = torch.nn.functional.silu(x)
    torch.testing.assert_close(got, want, equal_nan=True)
    with pytest.raises(ValueError, match="odd k"):
        ops.depthwise_conv_silu(x, torch.ones(8, 1, 2, 2), None)
    with pytest.raises(RuntimeError, match="contiguous"):
        use_native.depthwise_conv_silu(x.transpose(2, 3), weight, None)


def test_every_fused_cpu_caller_steps_aside_when_something_observes_the_call(use_native, monkeypatch):
    """One rule (ops.backend.fused_cpu_eligible) for every fused CPU kernel: under a dispatch
    mode, the profiler, torch.compile tracing or with gradients, no caller calls the kernel."""
    from torch.utils._python_dispatch import TorchDispatchMode

    calls: list[str] = []

    class Recorder:
        def __init__(self, mod):
            self._mod = mod

        def __getattr__(self, name):
            calls.append(name)
            return getattr(self._mod, name)

    real = backend_mod.fused_cpu
    monkeypatch.setattr(backend_mod, "fused_cpu", lambda *t: None if real(*t) is None else Recorder(real(*t)))
    g = torch.Generator().manual_seed(0)
    x, w, bias = torch.randn(1, 5, 6, 4, generator=g), torch.randn(4, 1, 3, 3, generator=g), torch.randn(4)
    dt, u = torch.randn(1, 30, 4, generator=g), torch.randn(1, 30, 4, generator=g)
    b, a = torch.randn(1, 30, 1, generator=g), -torch.rand(4, generator=g)
    h, z, c = torch.randn(1, 30, 4, generator=g), torch.randn(1, 30, 4, generator=g), torch.randn(1, 30, 1)
    norm = torch.nn.LayerNorm(4)

    def run_all():
        ops.depthwise_conv_silu(x, w, bias)
        ops.ssm_discretize(dt, bias, a, b, u)
        ops.ssm_output(h, u, c, torch.ones(4), None, norm, z)
        ops.grid_spanning_tree(torch.randn(1, 4, 5, 6, generator=g))

    class Spy(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    with torch.no_grad():
        run_all()
        assert set(calls) == {"depthwise_conv_silu", "ssm_discretize", "ssm_output", "grid_tree"}
        for observer in (Spy, torch.profiler.profile):
            calls.clear()
            with observer():
                run_all()  # (the grid tree's custom op still runs its kernel inside the op, unseen here)
            assert calls == [], observer
        assert backend_mod.fused_cpu_eligible(x, torch.nn.Parameter(w)) is not None
        assert backend_mod.fused_cpu_eligible(x.double()) is None
    w.requires_grad_()
    assert backend_mod.fused_cpu_eligible(x, w) is None  # autograd needs PyTorch's graph
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    with torch.no_grad():
        assert backend_mod.fused_cpu_eligible(x) is None
