"""``python -m grootvl_core`` (grootvl_core.cli): zoo, convert, classify; errors without tracebacks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from grootvl_core import cli, zoo
from grootvl_core.models.grootv import test_grootv as build_test_grootv

ROOT = Path(__file__).resolve().parent.parent

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_DISABLE_TELEMETRY": "1", "GROOTVL_OPS": "reference"}


def _run(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "grootvl_core", *args],
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=300,
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A test_grootv (1000 classes) training checkpoint in the published layout (model + model_ema)."""
    d = tmp_path_factory.mktemp("published")
    torch.manual_seed(7)
    model = build_test_grootv().eval()
    torch.manual_seed(8)
    ema = build_test_grootv().eval()
    path = d / "ckpt_epoch_best.pth"
    torch.save({"model": model.state_dict(), "model_ema": ema.state_dict(), "epoch": 3, "max_accuracy": 1.0}, path)
    return path, model, ema


@pytest.fixture
def images(tmp_path):
    """Odd image modes: RGB jpeg, grey, RGBA, 16-bit grey, palette."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (50, 70, 3), dtype=np.uint8)
    paths = []
    for name, im in [
        ("rgb.jpg", Image.fromarray(rgb)),
        ("grey.png", Image.fromarray(rgb[:, :, 0])),
        ("rgba.png", Image.fromarray(np.dstack([rgb, rgb[:, :, :1]]))),
        ("grey16.png", Image.fromarray(rgb[:, :, 1].astype(np.uint16) * 257)),
        ("palette.gif", Image.fromarray(rgb).convert("P")),
    ]:
        im.save(tmp_path / name)
        paths.append(str(tmp_path / name))
    return paths


@pytest.fixture
def tiny_entry(monkeypatch):
    entry = zoo.ZooEntry(
        name="tiny-cli",
        task="classification",
        arch="test_grootv",
        preprocess=zoo.Preprocess(input_size=64, resize=64),
    )
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    return entry


def test_zoo_table_subprocess(tmp_path):
    env = {**ENV, "GROOTVL_HOME": str(tmp_path), "HF_HUB_CACHE": str(tmp_path / "hf")}
    res = _run("zoo", env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split() == ["name", "task", "params", "FLOPs", "reported", "cached", "source"]
    row = next(line for line in lines if line.startswith("grootv-t "))
    assert (
        "30.0M" in row
        and "83.4" in row
        and " no " in row
        and "Google Drive" in row
        and "1OIiMBxk92WhPssRg0pv0U5y8ZBtHq2eQ" in row
    )
    from grootvl_core import zoo

    bundled = [n for n in zoo.list_models() if zoo.weights_source(n) == "bundled"]  # nothing else is cached here
    assert f"works offline now: {', '.join(bundled) or 'none'}" in res.stdout


def test_convert_then_classify(tmp_path, published, images, tiny_entry, capsys):
    path, model, ema = published
    out = tmp_path / "hubdir"
    assert cli.main(["convert", str(path), "--arch", "test_grootv", "--out", str(out), "--ema"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    capsys.readouterr()

    assert cli.main(["classify", *images, "--model", "tiny-cli", "--weights", str(out), "--topk", "3"]) == 0
    stdout = capsys.readouterr().out
    from timm.data import ImageNetInfo

    info = ImageNetInfo()
    names = {info.index_to_description(i) for i in range(1000)}
    blocks = stdout.strip().split("\n")
    assert len(blocks) == len(images) * 4
    for i, image in enumerate(images):
        assert blocks[4 * i] == image
        for rank, line in enumerate(blocks[4 * i + 1 : 4 * i + 4], 1):
            label = line.split("%  ", 1)[1].rsplit("  (class", 1)[0]
            assert line.strip().startswith(f"{rank}.") and label in names

    # The converted folder holds the EMA weights: the CLI's top-1 equals the EMA model's.
    from grootvl_core.classify import Classifier

    clf = Classifier(ema, tiny_entry.preprocess, "imagenet-1k")
    top = clf.predict(images[0], topk=1)[0][0]
    assert f"(class {top.index})" in blocks[1]


def test_classify_with_training_checkpoint_file(published, images, tiny_entry, capsys):
    path, _, _ = published
    assert cli.main(["classify", images[0], "--model", "tiny-cli", "--weights", str(path), "--topk", "2"]) == 0
    assert len(capsys.readouterr().out.strip().split("\n")) == 3


def test_user_errors_exit_1_without_traceback(tmp_path, published, tiny_entry, capsys):
    path, _, _ = published
    assert cli.main(["classify", "x.png", "--model", "no-such-model"]) == 1
    err = capsys.readouterr().err
    assert "unknown model 'no-such-model'" in err and "Traceback" not in err

    assert cli.main(["classify", str(tmp_path / "missing.png"), "--model", "tiny-cli", "--weights", str(path)]) == 1
    assert "cannot read image" in capsys.readouterr().err

    # Wrong architecture for the checkpoint: keys / shapes named.
    assert cli.main(["convert", str(path), "--arch", "grootv_tiny", "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert "does not fit GrootV" in err and "patch_embed.conv1.weight" in err

    assert cli.main(["convert", str(tmp_path / "nope.pth"), "--arch", "test_grootv", "--out", str(tmp_path / "o")]) == 1
    assert "checkpoint not found" in capsys.readouterr().err
    assert cli.main(["classify"]) == 2  # usage error from argparse


def test_subprocess_error_has_no_traceback(tmp_path):
    bad = tmp_path / "corrupt.pth"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    res = _run("convert", str(bad), "--arch", "test_grootv", "--out", str(tmp_path / "o"))
    assert res.returncode == 1
    assert "corrupt.pth" in res.stderr and "Traceback" not in res.stderr


def test_convert_push_to_hub_mocked(tmp_path, published, monkeypatch, capsys):
    import huggingface_hub

    calls = []

    class _Repo:
        repo_id = "me/tiny-cli"

    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "create_repo",
        lambda self, repo_id, **kw: calls.append(("create", repo_id)) or _Repo(),
    )
    monkeypatch.setattr(
        huggingface_hub.HfApi,
        "upload_folder",
        lambda self, *, repo_id, folder_path, **kw: (
            calls.append(("upload", repo_id, sorted(os.listdir(folder_path)))) or "url"
        ),
    )
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    path, _, _ = published
    rc = cli.main(
        [
            "convert",
            str(path),
            "--arch",
            "test_grootv",
            "--out",
            str(tmp_path / "o"),
            "--push-to-hub",
            "me/tiny-cli",
        ]
    )
    assert rc == 0, capsys.readouterr().err
    assert calls == [
        ("create", "me/tiny-cli"),
        ("upload", "me/tiny-cli", ["README.md", "config.json", "model.safetensors"]),
    ]
    assert "pushed to me/tiny-cli" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [
        ["classify", "assets/fashion/test0000-ankle-boot.png", "--model", "grootv-nano-fmnist", "--device", "gpu"],
        ["generate", "You will", "--model", "grootl-nano-fortunes", "--device", "cuda:x"],
        ["train", "lm", "--out", "never-written", "--device", "tpu"],
    ],
)
def test_a_bad_device_is_reported_as_the_flag(argv, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert cli.main(argv) == 2  # a usage error, before any model is loaded
    err = capsys.readouterr().err
    assert "argument --device" in err and "is not a device torch knows" in err
    assert "checkpoint" not in err.lower()
    assert not (ROOT / "never-written").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where torch sees no GPU")
def test_cuda_without_a_gpu_is_reported_as_the_flag(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert (
        cli.main(
            ["classify", "assets/fashion/test0000-ankle-boot.png", "--model", "grootv-nano-fmnist", "--device", "cuda"]
        )
        == 2
    )
    assert "argument --device: 'cuda': torch sees no CUDA GPU" in capsys.readouterr().err
