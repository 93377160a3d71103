"""The app's pieces without a server: launch options, the bounded model cache, image intake,
the tree view's click mapping."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from app import ModelCache, parse_args
from app.images import MAX_SIDE, load_user_image
from app.tree_panel import pixel_from_click, render_affinity, render_tree, tree_state
from grootvl_core import zoo


def test_launch_defaults_bind_loopback_only(monkeypatch):
    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    args = parse_args([])
    assert args.host == "127.0.0.1" and not args.share and args.concurrency >= 1 and args.max_models >= 1
    assert parse_args(["--host", "0.0.0.0", "--share", "--port", "9000"]).share
    with pytest.raises(SystemExit):
        parse_args(["--concurrency", "0"])


@pytest.fixture
def tiny_zoo(monkeypatch, tmp_path):
    """Three tiny classifiers in a checkpoints folder, counting how often each is loaded."""
    from grootvl_core.models import GrootV

    monkeypatch.setenv("GROOTVL_CHECKPOINTS", str(tmp_path))
    names = []
    for i in range(3):
        name = f"tiny-{i}"
        GrootV(channels=8, depths=[1, 1, 1, 1], num_classes=3, in_chans=1).save_pretrained(tmp_path / name)
        zoo.register(
            zoo.ZooEntry(
                name=name,
                task="classification",
                arch="test_grootv",
                bundled=name,
                labels=("a", "b", "c"),
                preprocess=zoo.Preprocess(input_size=32, resize=32, mean=(0.5,), std=(0.5,), grayscale=True),
            ),
            overwrite=True,
        )
        names.append(name)
    loads = []
    real = ModelCache._load

    def counting(self, entry):
        loads.append(entry.name)
        return real(self, entry)

    monkeypatch.setattr(ModelCache, "_load", counting)
    yield names, loads
    for name in names:
        zoo.MODELS.pop(name, None)


def test_model_cache_is_bounded_lru(tiny_zoo):
    names, loads = tiny_zoo
    cache = ModelCache(capacity=2, device="cpu")
    a = cache.get(names[0], "classification")
    assert cache.get(names[0], "classification") is a and loads == [names[0]]
    cache.get(names[1], "classification")
    cache.get(names[0], "classification")  # names[0] becomes the most recent
    cache.get(names[2], "classification")  # drops names[1], the least recently used
    assert cache.names() == [names[0], names[2]]
    with pytest.raises(ValueError, match="classification model; pick a segmentation model"):
        cache.get(names[0], "segmentation")
    with pytest.raises(ValueError):
        ModelCache(capacity=0)


def test_model_cache_loads_once_under_concurrency(tiny_zoo):
    names, loads = tiny_zoo
    cache = ModelCache(capacity=2, device="cpu")
    got = []
    threads = [threading.Thread(target=lambda: got.append(cache.get(names[0], "classification"))) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert loads == [names[0]] and all(g is got[0] for g in got)


def test_image_intake(tmp_path):
    with pytest.raises(ValueError, match="no image"):
        load_user_image(None)
    (tmp_path / "x.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not an image this app can read"):
        load_user_image(str(tmp_path / "x.png"))
    Image.new("RGB", (MAX_SIDE * 2, 10)).save(tmp_path / "wide.png")
    im, note = load_user_image(str(tmp_path / "wide.png"))
    assert im.size == (MAX_SIDE, 5) and "downscaled" in note
    im, note = load_user_image(np.zeros((8, 8, 4), np.uint8))  # transparent -> composited on white
    assert im.mode == "RGB" and np.asarray(im).min() == 255 and note == ""


def test_tree_view_click_maps_to_the_grid_and_switching_needs_no_forward():
    from grootvl_core.models import capture_trees
    from grootvl_core.models.grootv import test_grootv as tiny_grootv

    model = tiny_grootv(num_classes=3).eval()
    with torch.no_grad(), capture_trees(model) as records:
        model(torch.randn(1, 3, 64, 64))
    state = tree_state(records, np.zeros((64, 64, 3), np.uint8))
    assert (0, 0) in state["trees"] and (2, 1) in state["trees"]
    rec = state["trees"][(0, 0)]  # 16x16 grid, shown at 448x448
    assert pixel_from_click(state, 0, 0, (0, 0)) == (0, 0)
    assert pixel_from_click(state, 0, 0, (447, 447)) == (rec.height - 1, rec.width - 1)
    assert pixel_from_click(state, 0, 0, (28 * 3 + 1, 28 * 5 + 1)) == (5, 3)
    for stage, block in state["trees"]:
        assert render_tree(state, stage, block, "weight").shape == (448, 448, 3)
        assert render_affinity(state, stage, block, 0, 0).shape == (448, 448, 3)
    with pytest.raises(ValueError, match="outside"):
        render_affinity(state, 0, 0, 16, 0)
    with pytest.raises(ValueError, match="run the model first"):
        render_tree(None, 0, 0)


def test_model_labels_and_zoo_rows_name_the_real_weight_source(monkeypatch, tmp_path):
    """GrootV-T/S/B come from the authors' Google Drive files: the pickers and the Zoo tab say so, not 'Hub'."""
    from app.zoo_info import model_choices, zoo_rows

    monkeypatch.setenv("GROOTVL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.delenv("GROOTVL_HUB_ORG", raising=False)
    labels = dict((name, label) for label, name in model_choices("classification"))
    rows = {r[0]: r for r in zoo_rows()}
    for name in ("grootv-t", "grootv-s", "grootv-b"):
        for text in (labels[name], rows[name][5]):
            assert "Google Drive" in text and "Hugging Face Hub" not in text, text
    assert "state-spaces/mamba-130m-hf" in rows["mamba-130m"][5]
    assert "Google Drive" in dict((n, lab) for lab, n in model_choices("generation"))["grootl-130m"]
