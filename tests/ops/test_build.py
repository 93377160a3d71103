"""How the native op is built (grootvl_core/ops/build.py): a cache keyed by the sources' content,
an announcement before a build, the CUDA architectures, the error for an install without sources,
and no third-party warning on a CPU-only machine."""

from __future__ import annotations

import importlib
import os
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

build = importlib.import_module("grootvl_core.ops.build")

ROOT = Path(__file__).resolve().parents[2]


def _copy_sources(dest: Path) -> Path:
    shutil.copytree(build.csrc_dir(), dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_cache_key_follows_the_sources_content_not_their_path(tmp_path, monkeypatch):
    a, b = _copy_sources(tmp_path / "one" / "csrc"), _copy_sources(tmp_path / "two" / "csrc")
    keys = {}
    for name, src in (("a", a), ("b", b)):
        monkeypatch.setattr(build, "csrc_dir", lambda src=src: src)
        keys[name] = (build.build_key(), build.build_key(cuda=True), build.build_dir())
    assert keys["a"] == keys["b"]  # two checkouts of the same sources share one build
    header = b / "cpu" / "scan_block.h"
    header.write_text(header.read_text() + "\n// changed\n")
    monkeypatch.setattr(build, "csrc_dir", lambda: b)
    assert build.build_key() != keys["a"][0] and build.build_key(cuda=True) != keys["a"][1]
    cu = a / "cuda" / "bfs.cu"
    cu.write_text(cu.read_text() + "\n// changed\n")
    monkeypatch.setattr(build, "csrc_dir", lambda: a)
    assert build.build_key() == keys["a"][0]  # a CUDA source does not rebuild the CPU op
    assert build.build_key(cuda=True) != keys["a"][1]
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.6")
    assert build.build_key(cuda=True) != build.build_key(cuda=False)


class _FakeCppExtension(types.SimpleNamespace):
    """Records ``load`` calls and writes the library file a real build would."""

    def load(self, name, sources, build_directory, **kwargs):
        self.calls.append({"name": name, "sources": sources, "build_directory": build_directory, **kwargs})
        Path(build_directory, f"{name}.so").write_bytes(b"")
        return types.SimpleNamespace(__name__=name, __file__=str(Path(build_directory, f"{name}.so")))


def test_a_build_is_announced_with_its_duration_and_reads_a_staged_copy(tmp_path, monkeypatch, capsys):
    fake = _FakeCppExtension(calls=[])
    monkeypatch.setattr(build, "_cpp_extension", lambda: fake)
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path / "ext"))
    build.build_native()
    err = capsys.readouterr().err
    assert "compiling the native CPU tree-scan op" in err and "minute" in err
    dest = build.build_dir()
    assert Path(fake.calls[0]["build_directory"]) == dest
    staged = dest / "src"
    assert all(Path(s).is_relative_to(staged) for s in fake.calls[0]["sources"])
    assert (staged / "bindings.cpp").read_bytes() == (build.csrc_dir() / "bindings.cpp").read_bytes()
    build.build_native()  # built already: nothing to announce
    assert "compiling" not in capsys.readouterr().err


def test_old_builds_are_pruned(tmp_path, monkeypatch):
    fake = _FakeCppExtension(calls=[])
    monkeypatch.setattr(build, "_cpp_extension", lambda: fake)
    root = tmp_path / "ext"
    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(root))
    for i in range(build.KEEP_BUILDS + 3):
        old = root / f"grootvl_native_{i:016x}"
        old.mkdir(parents=True)
        os.utime(old, (1000 + i, 1000 + i))
    (root / "grootvl_native_cuda_0123456789abcdef").mkdir()  # another variant: untouched
    build.build_native()
    kept = sorted(p.name for p in root.glob("grootvl_native_*") if not p.name.startswith("grootvl_native_cuda"))
    assert len(kept) == build.KEEP_BUILDS and build.build_dir().name in kept
    assert f"grootvl_native_{build.KEEP_BUILDS + 2:016x}" in kept  # the most recently used stay
    assert (root / "grootvl_native_cuda_0123456789abcdef").is_dir()


def test_an_install_without_sources_says_so(tmp_path, monkeypatch):
    fake_file = tmp_path / "site-packages" / "grootvl_core" / "ops" / "build.py"
    fake_file.parent.mkdir(parents=True)
    monkeypatch.setattr(build, "__file__", str(fake_file))
    with pytest.raises(build.NativeSourcesMissing) as info:
        build.build_native()
    msg = str(info.value)
    assert "no C++ sources" in msg and "_csrc" in msg and "reinstall" in msg.lower()
    assert "compiler" not in msg


def test_cuda_architectures(monkeypatch):
    monkeypatch.delenv("TORCH_CUDA_ARCH_LIST", raising=False)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert build.cuda_arch_list() == build.DEFAULT_CUDA_ARCH_LIST  # compile-only: no card to ask
    archs = build.DEFAULT_CUDA_ARCH_LIST.split(";")
    assert archs[0] == "7.5" and archs[-1] == "9.0+PTX" and {"8.0", "8.6", "8.9"} <= set(archs)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    monkeypatch.setattr("torch.cuda.get_device_capability", lambda i: [(7, 5), (8, 6)][i])
    monkeypatch.setattr("torch.cuda.get_arch_list", lambda: ["sm_75", "sm_80", "sm_86", "sm_90"])
    assert build.cuda_arch_list() == "7.5;8.6+PTX"  # the visible cards
    monkeypatch.setattr("torch.cuda.get_device_capability", lambda i: (12, 0))
    assert build.cuda_arch_list() == "9.0+PTX"  # newer than torch knows: its newest, as PTX
    monkeypatch.setenv("TORCH_CUDA_ARCH_LIST", "8.0")
    assert build.cuda_arch_list() == "8.0"


def test_documented_and_ci_arch_lists_are_the_default():
    for path in (ROOT / ".ci" / "run", ROOT / "docs" / "gpu-space.md"):
        lists = re.findall(r"TORCH_CUDA_ARCH_LIST=\"?([0-9.;+PTX]+)", path.read_text())
        assert lists and set(lists) == {build.DEFAULT_CUDA_ARCH_LIST}, (path, lists)


def test_no_third_party_warning_on_a_cpu_only_machine(tmp_path):
    """Importing the package and running the op prints nothing, even with a CUDA toolkit around
    (torch's cpp_extension logs "No CUDA runtime is found" on import then)."""
    pytest.importorskip("ninja")
    try:
        build.build_native()  # built here first, so the child process has nothing to announce
    except Exception as exc:  # noqa: BLE001
        pytest.skip(f"native CPU op does not build here: {exc}")
    env = dict(os.environ, CUDA_HOME=str(tmp_path), CUDA_VISIBLE_DEVICES="", GROOTVL_OPS="native", PYTHONPATH=str(ROOT))
    code = (
        "import grootvl_core, grootvl_core.models, grootvl_core.zoo, torch\n"
        "from grootvl_core import ops\n"
        "u = torch.randn(1, 4, 3, 3)\n"
        "_, tree = ops.grid_spanning_tree(u)\n"
        "y = ops.tree_scan(torch.randn(1, 4, 9), torch.rand(1, 4, 9), tree)\n"
        "print(ops.backend(torch.device('cpu')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "cpu"
    assert out.stderr == ""
