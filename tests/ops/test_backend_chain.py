"""The GPU backend chain and its self-check (ops/backend.py, ops/selfcheck.py).

The chain logic runs here with stand-in backends (the reference with one function broken), on the
CPU: which backend serves, the one warning a skip gives, the errors a forced backend raises. The
Triton backend itself is checked for real under Triton's interpreter (tests/conftest.py).
"""

from __future__ import annotations

import importlib
import types
import warnings

import pytest
import torch

from grootvl_core import ops
from grootvl_core.ops import reference, selfcheck

backend_mod = importlib.import_module("grootvl_core.ops.backend")

triton_here = pytest.mark.skipif(
    backend_mod.load_gpu_backend("triton", torch.device("cpu"))[0] is None,
    reason="Triton's interpreter is off (TRITON_INTERPRET unset)",
)


def stand_in(name: str, **broken) -> types.ModuleType:
    """The reference backend as module ``name``, with the functions in ``broken`` replaced."""
    mod = types.ModuleType(name)
    for fn in ("mst", "bfs", "scan_full_fwd", "scan_full_bwd", "scan_subtree_fwd", "scan_subtree_bwd"):
        setattr(mod, fn, broken.get(fn, getattr(reference, fn)))
    return mod


def off_by(fn, k: int, eps: float):
    """``fn`` whose k-th output is nudged by ``eps`` at one entry."""

    def wrong(*args):
        out = list(fn(*args))
        out[k] = out[k].clone()
        out[k].view(-1)[-1] += eps
        return tuple(out)

    return wrong


def no_kernel_image(*args):
    raise RuntimeError("CUDA error: no kernel image is available for execution on the device")


def swapped_bfs(tree, root):
    order, parent, depth, ok = reference.bfs(tree, root)
    order = order.clone()
    if order.shape[1] > 2:
        order[:, [1, 2]] = order[:, [2, 1]]
    return order, parent, depth, ok


@pytest.fixture
def fresh_chain(monkeypatch):
    """No backend resolved, checked or warned about yet in this test."""
    for name in ("_checked", "_resolved"):
        monkeypatch.setattr(backend_mod, name, {})
    monkeypatch.setattr(backend_mod, "_warned", set())


# ----------------------------------------------------------------------------------------------
# The self-check
# ----------------------------------------------------------------------------------------------


def test_selfcheck_passes_the_reference_exactly():
    result = selfcheck.run(stand_in("ok"), "cpu", "stand-in")
    assert result.passed, result.detail
    assert result.max_error < 1e-2 and result.seconds > 0  # fp16 outputs are rounded to fp16
    assert result in selfcheck.results()
    assert "stand-in" in selfcheck.table() and "pass" in selfcheck.table([result])


@pytest.mark.parametrize(
    "broken,expect",
    [
        ({"scan_full_bwd": off_by(reference.scan_full_bwd, 1, 1e-3)}, "full da"),
        ({"scan_full_fwd": off_by(reference.scan_full_fwd, 1, 1e-3)}, "full u"),
        ({"scan_subtree_fwd": lambda *a: reference.scan_subtree_fwd(*a) * (1 + 1e-4)}, "subtree y"),
        ({"bfs": swapped_bfs}, "bfs"),
        ({"mst": lambda e, w, v: (reference.mst(e, w, v)[0].flip(1), reference.mst(e, w, v)[1])}, "mst"),
        ({"scan_full_fwd": no_kernel_image}, "no kernel image"),
    ],
)
def test_selfcheck_catches_wrong_values_and_errors(broken, expect):
    result = selfcheck.run(stand_in("bad", **broken), "cpu", "bad")
    assert not result.passed
    assert expect in result.detail, result.detail


def test_selfcheck_catches_a_scan_that_mutates_its_inputs():
    def mutating(x, a, *rest):
        y = reference.scan_subtree_fwd(x, a, *rest)
        x.add_(0.5)
        return y

    result = selfcheck.run(stand_in("bad", scan_subtree_fwd=mutating), "cpu", "bad")
    assert not result.passed and "mutated" in result.detail


# ----------------------------------------------------------------------------------------------
# The chain (stand-ins in place of the CUDA and Triton backends)
# ----------------------------------------------------------------------------------------------


def chain_of(monkeypatch, **mods):
    """Make ``load_gpu_backend`` hand out ``mods`` (name -> module, or a string: why it cannot)."""

    def load(name, device):
        m = mods[name]
        return (None, m) if isinstance(m, str) else (m, "")

    monkeypatch.setattr(backend_mod, "load_gpu_backend", load)


def test_a_backend_failing_its_check_is_skipped_with_one_warning(fresh_chain, monkeypatch):
    good = stand_in("good")
    chain_of(monkeypatch, cuda=stand_in("cuda", scan_full_fwd=no_kernel_image), triton=good)
    with pytest.warns(RuntimeWarning) as caught:
        assert backend_mod._gpu_backend("auto", torch.device("cpu")) is good
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "cuda tree-scan backend was skipped" in text and "no kernel image" in text
    assert "the triton backend serves it instead" in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the same device again: no second warning, no re-check
        assert backend_mod._gpu_backend("auto", torch.device("cpu")) is good


def test_nothing_passing_falls_back_to_the_reference(fresh_chain, monkeypatch):
    chain_of(monkeypatch, cuda="build failed (nvcc not found)", triton=stand_in("t", bfs=swapped_bfs))
    with pytest.warns(RuntimeWarning) as caught:
        assert backend_mod._gpu_backend("auto", torch.device("cpu")) is reference
    assert len(caught) == 1
    text = str(caught[0].message)
    assert "nvcc not found" in text and "self-check failed" in text and "pure-PyTorch reference" in text


@pytest.mark.parametrize("mode", ["cuda", "triton"])
def test_a_forced_backend_that_cannot_serve_raises(fresh_chain, monkeypatch, mode):
    chain_of(monkeypatch, cuda=stand_in("c", scan_full_bwd=no_kernel_image), triton="cannot import Triton")
    with pytest.raises(RuntimeError, match=f"GROOTVL_OPS={mode} but the {mode} tree-scan backend cannot serve"):
        backend_mod._gpu_backend(mode, torch.device("cpu"))


def test_forced_triton_on_cpu_without_the_interpreter_says_how(fresh_chain, monkeypatch):
    monkeypatch.setenv("GROOTVL_OPS", "triton")
    monkeypatch.setattr(backend_mod, "triton_interpreted", lambda: False)
    with pytest.raises(RuntimeError, match="TRITON_INTERPRET=1"):
        ops.backend("cpu")


def test_gpu_modes_are_accepted_and_bad_ones_named(monkeypatch):
    for mode in ("auto", "native", "reference", "cuda", "triton"):
        monkeypatch.setenv("GROOTVL_OPS", mode)
        assert backend_mod._mode() == mode
    monkeypatch.setenv("GROOTVL_OPS", "gpu")
    with pytest.raises(ValueError, match="cuda, triton"):
        backend_mod._mode()


# ----------------------------------------------------------------------------------------------
# The real Triton backend, interpreted
# ----------------------------------------------------------------------------------------------


@triton_here
def test_triton_serves_cpu_tensors_under_the_interpreter(fresh_chain, monkeypatch):
    monkeypatch.setenv("GROOTVL_OPS", "triton")
    assert ops.backend("cpu") == "triton"
    check = [r for r in selfcheck.results() if r.backend == "triton" and r.device == "cpu"]
    assert check and check[-1].passed, selfcheck.table()
    assert backend_mod.fused_cpu(torch.zeros(1)) is None  # no native CPU kernel runs beside it


@triton_here
def test_a_model_forward_through_triton_equals_the_reference(monkeypatch):
    from grootvl_core import zoo

    model = zoo.load_model("grootv-nano-fmnist").eval()
    x = torch.randn(2, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        monkeypatch.setenv("GROOTVL_OPS", "reference")
        want = model(x)
        monkeypatch.setenv("GROOTVL_OPS", "triton")
        got = model(x)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@triton_here
def test_selfcheck_command_prints_the_table(capsys):
    assert selfcheck.main([]) == 0
    out = capsys.readouterr().out
    assert "triton" in out and "pass" in out and "max err" in out


@triton_here
def test_torch_compile_traces_the_triton_ops():
    tb = backend_mod.load_gpu_backend("triton", torch.device("cpu"))[0]
    rows = reference.mst(ops.grid_edges(3, 4).expand(2, -1, -1).contiguous(), torch.rand(2, 17), 12)[0]
    order, parent, depth, _ = reference.bfs(rows.long(), 0)
    x, a = torch.randn(2, 5, 12), torch.rand(2, 5, 12)

    def f(x, a, order, parent, depth):
        y, u = tb.scan_full_fwd(x * 2, a, order, parent, depth)
        return y.sin() + u

    def g(rows):
        return tb.bfs(rows, 0)[0]

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    torch.testing.assert_close(compiled(x, a, order, parent, depth), f(x, a, order, parent, depth))
    assert torch.equal(torch.compile(g, backend="aot_eager", fullgraph=True)(rows.long()), order)


def test_missing_sources_are_reported_as_such_not_as_a_missing_compiler(fresh_chain, monkeypatch):
    build = importlib.import_module("grootvl_core.ops.build")

    def no_sources(cuda=False, verbose=False):
        raise FileNotFoundError("this installation has no C++ sources to build the op from")

    monkeypatch.setattr(build, "build_native", no_sources)
    for name in ("_modules", "_errors"):
        monkeypatch.setattr(backend_mod, name, {})
    monkeypatch.setattr(backend_mod, "_missing_sources", set())
    monkeypatch.setenv("GROOTVL_OPS", "auto")
    with pytest.warns(RuntimeWarning) as caught:
        assert ops.backend("cpu") == "reference"
    text = str(caught[0].message)
    assert "no C++ sources" in text and "reinstall grootvl" in text and "compiler" not in text


def test_chain_tree_lives_in_ops_and_the_language_module_re_exports_it():
    """The vision raster ablation takes the chain from ops, not from the language model's module."""
    import grootvl_core.models.tree_ssm as tree_ssm
    from grootvl_core.models import grootl_tree
    from grootvl_core.ops import chain_tree

    assert grootl_tree.chain_tree is chain_tree
    assert "grootl_tree" not in open(tree_ssm.__file__).read()
    tree = chain_tree(2, 4)
    assert tree.order.tolist() == [[3, 2, 1, 0]] * 2 and tree.parent.tolist() == [[0, 0, 1, 2]] * 2
