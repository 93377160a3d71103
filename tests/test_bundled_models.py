"""The models shipped in checkpoints/ (issue 5): they load through the zoo, fit the size budget,
report the numbers in their own metrics.json, and reproduce the outputs stored beside them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from grootvl_core import zoo
from grootvl_core.data import fashion_mnist

BUNDLED = ["grootv-nano-fmnist", "grootv-nano-scenes", "grootl-nano-fortunes"]
# zoo metric name -> (metrics.json key, scale)
METRIC_KEYS = {
    "fashion-mnist test top-1 %": ("top1", 100.0),
    "scenes test mIoU %": ("mIoU", 100.0),
    "fortunes validation bits/byte": ("bits_per_byte", 1.0),
}
ROOT = Path(__file__).resolve().parent.parent / "checkpoints"
ASSETS = Path(__file__).resolve().parent.parent / "assets"
needs_fmnist = pytest.mark.skipif(
    not (fashion_mnist.default_root() / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed (scripts/setup.sh)",
)


@pytest.fixture(autouse=True)
def _repo_checkpoints(monkeypatch):
    monkeypatch.delenv("GROOTVL_CHECKPOINTS", raising=False)  # the shipped folder, not a test override


def _refs(name: str) -> dict:
    return json.loads((ROOT / name / "reference_outputs.json").read_text())


@pytest.mark.parametrize("name", BUNDLED)
def test_shipped_folder_is_complete_small_and_offline(name):
    folder = ROOT / name
    for f in ("config.json", "model.safetensors", "README.md", "metrics.json", "reference_outputs.json"):
        assert (folder / f).is_file(), f"{name}/{f} missing"
    assert (folder / "model.safetensors").stat().st_size <= 20 * 2**20
    assert zoo.bundled_dir(name) == folder
    assert zoo.weights_source(name) == "bundled" and name in zoo.available_offline()


@pytest.mark.parametrize("name", BUNDLED)
def test_zoo_reports_the_numbers_of_the_folder(name):
    entry = zoo.get_entry(name)
    card = json.loads((ROOT / name / "metrics.json").read_text())
    model = zoo.load_model(name)
    assert entry.params == card["parameters"] == sum(p.numel() for p in model.parameters())
    assert entry.metrics, f"{name}: the zoo reports no metric"
    for key, value in entry.metrics.items():
        source, scale = METRIC_KEYS[key]
        assert round(card["metrics"][source] * scale, 2 if scale == 100 else 4) == value, key


@pytest.mark.parametrize("name", BUNDLED)
def test_zoo_architecture_builds_the_shipped_model(name):
    """``zoo.build_model(entry)`` (the entry's factory and kwargs) has exactly the shipped weights'
    names and shapes, so the entry describes the model it ships (e.g. a bundle grown deeper)."""
    built = {k: v.shape for k, v in zoo.build_model(name).state_dict().items()}
    shipped = {k: v.shape for k, v in zoo.load_model(name).state_dict().items()}
    assert built == shipped


@needs_fmnist
def test_classifier_reproduces_its_reference_predictions():
    from grootvl_core.classify import Classifier
    from grootvl_core.train.fashion_mnist import preprocess_batch

    refs = _refs("grootv-nano-fmnist")
    images, _ = fashion_mnist.load_fashion_mnist("test")
    model = zoo.load_model("grootv-nano-fmnist")
    idx = refs["inputs"]["indices"]
    with torch.no_grad():
        probs = model(preprocess_batch(torch.from_numpy(np.array(images[idx])), 28)).softmax(-1)
    assert probs.argmax(-1).tolist() == refs["predicted"]
    np.testing.assert_allclose(probs.max(-1).values.numpy(), refs["top_probability"], atol=2e-4)
    # the zoo's preprocessing (the app's and the CLI's path) is the training preprocessing
    clf = Classifier.from_zoo("grootv-nano-fmnist")
    for path in sorted((ASSETS / "fashion").glob("test*.png")):
        i = int(path.name[4:8])
        expected = model(preprocess_batch(torch.from_numpy(np.array(images[i : i + 1])), 28)).argmax(-1).item()
        assert clf.predict(str(path), topk=1)[0][0].index == expected, path.name


@needs_fmnist
def test_segmenter_reproduces_its_reference_masks():
    from grootvl_core.data.scenes import FashionScenes
    from grootvl_core.segment import Segmenter
    from grootvl_core.train.run import rows_to_mask
    from grootvl_core.train.scenes import normalise

    refs = _refs("grootv-nano-scenes")
    inp = refs["inputs"]
    scenes = FashionScenes("test", len(inp["indices"]), size=inp["size"], seed=inp["seed"])
    model = zoo.load_model("grootv-nano-scenes")
    x = normalise(torch.stack([scenes[i][0] for i in inp["indices"]]))
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    for got, rows in zip(pred, refs["predicted_masks"]):
        # exact up to pixels whose two best logits tie within float rounding (another thread count
        # or SIMD path may order them differently): at most 0.1% of the pixels
        differ = int((got != rows_to_mask(rows)).sum())
        assert differ <= got.size // 1000, f"{differ} of {got.size} pixels differ from the reference mask"
    # the zoo's Segmenter on the example PNG (the same scene, stored as 8-bit) agrees almost everywhere
    seg = Segmenter.from_zoo("grootv-nano-scenes").predict(str(ASSETS / "scenes" / "scene0.png"))
    assert (seg.mask == rows_to_mask(refs["predicted_masks"][0])).mean() > 0.98


def test_lm_reproduces_its_greedy_continuations():
    from grootvl_core.generation import generate

    refs = _refs("grootl-nano-fortunes")
    model = zoo.load_model("grootl-nano-fortunes")
    tok = zoo.load_entry_tokenizer("grootl-nano-fortunes")
    for item in refs["continuations"]:
        ids = torch.tensor([tok.encode(item["prompt"])])
        new = generate(model, ids, max_new_tokens=refs["max_new_tokens"], temperature=0.0)[0, ids.shape[1] :]
        assert new.tolist() == item["greedy_ids"], item["prompt"]
        assert tok.decode(new.tolist()) == item["greedy_text"]


@needs_fmnist
def test_segmenter_flip_averages_the_mirror_image():
    """Flip test-time augmentation: the mean of the probabilities of the image and of its mirror
    (mirrored back); the bundled segmenter's Segmenter(flip=True) uses it, and evaluate_segmenter
    reports it (the model card's "with flip" figures)."""
    from grootvl_core.data.scenes import FashionScenes
    from grootvl_core.segment import Segmenter, segment_probabilities
    from grootvl_core.train.scenes import evaluate_segmenter, normalise

    model = zoo.load_model("grootv-nano-scenes")
    scenes = FashionScenes("test", 8, seed=1234)
    x = normalise(torch.stack([scenes[i][0] for i in range(4)]))
    with torch.no_grad():
        plain = segment_probabilities(model, x)
        mirrored = model(x.flip(-1)).softmax(1).flip(-1)
        both = segment_probabilities(model, x, flip=True)
    torch.testing.assert_close(plain, model(x).softmax(1).detach())
    torch.testing.assert_close(both, 0.5 * (plain + mirrored.detach()))
    assert not torch.equal(both, plain)
    seg = Segmenter.from_zoo("grootv-nano-scenes", flip=True).predict(str(ASSETS / "scenes" / "scene0.png"))
    assert seg.mask.shape == (96, 96) and 0 < seg.probabilities.min() <= seg.probabilities.max() <= 1
    with torch.no_grad():
        m_plain, m_flip = evaluate_segmenter(model, scenes, 8), evaluate_segmenter(model, scenes, 8, flip=True)
    assert 0 < m_plain["mIoU"] <= 1 and 0 < m_flip["mIoU"] <= 1 and m_plain["mIoU"] != m_flip["mIoU"]
