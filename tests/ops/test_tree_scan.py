"""The public op API against independent oracles, for every backend available here.

Native-vs-reference comparisons at model shapes live in test_native_cpu.py / test_gpu_backends.py; this file
checks the contract itself: closed forms, gradients, MST/BFS semantics, errors, no mutation.
"""

from __future__ import annotations

import importlib
import math
import random

import pytest
import torch

from grootvl_core import ops
from grootvl_core.ops import reference

from .brute_force import closed_form, kruskal

backend_mod = importlib.import_module("grootvl_core.ops.backend")


def _native_cpu_available() -> bool:
    return backend_mod._load("cpu") is not None


# "triton": the Triton kernels on CPU tensors in Triton's interpreter (tests/conftest.py sets
# TRITON_INTERPRET=1 without a GPU), so the whole contract below runs through them too
BACKENDS = [
    "reference",
    pytest.param(
        "native",
        marks=pytest.mark.skipif(
            not _native_cpu_available(), reason=f"native CPU build unavailable: {backend_mod.native_error('cpu')}"
        ),
    ),
    pytest.param(
        "triton",
        marks=pytest.mark.skipif(
            backend_mod.load_gpu_backend("triton", torch.device("cpu"))[0] is None,
            reason="Triton's interpreter is off (TRITON_INTERPRET unset)",
        ),
    ),
]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch):
    monkeypatch.setenv("GROOTVL_OPS", request.param)
    return request.param


def random_tree_edges(v: int, rng: random.Random) -> list[tuple[int, int]]:
    """Uniform-ish random spanning tree: attach each vertex of a random permutation to an earlier one."""
    perm = list(range(v))
    rng.shuffle(perm)
    edges = []
    for k in range(1, v):
        s, t = perm[k], perm[rng.randrange(k)]
        edges.append((min(s, t), max(s, t)) if rng.random() < 0.5 else (t, s))
    return edges


def grid_tree(h: int, w: int, batch: int, generator=None, ties: bool = False):
    edges = ops.grid_edges(h, w)
    if ties:
        weights = torch.randint(0, 3, (batch, edges.shape[0]), generator=generator).float()
    else:
        weights = torch.rand(batch, edges.shape[0], generator=generator)
    return edges, weights, ops.minimum_spanning_tree(edges, weights, h * w)


# ----------------------------------------------------------------------------------------------
# Graph construction
# ----------------------------------------------------------------------------------------------


def test_grid_edges_match_reference_example():
    # reference-grootvl.md 1.2, H=3, W=4 [verified]
    expected = [
        [0, 4],
        [1, 5],
        [2, 6],
        [3, 7],
        [4, 8],
        [5, 9],
        [6, 10],
        [7, 11],
        [0, 1],
        [1, 2],
        [2, 3],
        [4, 5],
        [5, 6],
        [6, 7],
        [8, 9],
        [9, 10],
        [10, 11],
    ]
    assert ops.grid_edges(3, 4).tolist() == expected
    for h, w in [(1, 1), (1, 5), (5, 1), (56, 56)]:
        assert ops.grid_edges(h, w).shape == (ops.num_grid_edges(h, w), 2)
    assert ops.num_grid_edges(56, 56) == 6160


def test_grid_edges_returns_a_private_copy():
    e = ops.grid_edges(2, 2)
    e.zero_()
    assert ops.grid_edges(2, 2).sum() > 0


def test_cosine_edge_weights_definition():
    f = torch.randn(2, 5, 3, 4)
    w = ops.cosine_edge_weights(f)
    assert w.dtype == torch.float32 and w.shape == (2, 17)
    flat = f.flatten(2)
    for k, (s, t) in enumerate(ops.grid_edges(3, 4).tolist()):
        cos = torch.nn.functional.cosine_similarity(flat[:, :, s], flat[:, :, t], dim=1)
        torch.testing.assert_close(w[:, k], torch.exp(-cos))
    with pytest.raises(ValueError, match=r"\(B, D, H, W\)"):
        ops.cosine_edge_weights(torch.randn(5, 3, 4))


# ----------------------------------------------------------------------------------------------
# MST and BFS
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("h,w", [(1, 1), (1, 7), (7, 1), (7, 9), (16, 16)])
@pytest.mark.parametrize("ties", [False, True])
def test_mst_equals_independent_kruskal(backend, h, w, ties):
    g = torch.Generator().manual_seed(h * 100 + w + ties)
    edges, weights, tree = grid_tree(h, w, 3, g, ties)
    assert tree.dtype == torch.int32 and tree.shape == (3, h * w - 1, 2)
    el = [tuple(e) for e in edges.tolist()]
    for b in range(3):
        assert {tuple(r) for r in tree[b].tolist()} == kruskal(el, weights[b].tolist(), h * w)


def test_mst_ties_go_to_lower_edge_index(backend):
    # all-equal weights: Kruskal in index order takes every vertical edge, then the first row.
    edges = ops.grid_edges(3, 3)
    tree = ops.minimum_spanning_tree(edges, torch.ones(1, edges.shape[0]), 9)
    assert {tuple(r) for r in tree[0].tolist()} == {(0, 3), (1, 4), (2, 5), (3, 6), (4, 7), (5, 8), (0, 1), (1, 2)}


def test_mst_compares_float32_and_puts_nan_last(backend):
    edges = torch.tensor([[0, 1], [1, 2], [0, 2]])
    # in float64 edge 2 is smaller; as float32 the three weights tie -> lowest indices win
    w64 = torch.tensor([[1.0 + 1e-12, 1.0 + 1e-12, 1.0]], dtype=torch.float64)
    assert {tuple(r) for r in ops.minimum_spanning_tree(edges, w64, 3)[0].tolist()} == {(0, 1), (1, 2)}
    wnan = torch.tensor([[float("nan"), 2.0, 3.0]])
    assert {tuple(r) for r in ops.minimum_spanning_tree(edges, wnan, 3)[0].tolist()} == {(1, 2), (0, 2)}


def test_mst_batched_edges_and_general_graphs(backend):
    rng = random.Random(0)
    v = 12
    all_pairs = [(i, j) for i in range(v) for j in range(i + 1, v)]
    edges = torch.stack(
        [torch.tensor(rng.sample(all_pairs, 30) + [(i, i + 1) for i in range(v - 1)]) for _ in range(2)]
    )
    weights = torch.rand(2, edges.shape[1])
    tree = ops.minimum_spanning_tree(edges, weights, v)
    for b in range(2):
        el = [tuple(e) for e in edges[b].tolist()]
        assert {tuple(r) for r in tree[b].tolist()} == kruskal(el, weights[b].tolist(), v)


@pytest.mark.timeout(60)
def test_disconnected_graph_raises_not_hangs(backend):
    edges = torch.tensor([[0, 1], [2, 3], [1, 0]])  # enough edges, but {0,1} and {2,3} never meet
    with pytest.raises(ValueError, match="not connected"):
        ops.minimum_spanning_tree(edges, torch.rand(2, 3), 4)
    with pytest.raises(ValueError, match="cannot connect"):
        ops.minimum_spanning_tree(edges[:2], torch.rand(2, 2), 4)


@pytest.mark.parametrize("h,w", [(1, 1), (1, 9), (9, 1), (7, 9), (16, 16)])
def test_bfs_parent_before_child_and_matches_reference(backend, h, w):
    _, _, tree = grid_tree(h, w, 2)
    order, parent, depth = ops.bfs(tree)
    v = h * w
    assert order.shape == parent.shape == depth.shape == (2, v)
    assert (order[:, 0] == 0).all() and (parent[:, 0] == 0).all() and (depth[:, 0] == 0).all()
    for b in range(2):
        assert sorted(order[b].tolist()) == list(range(v))
        edge_set = {frozenset(r) for r in tree[b].tolist()}
        for i in range(1, v):
            p = int(parent[b, i])
            assert p < i, "parent must come before child"
            assert int(depth[b, i]) == int(depth[b, p]) + 1
            assert frozenset((int(order[b, i]), int(order[b, p]))) in edge_set
        assert (depth[b, 1:] >= depth[b, :-1]).all(), "BFS visits depth levels in order"
    ref = ops.bfs_ref(tree)
    for got, want in zip(ops.bfs(tree), ref):
        assert torch.equal(got, want)


def test_bfs_reference_worked_example_shape():
    # reference 1.5: any root; root's parent is 0 and the order starts at the root.
    rng = random.Random(3)
    edges = torch.tensor(random_tree_edges(10, rng))
    t = ops.bfs(edges, root=7)
    assert t.order[0, 0] == 7 and t.parent[0, 0] == 0


@pytest.mark.timeout(60)
def test_bfs_rejects_non_trees(backend):
    with pytest.raises(ValueError, match="spanning tree"):
        ops.bfs(torch.tensor([[[0, 1], [0, 1], [2, 3]]]))  # 4 vertices, vertex 2-3 cut off
    with pytest.raises(ValueError, match="root"):
        ops.bfs(torch.tensor([[[0, 1]]]), root=2)
    with pytest.raises(ValueError, match=r"\[0, 2\)"):
        ops.bfs(torch.tensor([[[0, 5]]]))
    with pytest.raises(TypeError, match="integer"):
        ops.bfs(torch.tensor([[[0.0, 1.0]]]))


# ----------------------------------------------------------------------------------------------
# Scan: closed forms and gradients
# ----------------------------------------------------------------------------------------------


def _case(kind: str, v: int, rng: random.Random):
    if kind == "chain":
        perm = list(range(v))
        rng.shuffle(perm)
        return [(perm[i], perm[i + 1]) for i in range(v - 1)]
    if kind == "star":
        c = rng.randrange(v)
        return [(c, i) for i in range(v) if i != c]
    return random_tree_edges(v, rng)


@pytest.mark.parametrize("mode", ["full", "subtree"])
@pytest.mark.parametrize(
    "kind,v", [("random", 1), ("random", 2), ("random", 9), ("chain", 12), ("star", 12), ("random", 40)]
)
def test_scan_equals_closed_form_on_random_trees(backend, mode, kind, v):
    rng = random.Random(v * 7 + len(kind))
    batch, d = 2, 3
    edges = [_case(kind, v, rng) for _ in range(batch)]
    root = rng.randrange(v)
    rows = torch.tensor(edges, dtype=torch.int64).reshape(batch, v - 1, 2)
    tree = ops.bfs(rows, root=root)
    x = torch.randn(batch, d, v, dtype=torch.float64)
    a = torch.rand(batch, d, v, dtype=torch.float64) * 1.8 - 0.9  # negative weights too
    want = closed_form(x, a, edges, root, mode)
    torch.testing.assert_close(ops.tree_scan(x, a, tree, mode), want, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(ops.tree_scan(x.float(), a.float(), tree, mode), want.float(), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", ["full", "subtree"])
@pytest.mark.parametrize("h,w", [(1, 1), (1, 6), (6, 1), (7, 9), (16, 16)])
def test_scan_equals_closed_form_on_grid_msts(backend, mode, h, w):
    _, _, rows = grid_tree(h, w, 2, ties=(h == 7))
    tree = ops.bfs(rows)
    x = torch.randn(2, 2, h * w, dtype=torch.float64)
    a = torch.rand(2, 2, h * w, dtype=torch.float64)
    want = closed_form(x, a, [[tuple(r) for r in rows[b].tolist()] for b in range(2)], 0, mode)
    torch.testing.assert_close(ops.tree_scan(x, a, tree, mode), want, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["full", "subtree"])
@pytest.mark.parametrize("kind", ["random", "chain", "star"])
def test_gradcheck(backend, mode, kind):
    rng = random.Random(11)
    v = 10
    rows = torch.tensor([_case(kind, v, rng) for _ in range(2)])
    tree = ops.bfs(rows, root=3)
    x = torch.randn(2, 3, v, dtype=torch.float64, requires_grad=True)
    a = (torch.rand(2, 3, v, dtype=torch.float64) * 1.6 - 0.8).requires_grad_()
    # the interpreted Triton kernels: one random projection of the Jacobian (every entry costs a
    # kernel run in Python); the full Jacobian for the compiled backends
    fast = backend == "triton"
    assert torch.autograd.gradcheck(lambda x, a: ops.tree_scan(x, a, tree, mode), (x, a), fast_mode=fast)


@pytest.mark.parametrize("mode", ["full", "subtree"])
def test_gradients_equal_autograd_of_reference(backend, mode):
    _, _, rows = grid_tree(9, 11, 2)
    tree = ops.bfs(rows)
    x = torch.randn(2, 5, 99, requires_grad=True)
    a = torch.rand(2, 5, 99, requires_grad=True)
    g = torch.randn(2, 5, 99)
    gx, ga = torch.autograd.grad(ops.tree_scan(x, a, tree, mode), (x, a), g)
    rx, ra = torch.autograd.grad(ops.tree_scan_ref(x, a, tree, mode), (x, a), g)
    torch.testing.assert_close(gx, rx, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ga, ra, rtol=1e-4, atol=1e-4)
    root = tree.order[:, 0]
    assert (ga[torch.arange(2), :, root] == 0).all(), "the root's weight is ignored"


def test_root_weight_is_ignored(backend):
    _, _, rows = grid_tree(4, 4, 1)
    tree = ops.bfs(rows)
    x, a = torch.randn(1, 2, 16), torch.rand(1, 2, 16)
    a2 = a.clone()
    a2[..., 0] = float("nan")
    for mode in ("full", "subtree"):
        torch.testing.assert_close(ops.tree_scan(x, a2, tree, mode), ops.tree_scan(x, a, tree, mode))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_inputs_computed_in_float32(backend, dtype):
    _, _, rows = grid_tree(6, 6, 2)
    tree = ops.bfs(rows)
    x, a = torch.randn(2, 4, 36), torch.rand(2, 4, 36)
    xh, ah = x.to(dtype), a.to(dtype)
    y = ops.tree_scan(xh, ah, tree)
    assert y.dtype == dtype
    want = ops.tree_scan_ref(xh.float(), ah.float(), tree).to(dtype)
    torch.testing.assert_close(y, want)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_ops_keep_dtypes_and_save_u_in_float32(backend, dtype):
    """The registered ops themselves take float16/bfloat16 on every backend: y and the gradients
    come back in the inputs' dtype, the full scan's saved aggregate u in float32, as the fake
    (meta) functions say; opcheck checks fake against real, and the autograd registration."""
    _, _, rows = grid_tree(5, 4, 2)
    tree = ops.bfs(rows)
    idx = tuple(t.contiguous() for t in tree)
    x, a = torch.randn(2, 3, 20).to(dtype), torch.rand(2, 3, 20).to(dtype)
    y, u = torch.ops.grootvl.tree_scan_full(x, a, *idx)
    assert y.dtype == dtype and u.dtype == torch.float32
    y32, u32 = torch.ops.grootvl.tree_scan_full(x.float(), a.float(), *idx)
    torch.testing.assert_close(u, u32, rtol=0, atol=0)
    torch.testing.assert_close(y, y32.to(dtype), rtol=0, atol=0)
    g = torch.randn(2, 3, 20).to(dtype)
    gx, ga = torch.ops.grootvl.tree_scan_full_backward(g, a, *idx, y, u)
    assert gx.dtype == dtype and ga.dtype == dtype
    gx32, _ = torch.ops.grootvl.tree_scan_full_backward(g.float(), a.float(), *idx, y.float(), u)
    torch.testing.assert_close(gx, gx32.to(dtype), rtol=0, atol=0)
    ys = torch.ops.grootvl.tree_scan_subtree(x, a, *idx)
    assert ys.dtype == dtype
    gxs, gas = torch.ops.grootvl.tree_scan_subtree_backward(g, a, *idx, ys)
    assert gxs.dtype == dtype and gas.dtype == dtype
    for op in (torch.ops.grootvl.tree_scan_full.default, torch.ops.grootvl.tree_scan_subtree.default):
        torch.library.opcheck(op, (x, a, *idx), test_utils=("test_schema", "test_faketensor"))


@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_opcheck(backend, dtype, channels_last):
    """Fake (meta) outputs match the real ones in shape, dtype and strides, also for the
    (B, D, V) views of (B, V, D) memory the CPU kernels read in place."""
    _, _, rows = grid_tree(4, 3, 2)
    idx = tuple(t.contiguous() for t in ops.bfs(rows))
    if channels_last:
        x = torch.randn(2, 12, 3, dtype=dtype).transpose(1, 2).requires_grad_()
        a = torch.rand(2, 12, 3, dtype=dtype).transpose(1, 2).requires_grad_()
    else:
        x = torch.randn(2, 3, 12, dtype=dtype, requires_grad=True)
        a = torch.rand(2, 3, 12, dtype=dtype, requires_grad=True)
    for op in (torch.ops.grootvl.tree_scan_full.default, torch.ops.grootvl.tree_scan_subtree.default):
        torch.library.opcheck(op, (x, a, *idx))


def test_inputs_are_not_mutated(backend):
    _, _, rows = grid_tree(5, 5, 2)
    tree = ops.bfs(rows)
    x, a = torch.randn(2, 3, 25, requires_grad=True), torch.rand(2, 3, 25, requires_grad=True)
    snap = [t.detach().clone() for t in (x, a, *tree)]
    for mode in ("full", "subtree"):
        ops.tree_scan(x, a, tree, mode).sum().backward()
    for before, after in zip(snap, (x, a, *tree)):
        assert torch.equal(before, after.detach())


def test_subtree_on_a_chain_is_mambas_causal_recurrence(backend):
    """reference 4.3 step 7: chain rooted at the last token, edge (t, t+1) weighted by Abar_{t+1},
    gives h_t = Abar_t h_{t-1} + Bbar_t u_t exactly."""
    batch, d, length = 2, 6, 17
    abar = torch.rand(batch, d, length, dtype=torch.float64)
    bu = torch.randn(batch, d, length, dtype=torch.float64)
    rows = torch.tensor([[t, t + 1] for t in range(length - 1)]).expand(batch, -1, -1)
    tree = ops.bfs(rows, root=length - 1)
    a = torch.roll(abar, -1, dims=2)  # a[t] = Abar[t+1]; the root's (wrapped) value is ignored
    y = ops.tree_scan(bu, a, tree, mode="subtree")
    h = torch.zeros(batch, d, dtype=torch.float64)
    for t in range(length):
        h = abar[..., t] * h + bu[..., t]
        assert torch.equal(y[..., t], h) or torch.allclose(y[..., t], h, rtol=0, atol=1e-15)


# ----------------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------------


def test_scan_argument_errors():
    _, _, rows = grid_tree(3, 3, 2)
    tree = ops.bfs(rows)
    x = torch.randn(2, 4, 9)
    with pytest.raises(ValueError, match="mode"):
        ops.tree_scan(x, x, tree, mode="both")
    with pytest.raises(ValueError, match="same shape"):
        ops.tree_scan(x, x[:, :3], tree)
    with pytest.raises(TypeError, match="same dtype"):
        ops.tree_scan(x, x.double(), tree)
    with pytest.raises(TypeError, match="floating point"):
        ops.tree_scan(x.long(), x.long(), tree)
    with pytest.raises(ValueError, match=r"\(B, D, V\)"):
        ops.tree_scan(x[0], x[0], tree)
    with pytest.raises(ValueError, match="tree.order"):
        ops.tree_scan(torch.randn(2, 4, 10), torch.randn(2, 4, 10), tree)
    with pytest.raises(TypeError, match="TreeOrder"):
        ops.tree_scan(x, x, rows)
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        ops.minimum_spanning_tree(torch.tensor([[0, 9], [1, 2], [2, 3]]), torch.rand(1, 3), 4)
    with pytest.raises(TypeError, match="floating-point"):
        ops.minimum_spanning_tree(torch.tensor([[0, 1]]), torch.ones(1, 1, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"\(E, 2\) or \(B, E, 2\)"):
        ops.minimum_spanning_tree(torch.tensor([[0, 1, 2]]), torch.ones(1, 1), 3)


def test_backend_env_var(monkeypatch):
    monkeypatch.setenv("GROOTVL_OPS", "reference")
    assert ops.backend("cpu") == "reference"
    monkeypatch.setenv("GROOTVL_OPS", "bogus")
    with pytest.raises(ValueError, match="GROOTVL_OPS"):
        ops.backend("cpu")


def test_failed_native_build_warns_once_and_falls_back(monkeypatch):
    monkeypatch.setenv("GROOTVL_OPS", "auto")
    monkeypatch.setattr(backend_mod, "_modules", {"cpu": None})
    monkeypatch.setattr(backend_mod, "_errors", {"cpu": "RuntimeError: no compiler"})
    monkeypatch.setattr(backend_mod, "_warned", set())
    monkeypatch.setattr(backend_mod, "_resolved", {})
    with pytest.warns(RuntimeWarning, match="no compiler"):
        assert ops.backend("cpu") == "reference"
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert ops.backend("cpu") == "reference"  # no second warning
    monkeypatch.setenv("GROOTVL_OPS", "native")
    with pytest.raises(RuntimeError, match="GROOTVL_OPS=native"):
        ops.backend("cpu")


def test_torch_compile_traces_the_op():
    _, _, rows = grid_tree(4, 5, 2)
    tree = ops.bfs(rows)
    x, a = torch.randn(2, 3, 20), torch.rand(2, 3, 20)

    def f(x, a, order, parent, depth):
        return ops.tree_scan(x * 2, a, ops.TreeOrder(order, parent, depth)).sin()

    compiled = torch.compile(f, backend="eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, a, *tree), f(x, a, *tree))
    assert not math.isnan(float(compiled(x, a, *tree).sum()))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("mode", ["full", "subtree"])
def test_reference_rejects_forged_trees_instead_of_hanging(mode):
    """A depth of 1e9 made the reference's level loop run (or allocate) forever; a parent after its
    child made it read values not computed yet. It now checks the table as the native op does."""
    _, _, rows = grid_tree(3, 4, 1)
    good = ops.bfs(rows)
    x, a = torch.randn(1, 2, 12), torch.rand(1, 2, 12)
    forged = {
        "depth": good._replace(depth=good.depth.clone().index_fill_(1, torch.tensor([5]), 10**9)),
        "parent": good._replace(parent=good.parent.clone().index_fill_(1, torch.tensor([3]), 7)),
        "order": good._replace(order=good.order.clone().index_fill_(1, torch.tensor([2]), 0)),
    }
    for what, tree in forged.items():
        with pytest.raises(ValueError, match="not a valid TreeOrder") as err:
            ops.tree_scan_ref(x, a, tree, mode)
        assert what in str(err.value)
        with pytest.raises(ValueError, match="not a valid TreeOrder"):
            reference.scan_subtree_fwd(x, a, *tree) if mode == "subtree" else reference.scan_full_fwd(x, a, *tree)
    torch.testing.assert_close(ops.tree_scan_ref(x, a, good, mode), ops.tree_scan(x, a, good, mode))


def test_triton_scans_stay_in_bounds_on_forged_trees():
    tb, why = backend_mod.load_gpu_backend("triton", torch.device("cpu"))
    if tb is None:
        pytest.skip(why)
    _, _, rows = grid_tree(3, 4, 1)
    good = ops.bfs(rows)
    x, a = torch.randn(1, 2, 12), torch.rand(1, 2, 12)
    tree = good._replace(
        order=good.order.clone().index_fill_(1, torch.tensor([2]), 99),
        parent=good.parent.clone().index_fill_(1, torch.tensor([3]), -5),
    )
    y, u = tb.scan_full_fwd(x, a, *tree)  # wrong numbers, but no out-of-bounds access
    assert y.shape == x.shape and u.shape == x.shape
