"""The GPU backends (the compiled CUDA op, csrc/cuda; the Triton kernels, ops/triton_backend.py)
against the pure-PyTorch reference (grootvl_core/ops/reference.py).

Each test runs once per GPU backend. ``cuda`` needs a GPU; on a GPU a failed build FAILS these
tests (it does not fall back to the reference silently). ``triton`` runs on the GPU when there is
one, else on CPU tensors in Triton's interpreter (tests/conftest.py sets ``TRITON_INTERPRET=1``
on machines without a GPU): that is how CI executes every Triton kernel. Sizes shrink under the
interpreter, which runs a kernel's loop in Python.

The backend functions are called directly and compared with the reference run on CPU copies: MST
rows and BFS tables exactly (row order included), scans and their gradients to rounding. The
public API is checked on the device for errors, gradcheck, half inputs and mutation.
"""

from __future__ import annotations

import importlib
import random
from types import SimpleNamespace

import pytest
import torch

from grootvl_core import ops
from grootvl_core.ops import reference

backend_mod = importlib.import_module("grootvl_core.ops.backend")

GPU = torch.cuda.is_available()
INTERPRETED = not GPU  # the Triton backend runs in the interpreter, on CPU tensors
DEV = "cuda" if GPU else "cpu"

BACKENDS = [
    pytest.param("cuda", id="cuda", marks=[pytest.mark.cuda, pytest.mark.skipif(not GPU, reason="needs a CUDA GPU")]),
    pytest.param(
        "triton",
        id="triton",
        marks=pytest.mark.skipif(
            not GPU and not backend_mod.triton_interpreted(), reason="no GPU and TRITON_INTERPRET unset"
        ),
    ),
]


@pytest.fixture(scope="module", params=BACKENDS)
def gpu(request):
    """``.name``, ``.mod`` (the backend module, not self-checked: these tests are the full check)."""
    mod, why = backend_mod.load_gpu_backend(request.param, torch.device(DEV))
    if mod is None:
        pytest.fail(f"the {request.param} backend cannot run on {DEV}: {why}")
    return SimpleNamespace(name=request.param, mod=mod)


@pytest.fixture
def forced(gpu, monkeypatch):
    """The public API forced onto ``gpu``'s backend."""
    monkeypatch.setenv("GROOTVL_OPS", gpu.name)
    return gpu


def small(full, interpreted):
    """``full`` sizes on a GPU, ``interpreted`` ones under the Triton interpreter."""
    return interpreted if INTERPRETED else full


# ----------------------------------------------------------------------------------------------
# Tree builders (CPU, int64)
# ----------------------------------------------------------------------------------------------


def tree_rows(kind: str, v: int, rng: random.Random) -> list[tuple[int, int]]:
    """Rows of a spanning tree over ``v`` vertices; each row's orientation is random."""
    perm = list(range(v))
    rng.shuffle(perm)
    if kind == "chain":
        rows = [(perm[i], perm[i + 1]) for i in range(v - 1)]
    elif kind == "star":
        rows = [(perm[0], perm[i]) for i in range(1, v)]
    elif kind == "caterpillar":  # a spine with many leaves: wide levels, repeated parents
        spine = perm[: max(1, v // 4)]
        rows = [(spine[i], spine[i + 1]) for i in range(len(spine) - 1)]
        rows += [(spine[rng.randrange(len(spine))], w) for w in perm[len(spine) :]]
    else:  # random recursive tree
        rows = [(perm[k], perm[rng.randrange(k)]) for k in range(1, v)]
    rows = [(s, t) if rng.random() < 0.5 else (t, s) for s, t in rows]
    rng.shuffle(rows)
    return rows


def grid_mst(h: int, w: int, batch: int, seed: int, ties: bool = False):
    g = torch.Generator().manual_seed(seed)
    edges = ops.grid_edges(h, w)
    if ties:
        weights = torch.randint(0, 3, (batch, edges.shape[0]), generator=g).float()
    else:
        weights = torch.rand(batch, edges.shape[0], generator=g)
    tree, ok = reference.mst(edges.expand(batch, -1, -1).contiguous(), weights, h * w)
    assert bool(ok.all())
    return tree.long()


def tree_order(rows: torch.Tensor, root: int = 0):
    """(order, parent, depth) of the reference BFS, CPU int64."""
    order, parent, depth, ok = reference.bfs(rows, root)
    assert bool(ok.all())
    return order, parent, depth


def dfs_order(rows: list[tuple[int, int]], v: int, root: int):
    """A parent-before-child order that is NOT breadth-first (preorder DFS), with its tables."""
    adj = [[] for _ in range(v)]
    for s, t in rows:
        adj[s].append(t)
        adj[t].append(s)
    order, parent, depth, pos = [], [], [], {}
    stack = [(root, -1, 0)]
    while stack:
        cur, par, dep = stack.pop()
        pos[cur] = len(order)
        order.append(cur)
        parent.append(pos[par] if par >= 0 else 0)
        depth.append(dep)
        for nb in reversed(adj[cur]):
            if nb != par:
                stack.append((nb, cur, dep + 1))
    return (torch.tensor([order]), torch.tensor([parent]), torch.tensor([depth]))


def scan_inputs(batch: int, d: int, v: int, dtype, seed: int):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, d, v, generator=g, dtype=torch.float64)
    a = torch.rand(batch, d, v, generator=g, dtype=torch.float64) * 0.9 + 0.05  # GrootV: exp(dt*A) in (0, 1)
    return x.to(dtype), a.to(dtype)


def assert_close(got: torch.Tensor, want: torch.Tensor, dtype, what: str):
    got = got.detach().cpu().double()
    want = want.detach().cpu().double()
    scale = want.abs().max().clamp_min(1.0)
    tol = 1e-10 if dtype == torch.float64 else 2e-5
    err = (got - want).abs().max()
    assert err <= tol * scale, f"{what}: max |cuda - reference| = {err:.3g} (scale {scale:.3g})"


# ----------------------------------------------------------------------------------------------
# MST
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 1), (2, 2), (7, 9), (16, 16), (56, 56)])
@pytest.mark.parametrize("weights_kind", ["uniform", "ties", "special"])
def test_mst_rows_equal_reference(gpu, h, w, weights_kind):
    batch = 3
    g = torch.Generator().manual_seed(h * 1000 + w)
    edges = ops.grid_edges(h, w).expand(batch, -1, -1).contiguous()
    n_e = edges.shape[1]
    if weights_kind == "uniform":
        weights = torch.rand(batch, n_e, generator=g)
    elif weights_kind == "ties":
        weights = torch.randint(0, 3, (batch, n_e), generator=g).float()
    else:  # NaN (last), +-0 (equal), +-inf, negatives, exact ties
        choices = torch.tensor([float("nan"), 0.0, -0.0, float("inf"), float("-inf"), -1.5, 1.0, 1.0])
        weights = choices[torch.randint(0, len(choices), (batch, n_e), generator=g)]
    want_tree, want_ok = reference.mst(edges, weights, h * w)
    got_tree, got_ok = gpu.mod.mst(edges.to(DEV), weights.to(DEV), h * w)
    assert got_tree.dtype == torch.int32 and got_tree.shape == (batch, h * w - 1, 2)
    assert torch.equal(got_ok.cpu(), want_ok)
    assert torch.equal(got_tree.cpu(), want_tree), "tree rows (Kruskal order) differ from the reference"


def test_mst_general_graphs_duplicates_and_self_loops(gpu):
    rng = random.Random(1)
    v, batch = 40, 4
    rows = []
    for _ in range(batch):
        r = tree_rows("random", v, rng)
        r += [(rng.randrange(v), rng.randrange(v)) for _ in range(60)]  # extra, duplicate, self-loop edges
        r += [r[0], (5, 5)]
        rng.shuffle(r)
        rows.append(r)
    edges = torch.tensor(rows)
    weights = torch.randint(0, 5, (batch, edges.shape[1])).float()
    want = reference.mst(edges, weights, v)
    got = gpu.mod.mst(edges.to(DEV), weights.to(DEV), v)
    assert torch.equal(got[1].cpu(), want[1]) and bool(want[1].all())
    assert torch.equal(got[0].cpu(), want[0])


@pytest.mark.parametrize("v", [2, 5, 1000, 3137])
def test_mst_paths(gpu, v):
    edges = torch.tensor([[i, i + 1] for i in range(v - 1)]).expand(2, -1, -1).contiguous()
    rising = torch.arange(v - 1, dtype=torch.float32)
    for weights in (rising, rising.flip(0), torch.zeros(v - 1)):
        batch = torch.stack([weights, weights.flip(0)])
        want = reference.mst(edges, batch, v)
        got = gpu.mod.mst(edges.to(DEV), batch.to(DEV), v)
        assert torch.equal(got[0].cpu(), want[0]) and bool(got[1].all())


def test_mst_a_long_hook_chain_is_flattened_before_the_next_round(gpu):
    """V = 1024 (so 10 rounds): a path 0..899 with rising weights, in which every vertex picks the
    edge to its left, hooks into one chain 899 deep in the first round (deeper than 2**9 doublings
    flatten); chords (i, i+2) weigh 5000 and the only edge to the second path 900..1023 weighs
    10000. A chain left unflattened makes the chords look like crossing edges in round 2 and puts
    them in the tree instead of the 10000 edge."""
    v = 1024
    rows, weights = [], []
    for i in range(899):
        rows.append((i, i + 1)), weights.append(float(i))
    for i in range(0, 898, 2):
        rows.append((i, i + 2)), weights.append(5000.0)
    rows.append((899, 900)), weights.append(10000.0)
    for i in range(900, v - 1):
        rows.append((i, i + 1)), weights.append(float(i - 900) + 0.5)
    edges = torch.tensor([rows])
    w = torch.tensor([weights])
    want = reference.mst(edges, w, v)
    got = gpu.mod.mst(edges.to(DEV), w.to(DEV), v)
    assert bool(want[1].all()) and torch.equal(got[1].cpu(), want[1])
    assert torch.equal(got[0].cpu(), want[0])
    assert [899, 900] in got[0][0].tolist()


@pytest.mark.timeout(60)
def test_mst_disconnected_terminates(gpu, forced):
    # {0,1,2} and {3,4} never meet; batch 1 is connected
    edges = torch.tensor([[[0, 1], [1, 2], [3, 4], [0, 2]], [[0, 1], [1, 2], [2, 3], [3, 4]]])
    weights = torch.rand(2, 4)
    want_tree, want_ok = reference.mst(edges, weights, 5)
    got_tree, got_ok = gpu.mod.mst(edges.to(DEV), weights.to(DEV), 5)
    assert got_ok.cpu().tolist() == [False, True] == want_ok.tolist()
    assert torch.equal(got_tree.cpu(), want_tree)  # -1 padding included
    # more vertices than edges can reach, and a graph with no edge at all
    got_tree, got_ok = gpu.mod.mst(edges.to(DEV), weights.to(DEV), 9)
    assert not bool(got_ok.any())
    with pytest.raises(ValueError, match="not connected"):
        ops.minimum_spanning_tree(edges.to(DEV), weights.to(DEV), 5)


# ----------------------------------------------------------------------------------------------
# BFS
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["chain", "star", "random", "caterpillar"])
@pytest.mark.parametrize("v", [2, 3, 33, 300, 3136])
def test_bfs_equals_reference(gpu, kind, v):
    rng = random.Random(v * 7 + len(kind))
    batch = 3
    rows = torch.tensor([tree_rows(kind, v, rng) for _ in range(batch)])
    for root in (0, rng.randrange(v), v - 1):
        want = reference.bfs(rows, root)
        got = gpu.mod.bfs(rows.to(DEV), root)
        for name, g_, w_ in zip(("order", "parent", "depth", "ok"), got, want):
            assert torch.equal(g_.cpu(), w_), f"{name} differs (kind={kind}, v={v}, root={root})"


@pytest.mark.parametrize("h,w", [(1, 1), (1, 17), (17, 1), (7, 9), (56, 56)])
def test_mst_then_bfs_pipeline_equals_reference(gpu, h, w):
    batch = 2
    g = torch.Generator().manual_seed(h + 100 * w)
    feat = torch.randn(batch, 8, h, w, generator=g)
    edges = ops.grid_edges(h, w).expand(batch, -1, -1).contiguous()
    weights = ops.cosine_edge_weights(feat)
    tree_ref, _ = reference.mst(edges, weights, h * w)
    tree, ok = gpu.mod.mst(edges.to(DEV), weights.to(DEV), h * w)
    assert bool(ok.all()) and torch.equal(tree.cpu(), tree_ref)
    want = reference.bfs(tree_ref.long(), 0)
    got = gpu.mod.bfs(tree.long(), 0)
    for g_, w_ in zip(got, want):
        assert torch.equal(g_.cpu(), w_)


@pytest.mark.timeout(60)
def test_bfs_non_trees(gpu, forced):
    cases = [
        torch.tensor([[[0, 1], [0, 1], [2, 3]]]),  # duplicate edge: 2-3 cut off
        torch.tensor([[[0, 1], [1, 2], [2, 0], [3, 4]]]),  # cycle
        torch.tensor([[[0, 0], [1, 2]]]),  # self-loop
    ]
    for rows in cases:
        want = reference.bfs(rows, 0)
        got = gpu.mod.bfs(rows.to(DEV), 0)
        assert not bool(got[3].item())
        if gpu.name == "cuda":  # the CUDA queue stops where the reference does
            for g_, w_ in zip(got, want):
                assert torch.equal(g_.cpu(), w_)
        else:  # the Euler tours have no partial answer: all-zero tables
            assert all(int(t.abs().sum()) == 0 for t in got[:3])
    # ids out of range (only reachable without validation): ok False, all-zero tables
    got = gpu.mod.bfs(torch.tensor([[[0, 1], [1, 7]]], device=DEV), 0)
    assert not bool(got[3].item()) and int(got[0].abs().sum()) == 0
    with pytest.raises(ValueError, match="spanning tree"):
        ops.bfs(cases[0].to(DEV))


# ----------------------------------------------------------------------------------------------
# Scans
# ----------------------------------------------------------------------------------------------


def _check_scans(gpu, order, parent, depth, x, a, dtype, what):
    """Forward and backward of both modes, CUDA vs reference on CPU."""
    g = torch.randn_like(x)
    dev = [t.to(DEV) for t in (order, parent, depth)]
    xd, ad, gd = x.to(DEV), a.to(DEV), g.to(DEV)
    x0, a0, g0 = xd.clone(), ad.clone(), gd.clone()

    # the oracle runs in float64 on CPU, so the tolerance covers only the CUDA rounding
    x, a, g = x.double(), a.double(), g.double()
    y_ref, u_ref = reference.scan_full_fwd(x, a, order, parent, depth)
    y, u = gpu.mod.scan_full_fwd(xd, ad, *dev)
    assert y.dtype == dtype and u.dtype == dtype
    assert_close(y, y_ref, dtype, f"{what}: full forward y")
    assert_close(u, u_ref, dtype, f"{what}: full forward u (sorted order)")
    gx_ref, ga_ref = reference.scan_full_bwd(g, a, order, parent, depth, y_ref, u_ref)
    gx, ga = gpu.mod.scan_full_bwd(gd, ad, *dev, y, u)
    assert_close(gx, gx_ref, dtype, f"{what}: full grad x")
    assert_close(ga, ga_ref, dtype, f"{what}: full grad a")
    root = order[:, 0]
    assert (ga.cpu()[torch.arange(x.shape[0]), :, root] == 0).all(), "root gradient must be 0"

    ys_ref = reference.scan_subtree_fwd(x, a, order, parent, depth)
    ys = gpu.mod.scan_subtree_fwd(xd, ad, *dev)
    assert_close(ys, ys_ref, dtype, f"{what}: subtree forward")
    gx_ref, ga_ref = reference.scan_subtree_bwd(g, a, order, parent, depth, ys_ref)
    gx, ga = gpu.mod.scan_subtree_bwd(gd, ad, *dev, ys)
    assert_close(gx, gx_ref, dtype, f"{what}: subtree grad x")
    assert_close(ga, ga_ref, dtype, f"{what}: subtree grad a")

    assert torch.equal(xd, x0) and torch.equal(ad, a0) and torch.equal(gd, g0), "inputs were mutated"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("kind", ["chain", "star", "random", "caterpillar"])
@pytest.mark.parametrize("v,d", small([(1, 3), (2, 1), (9, 33), (200, 40)], [(1, 3), (2, 1), (9, 33), (40, 5)]))
def test_scans_equal_reference_on_trees(gpu, dtype, kind, v, d):
    rng = random.Random(v + d)
    batch = 2
    rows = torch.tensor([tree_rows(kind, v, rng) for _ in range(batch)]).reshape(batch, v - 1, 2)
    root = rng.randrange(v)
    order, parent, depth = tree_order(rows, root)
    x, a = scan_inputs(batch, d, v, dtype, seed=v * d)
    _check_scans(gpu, order, parent, depth, x, a, dtype, f"{kind} v={v} d={d} root={root}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("h,w", small([(1, 1), (1, 40), (40, 1), (7, 9)], [(1, 1), (1, 12), (12, 1), (5, 7)]))
def test_scans_equal_reference_on_grid_msts(gpu, dtype, h, w):
    rows = grid_mst(h, w, 2, seed=h * w, ties=True)
    order, parent, depth = tree_order(rows)
    x, a = scan_inputs(2, 5, h * w, dtype, seed=1)
    _check_scans(gpu, order, parent, depth, x, a, dtype, f"grid {h}x{w}")


def test_scans_accept_any_parent_before_child_order(gpu):
    rng = random.Random(5)
    v = small(120, 30)
    rows = tree_rows("random", v, rng)
    order, parent, depth = dfs_order(rows, v, root=3)
    x, a = scan_inputs(1, 7, v, torch.float64, seed=2)
    _check_scans(gpu, order, parent, depth, x, a, torch.float64, "preorder DFS")


@pytest.mark.slow
@pytest.mark.skipif(INTERPRETED, reason="minutes in the Triton interpreter; the small shapes cover its kernels")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scans_at_stage1_shape(gpu, dtype):
    """GrootV-T stage 1: 56x56 grid MST, D = 160."""
    rows = grid_mst(56, 56, 2, seed=56)
    order, parent, depth = tree_order(rows)
    x, a = scan_inputs(2, 160, 56 * 56, dtype, seed=3)
    _check_scans(gpu, order, parent, depth, x, a, dtype, "56x56 D=160")


# ----------------------------------------------------------------------------------------------
# Public API on CUDA
# ----------------------------------------------------------------------------------------------


def _public_tree(h: int, w: int, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    feat = torch.randn(batch, 4, h, w, generator=g).to(DEV)
    edges = ops.grid_edges(h, w, device=DEV)
    return ops.bfs(ops.minimum_spanning_tree(edges, ops.cosine_edge_weights(feat), h * w))


def test_backend_names_the_forced_backend(gpu, forced):
    assert ops.backend(DEV) == gpu.name, backend_mod.native_error(gpu.name)


@pytest.mark.parametrize("mode", ["full", "subtree"])
def test_gradcheck_float64(gpu, forced, mode):
    tree = _public_tree(3, 4, 2, seed=4)
    x, a = scan_inputs(2, 3, 12, torch.float64, seed=5)
    x = x.to(DEV).requires_grad_()
    a = a.to(DEV).requires_grad_()
    assert torch.autograd.gradcheck(lambda x_, a_: ops.tree_scan(x_, a_, tree, mode=mode), (x, a))


@pytest.mark.parametrize("mode", ["full", "subtree"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs(gpu, forced, mode, dtype):
    tree = _public_tree(6, 5, 2, seed=6)
    x, a = scan_inputs(2, 8, 30, torch.float32, seed=7)
    xh, ah = x.to(DEV, dtype).requires_grad_(), a.to(DEV, dtype).requires_grad_()
    y = ops.tree_scan(xh, ah, tree, mode=mode)
    assert y.dtype == dtype
    want = ops.tree_scan_ref(
        xh.detach().float().cpu(), ah.detach().float().cpu(), ops.TreeOrder(*(t.cpu() for t in tree)), mode=mode
    )
    assert torch.allclose(y.float().cpu(), want, rtol=2e-2, atol=2e-2)
    y.float().sum().backward()
    assert xh.grad.dtype == dtype and ah.grad.dtype == dtype
    assert torch.isfinite(xh.grad.float()).all() and torch.isfinite(ah.grad.float()).all()


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_kernels_compute_in_float32(gpu, dtype):
    """The kernels read float16/bfloat16 and compute in float32: y equals the float32 kernel's on
    the same (upcast) inputs, rounded once; u is float32 and equal; the x gradient (which does not
    read y) equals the float32 one rounded; the a gradient reads the rounded y, so it is close."""
    rows = grid_mst(7, 9, 2, seed=11)
    order, parent, depth = (t.to(DEV) for t in tree_order(rows))
    x, a = scan_inputs(2, 40, 63, torch.float32, seed=12)
    xh, ah = x.to(DEV, dtype), a.to(DEV, dtype)
    y, u = gpu.mod.scan_full_fwd(xh, ah, order, parent, depth)
    y32, u32 = gpu.mod.scan_full_fwd(xh.float(), ah.float(), order, parent, depth)
    assert y.dtype == dtype and u.dtype == torch.float32
    assert torch.equal(u, u32) and torch.equal(y, y32.to(dtype))
    g = torch.randn(2, 40, 63, device=DEV).to(dtype)
    gx, ga = gpu.mod.scan_full_bwd(g, ah, order, parent, depth, y, u)
    gx32, ga32 = gpu.mod.scan_full_bwd(g.float(), ah.float(), order, parent, depth, y32, u32)
    assert gx.dtype == dtype and ga.dtype == dtype
    assert torch.equal(gx, gx32.to(dtype))
    assert torch.allclose(ga.float(), ga32, rtol=3e-2, atol=3e-2 * ga32.abs().max().item())
    ys = gpu.mod.scan_subtree_fwd(xh, ah, order, parent, depth)
    ys32 = gpu.mod.scan_subtree_fwd(xh.float(), ah.float(), order, parent, depth)
    assert ys.dtype == dtype and torch.equal(ys, ys32.to(dtype))
    gxs, gas = gpu.mod.scan_subtree_bwd(g, ah, order, parent, depth, ys)
    gxs32, gas32 = gpu.mod.scan_subtree_bwd(g.float(), ah.float(), order, parent, depth, ys32)
    assert torch.equal(gxs, gxs32.to(dtype))
    assert torch.allclose(gas.float(), gas32, rtol=3e-2, atol=3e-2 * gas32.abs().max().item())
    with pytest.raises(RuntimeError, match="u must be"):
        gpu.mod.scan_full_bwd(g, ah, order, parent, depth, y, u.to(dtype))


@pytest.mark.parametrize("mode", ["full", "subtree"])
def test_public_api_matches_reference_with_autograd(gpu, forced, mode):
    tree = _public_tree(9, 7, 3, seed=8)
    x, a = scan_inputs(3, 35, 63, torch.float32, seed=9)
    xd, ad = x.to(DEV).detach().clone().requires_grad_(), a.to(DEV).detach().clone().requires_grad_()
    xr, ar = x.detach().clone().requires_grad_(), a.detach().clone().requires_grad_()
    y = ops.tree_scan(xd, ad, tree, mode=mode)
    y_ref = ops.tree_scan_ref(xr, ar, ops.TreeOrder(*(t.cpu() for t in tree)), mode=mode)
    assert_close(y, y_ref, torch.float32, "public forward")
    w = torch.randn_like(x)
    (y * w.to(DEV)).sum().backward()
    (y_ref * w).sum().backward()
    assert_close(xd.grad, xr.grad, torch.float32, "public grad x")
    assert_close(ad.grad, ar.grad, torch.float32, "public grad a")


@pytest.mark.parametrize("h,w", small([(1, 1), (1, 9), (9, 1), (14, 14), (56, 56)], [(1, 1), (1, 9), (9, 1), (6, 7)]))
def test_grid_spanning_tree_on_the_device_equals_cpu(gpu, forced, h, w):
    """The GPU path composes the single ops (weights, MST, BFS); eager inference then calls the
    backend's scan directly (ops.backend.eager_native): both equal the CPU results."""
    g = torch.Generator().manual_seed(h + w)
    feature = torch.randn(2, 8, h, w, generator=g)
    # the same weights on both sides (the CUDA weights are PyTorch's formula, the CPU's a kernel)
    edges = ops.grid_edges(h, w)
    weights = reference.grid_cosine_weights(feature)
    rows = ops.minimum_spanning_tree_ref(edges, weights, h * w)
    want = ops.bfs_ref(rows)
    got_rows, got = ops.grid_spanning_tree(feature.to(DEV))
    assert got_rows.device.type == DEV and got.order.device.type == DEV
    torch.testing.assert_close(ops.cosine_edge_weights(feature.to(DEV)).cpu(), weights, rtol=1e-5, atol=1e-6)
    if torch.equal(ops.cosine_edge_weights(feature.to(DEV)).cpu(), weights):  # no last-bit tie reorder
        assert torch.equal(got_rows.cpu(), rows) and all(torch.equal(p.cpu(), q) for p, q in zip(got, want))
    x = torch.randn(2, 5, h * w, generator=g)
    a = torch.rand(2, 5, h * w, generator=g)
    with torch.no_grad():
        assert backend_mod.eager_native(x.to(DEV), a.to(DEV)) is gpu.mod
        y = ops.tree_scan(x.to(DEV), a.to(DEV), ops.TreeOrder(*(t.to(DEV) for t in want)))
    torch.testing.assert_close(y.cpu(), ops.tree_scan_ref(x, a, want), rtol=1e-5, atol=1e-5)


@pytest.mark.skipif(not GPU, reason="host synchronisation is a GPU notion")
def test_triton_tree_and_scans_never_synchronise_with_the_host(gpu, forced):
    """No .item(), no copy to the host inside the Triton path (torch raises on a sync in "error"
    mode): what the published design's host MST could not offer."""
    if gpu.name != "triton":
        pytest.skip("the compiled CUDA op's contract does not promise it")
    feature = torch.randn(2, 8, 9, 7, device=DEV)
    x = torch.randn(2, 5, 63, device=DEV, requires_grad=True)
    a = torch.rand(2, 5, 63, device=DEV, requires_grad=True)

    def step():
        _, tree = ops.grid_spanning_tree(feature)
        for mode in ("full", "subtree"):
            ops.tree_scan(x, a, tree, mode).sum().backward()

    step()  # compiles the kernels first (compiling may wait for the device)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        step()
    finally:
        torch.cuda.set_sync_debug_mode("default")
