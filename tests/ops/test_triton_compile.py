"""The Triton kernels compile for the GPUs a Space offers (T4 to H100), without a GPU: the
interpreter runs their logic (test_gpu_backends.py) but accepts code the compiler rejects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from grootvl_core.ops import triton_compile

pytest.importorskip("triton")


def test_every_kernel_compiles_to_a_cubin_for_each_space_gpu():
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    proc = subprocess.run(
        [sys.executable, "-m", "grootvl_core.ops.triton_compile"], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    for arch in triton_compile.DEFAULT_ARCHS:
        for kernel in ("accumulate_up", "propagate_down", "grid_cosine"):
            assert any(ln.startswith(f"sm_{arch} {kernel}(") and ": ok" in ln for ln in lines), (arch, kernel)
    assert len(lines) == len(triton_compile.DEFAULT_ARCHS) * len(list(triton_compile._variants()))


def test_the_walk_check_rejects_mixed_layouts_and_missing_barriers():
    one = "tt.load %a : tensor<128x!tt.ptr<f32>, #blocked>\ntt.store %b, %c : tensor<128x!tt.ptr<f32>, #blocked>\n"
    triton_compile._check_walk("accumulate_up", one + "ttg.barrier all")
    with pytest.raises(RuntimeError, match="2 layouts"):
        triton_compile._check_walk(
            "accumulate_up", one.replace("#blocked>\ntt.store", "#blocked1>\ntt.store") + "ttg.barrier all"
        )
    with pytest.raises(RuntimeError, match="no barrier"):
        triton_compile._check_walk("propagate_down", one)
