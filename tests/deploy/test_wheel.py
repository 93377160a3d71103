"""The wheel (``pip wheel .``) carries the native op's sources and the bundled models: installed into
an empty folder and used from outside the checkout, it finds every bundled model and builds (here:
reuses the content-keyed build of the same sources) and runs the native op. Offline: the build
uses the installed setuptools (``--no-build-isolation``), nothing is downloaded (``--no-index``)."""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

import pytest

from grootvl_core.ops import build

from .helpers import ROOT, copy_checkout, isolated_env, run

pytestmark = pytest.mark.slow

CHECK = r"""
import json, sys, torch
import grootvl_core
from grootvl_core import ops, zoo
from grootvl_core.ops import build
out = {"package": grootvl_core.__file__, "csrc": str(build.csrc_dir()), "offline": zoo.available_offline()}
for name in out["offline"]:
    model = zoo.load_model(name)
    out.setdefault("params", {})[name] = sum(p.numel() for p in model.parameters())
    out.setdefault("bundled_dirs", {})[name] = str(zoo.bundled_dir(name))
_, tree = ops.grid_spanning_tree(torch.randn(2, 8, 5, 6))
x, a = torch.randn(2, 8, 30), torch.rand(2, 8, 30)
y = ops.tree_scan(x, a, tree)
err = (y - ops.tree_scan_ref(x, a, tree)).abs().max().item()
out.update(backend=ops.backend(torch.device("cpu")), max_err=err, native=build.build_dir().name)
print(json.dumps(out))
"""


def test_wheel_installs_anywhere_with_native_sources_and_bundled_models(tmp_path):
    build.build_native()  # the checkout's build, which the installed copy of the same sources must reuse
    src = copy_checkout(tmp_path / "src")
    env = isolated_env()
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(src),
        ],
        cwd=tmp_path,
        env=env,
    )
    (wheel,) = (tmp_path / "dist").glob("grootvl-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "grootvl_core/_csrc/bindings.cpp" in names and "grootvl_core/_csrc/cuda/scan_full.cu" in names
    bundled = sorted(p.name for p in (ROOT / "checkpoints").iterdir() if (p / "model.safetensors").is_file())
    assert len(bundled) >= 3
    for folder in bundled:
        assert f"grootvl_core/_checkpoints/{folder}/model.safetensors" in names

    target = tmp_path / "target"
    run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(target), str(wheel)],
        cwd=tmp_path,
        env=env,
    )
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    out = run(
        [sys.executable, "-c", CHECK],
        cwd=outside,
        env=isolated_env(PYTHONPATH=str(target), GROOTVL_OPS="native"),
        timeout=900,
    )
    info = json.loads(out.stdout.strip().splitlines()[-1])
    assert info["package"].startswith(str(target)), info["package"]
    assert info["csrc"].startswith(str(target)), info["csrc"]
    # every bundled model is found in the installed package and loads
    assert sorted(Path(d).name for d in info["bundled_dirs"].values()) == bundled
    assert all(Path(d).is_relative_to(target) for d in info["bundled_dirs"].values()), info["bundled_dirs"]
    assert set(info["params"]) == set(info["offline"])
    # the native op from the shipped sources: the same content as the checkout's, so the same build
    assert info["backend"] == "cpu" and info["max_err"] < 1e-4
    assert info["native"] == build.build_dir().name
    assert "compiling the native" not in out.stderr, out.stderr  # keyed by content, not by path
