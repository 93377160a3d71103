"""``scripts/make_space.py`` writes a complete Gradio Space, checked the way a Space builds it:
the front matter, ``requirements.txt`` installed from a folder holding only that file (offline:
``pip install --dry-run --no-index`` resolves it against what is installed here, and fails on a
line such as ``-e .``), ``packages.txt``, then the whole folder started as the Space starts it
(``python app.py``, offline, nothing on PYTHONPATH) and every API endpoint called."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from .helpers import ROOT, isolated_env, run

gradio = pytest.importorskip("gradio")
yaml = pytest.importorskip("yaml")
gradio_client = pytest.importorskip("gradio_client")

sys.path.insert(0, str(ROOT / "scripts"))
import make_space  # noqa: E402

sys.path.remove(str(ROOT / "scripts"))


def _front_matter(readme: Path) -> dict:
    text = readme.read_text()
    assert text.startswith("---\n")
    return yaml.safe_load(text.split("---\n")[1])


def test_requirements_with_local_paths_are_refused(tmp_path, monkeypatch):
    fake_root = tmp_path / "repo"
    fake_root.mkdir()
    (fake_root / "requirements.txt").write_text("torch>=2.4\n-e .[app]\n")
    monkeypatch.setattr(make_space, "ROOT", fake_root)
    with pytest.raises(ValueError, match="local files"):
        make_space.requirements()


def test_out_folder_is_not_overwritten(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="--force"):
        make_space.make_space(tmp_path)
    assert (tmp_path / "keep.txt").read_text() == "mine"


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_ready(proc: subprocess.Popen, url: str, limit_s: float) -> float:
    start = time.perf_counter()
    while time.perf_counter() - start < limit_s:
        if proc.poll() is not None:
            raise AssertionError(f"app.py exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "gradio_api/info", timeout=5) as r:
                if r.status == 200:
                    return time.perf_counter() - start
        except OSError:
            time.sleep(1)
    raise AssertionError(f"app.py was not serving after {limit_s} s")


def _call_every_endpoint(url: str) -> set[str]:
    from gradio_client import handle_file

    from app.examples import fashion_examples, photo_examples, scene_examples

    client = gradio_client.Client(url, verbose=False)
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    called = set()

    def call(api, *args):
        called.add(api)
        return client.predict(*args, api_name=api)

    labels, info = call("/classify", handle_file(str(fashion_examples()[0])), "grootv-nano-fmnist")
    assert labels["label"] == "Ankle boot", info
    call("/classify_trees", handle_file(str(fashion_examples()[0])), "grootv-nano-fmnist")
    assert call("/classify_tree", 0, 0, "depth") and call("/classify_affinity", 0, 0, 3, 3)
    tree, raster, reading = call("/classify_scans", 0, 0, 1, 2)
    assert tree and raster and "raster chain" in reading
    png_path, json_path = call("/classify_export", 0, 0, "depth")
    assert Path(png_path).is_file() and json.loads(Path(json_path).read_text())["grid"]["height"] == 7
    overlay, legend, seg_info, *_ = call(
        "/segment", handle_file(str(scene_examples()[0])), "grootv-nano-scenes", 0.5, False
    )
    assert overlay and "ms" in seg_info
    assert call("/segment_tree", 0, 0, "depth") and call("/segment_affinity", 0, 0, 1, 2)
    assert "raster chain" in call("/segment_scans", 0, 0, 1, 2)[2]
    assert all(Path(f).is_file() for f in call("/segment_export", 0, 0, "depth"))
    gallery, erf_info = call("/erf", "grootv-nano-fmnist")
    assert len(gallery) == 4 and "stage 1" in gallery[0]["caption"], erf_info
    text, stats, *_ = call("/generate", "The meaning of life", "grootl-nano-fortunes", 8, 0.0, 0, 1.0, 0)
    assert text and "tokens" in stats
    assert call("/token_tree", 0)
    picture, note = call("/pixel_tree", handle_file(str(photo_examples()[1])), 16, "l2", "weight")
    assert picture and "grid" in note
    assert call("/zoo")
    return names - called


@pytest.mark.slow
def test_space_folder_builds_and_serves_as_a_space_would(tmp_path):
    start = time.perf_counter()
    space = make_space.make_space(tmp_path / "space")
    made_s = time.perf_counter() - start
    meta = _front_matter(space / "README.md")
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["sdk_version"] == gradio.__version__
    assert (space / "app.py").is_file() and (space / "csrc" / "bindings.cpp").is_file()
    assert (space / "checkpoints" / "grootv-nano-fmnist" / "model.safetensors").is_file()

    # 1. the Space installs requirements.txt alone, before anything else is there
    alone = tmp_path / "build-step"
    alone.mkdir()
    shutil.copy(space / "requirements.txt", alone)
    env = isolated_env()
    report = run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--dry-run",
            "--no-index",
            "--report",
            "report.json",
            "-r",
            "requirements.txt",
        ],
        cwd=alone,
        env=env,
    )
    assert "ERROR" not in report.stderr
    assert json.loads((alone / "report.json").read_text())["install"] == []  # all of it is installed here
    lines = [ln for ln in (space / "requirements.txt").read_text().splitlines() if ln and not ln.startswith("#")]
    assert "torch>=2.4" in lines and not any(ln.startswith(("-e", ".")) for ln in lines)
    if shutil.which("dpkg"):
        for pkg in (space / "packages.txt").read_text().split():
            run(["dpkg", "-s", pkg], cwd=alone, env=env)

    # 2. the rest is copied in and app.py starts, offline, from the Space folder alone
    where = run(
        [sys.executable, "-c", "import grootvl_core, app; print(grootvl_core.__file__); print(app.__file__)"],
        cwd=space,
        env=env,
    ).stdout.split()
    assert all(Path(p).is_relative_to(space) for p in where), where
    port = _free_port()
    log = open(tmp_path / "app.log", "w")
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--port", str(port)],
        cwd=space,
        stdout=log,
        stderr=subprocess.STDOUT,
        env=isolated_env(GRADIO_SERVER_NAME="127.0.0.1"),
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        ready_s = _wait_ready(proc, url, limit_s=600)
        # 3. every endpoint answers
        uncalled = _call_every_endpoint(url)
        assert not uncalled, f"endpoints this test does not call yet: {uncalled}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
    text = (tmp_path / "app.log").read_text()
    assert "tree-scan op for cpu: cpu backend" in text, text[-3000:]
    print(f"Space folder written in {made_s:.1f} s; app.py serving after {ready_s:.1f} s")
