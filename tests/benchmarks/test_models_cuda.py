"""benchmarks/models_cuda.py's kernel swap, on the CPU with stand-in kernels: the GPU benchmark
compares nothing if GrootV quietly keeps using our kernels inside ``baseline_kernels``."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from grootvl_core import ops
from grootvl_core.models import GrootV, tree_ssm

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import models_cuda  # noqa: E402
from models_cuda import PublishedTables, baseline_kernels  # noqa: E402


def _stand_ins(calls):
    """Baseline kernels that count their calls and compute what ours compute."""

    def build_tree(feature):
        calls["tree"] += 1
        _, order = ops.grid_spanning_tree(feature)
        return PublishedTables(*order)

    def scan(x, a, tables):
        calls["scan"] += 1
        return ops.tree_scan(x, a, ops.TreeOrder(*tables), "full")

    return build_tree, scan


def test_every_tree_ssm_goes_through_the_baseline_and_is_restored():
    torch.manual_seed(0)
    model = GrootV(channels=16, depths=[1, 2, 1, 1], num_classes=5, in_chans=1).eval()
    x = torch.randn(2, 1, 32, 32)
    calls = {"tree": 0, "scan": 0}
    n_blocks = 5
    with torch.no_grad():
        ours = model(x)
        with baseline_kernels(*_stand_ins(calls)):
            swapped = model(x)
        again = model(x)
    assert calls == {"tree": n_blocks, "scan": n_blocks}
    torch.testing.assert_close(swapped, ours, rtol=0, atol=0)
    torch.testing.assert_close(again, ours, rtol=0, atol=0)
    assert tree_ssm.ops is ops and tree_ssm.build_grid_tree is models_cuda._tree_ssm.build_grid_tree


def test_training_step_uses_the_baseline_and_restores_on_error():
    torch.manual_seed(0)
    model = GrootV(channels=16, depths=[1, 1, 1, 1], num_classes=3, in_chans=1)
    calls = {"tree": 0, "scan": 0}
    saved = tree_ssm.build_grid_tree
    with pytest.raises(RuntimeError, match="boom"):
        with baseline_kernels(*_stand_ins(calls)):
            model(torch.randn(2, 1, 32, 32)).sum().backward()
            raise RuntimeError("boom")
    assert calls == {"tree": 4, "scan": 4}
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert tree_ssm.build_grid_tree is saved and tree_ssm.ops is ops


def test_subtree_mode_is_refused():
    wrapped = models_cuda._OpsWithBaselineScan(lambda x, a, t: x)
    tables = PublishedTables(*(torch.zeros(1, 4, dtype=torch.long),) * 3)
    with pytest.raises(ValueError, match="full scan only"):
        wrapped.tree_scan(torch.zeros(1, 2, 4), torch.zeros(1, 2, 4), tables, "subtree")
    assert wrapped.grid_edges is ops.grid_edges


def test_without_cuda_it_says_so(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert models_cuda.main(["--iters", "1"]) == 1
    assert "no CUDA device" in capsys.readouterr().out
