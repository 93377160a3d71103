"""Issue 20's app pieces without a server: streamed generation coalesced by time, the scans side by
side, the tree export, the receptive-field cache, the segment tab's flip option."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("gradio")

from app import ModelCache  # noqa: E402
from app.examples import scene_examples  # noqa: E402
from app.explorer.export import export_tree  # noqa: E402
from app.explorer.scans import render_scans  # noqa: E402
from app.outputs import text_file  # noqa: E402
from app.tabs import erf as erf_tab  # noqa: E402
from app.tabs.generate import generate  # noqa: E402
from app.tabs.segment import segment  # noqa: E402

LM = "grootl-nano-fortunes"


@pytest.fixture(scope="module")
def cache():
    return ModelCache(capacity=3, device="cpu")


def test_generation_updates_are_coalesced_by_time(cache):
    start = time.perf_counter()
    updates = list(generate(cache, "The meaning of life", LM, 200, 0.0, 0, 1.0, 0, update_interval=0.05))
    elapsed = time.perf_counter() - start
    count = int(updates[-1][1].split(" new tokens")[0])
    assert count > 50, "greedy decoding ended too early to say anything about streaming"
    # the first piece at once, then at most one per 50 ms, and the whole text last (before: one per token)
    assert len(updates) <= 2 + elapsed / 0.05 + 1
    assert len(updates) < count
    first = int(updates[0][1].split(" new tokens")[0])
    assert first == 1
    texts = [u[0] for u in updates]
    assert all(b.startswith(a) for a, b in zip(texts, texts[1:]))  # the text only grows
    whole = list(generate(cache, "The meaning of life", LM, 200, 0.0, 0, 1.0, 0, update_interval=0.0))
    assert whole[-1][0] == updates[-1][0] and whole[-1][1].startswith(f"{count} new tokens")


def test_generation_rate_is_the_model_decode_rate_not_the_consumers(cache):
    stream = generate(cache, "Love is", LM, 20, 0.0, 0, 1.0, 0, update_interval=0.0)
    start = time.perf_counter()
    for _text, stats, _ in stream:  # noqa: B007 - the last stats are read below
        time.sleep(0.05)  # a slow consumer (a busy server sending each update)
    wall = time.perf_counter() - start
    count = int(stats.split(" new tokens")[0])
    shown = float(stats.split(" tokens/s")[0].split("·")[-1])
    assert count >= 10 and "(decoding)" in stats
    assert shown > 3 * count / wall  # the decode rate, far above what this consumer let through


@pytest.fixture(scope="module")
def scene_state(cache):
    out = segment(cache, scene_examples()[0], "grootv-nano-scenes", 0.5)
    return out[4]


def test_scans_side_by_side_pictures_and_reading(scene_state):
    tree, raster, reading = render_scans(scene_state, 0, 0, 12, 12)
    assert tree.shape == raster.shape == (448, 448, 3)
    assert np.abs(tree.astype(int) - raster.astype(int)).sum() > 0
    assert "From pixel (12, 12)" in reading and "raster chain" in reading and "log10 affinity" in reading
    with pytest.raises(ValueError, match="outside"):
        render_scans(scene_state, 0, 0, 99, 0)
    with pytest.raises(ValueError, match="run the model first"):
        render_scans(None, 0, 0, 1, 1)


def test_export_writes_named_png_and_json(scene_state):
    png_path, json_path = export_tree(scene_state, 2, 1, "weight", prefix="segment")
    assert Path(png_path).name == "segment-stage3-block2.png" and Path(png_path).stat().st_size > 0
    assert Path(json_path).name == "segment-stage3-block2.json"
    data = json.loads(Path(json_path).read_text())
    assert data["grid"] == {"height": 6, "width": 6} and data["stage"] == 2 and data["block"] == 1
    assert len(data["edges"]) == 35 and len(data["transition_weights"]["per_edge"]) == 35
    again, _ = export_tree(scene_state, 2, 1, "weight", prefix="segment")
    assert again != png_path  # a fresh folder per export: concurrent downloads never share a file
    with pytest.raises(ValueError, match="no tree for stage 9"):
        export_tree(scene_state, 8, 0)


def test_download_names_are_checked():
    assert Path(text_file("{}", "a-b_c.json")).read_text() == "{}"
    for bad in ("../x.json", "x", ".hidden.json", "a/b.json"):
        with pytest.raises(ValueError):
            text_file("{}", bad)


def test_segment_flip_averages_and_keeps_the_images_own_trees(cache):
    plain = segment(cache, scene_examples()[1], "grootv-nano-scenes", 0.5)
    flipped = segment(cache, scene_examples()[1], "grootv-nano-scenes", 0.5, True)
    assert "two forward passes" in flipped[2] and "two forward passes" not in plain[2]
    # the flip averages the probabilities of the image and of its mirror image
    seg = cache.get("grootv-nano-scenes", "segmentation").predictor
    expected = seg.predict(scene_examples()[1], flip=True).mask
    assert np.array_equal(flipped[3]["mask"], expected)
    assert not seg.flip  # the shared segmenter is left as it was
    # the tree panel shows the trees of the image itself, not of its mirror image
    p, f = plain[4]["trees"], flipped[4]["trees"]
    assert p.keys() == f.keys()
    for key in p:
        assert np.array_equal(p[key].tree_edges.numpy(), f[key].tree_edges.numpy()), key


def test_erf_cache_computes_once_per_model_and_is_bounded(monkeypatch, cache):
    calls = []

    def fake(_cache, name):
        calls.append(name)
        return erf_tab.ErfResult(name, [], 1, 0.0, 28)

    monkeypatch.setattr(erf_tab, "compute_erf", fake)
    results = erf_tab.ErfCache(capacity=2)
    first, was_cached = results.get(cache, "a")
    assert not was_cached and results.get(cache, "a") == (first, True) and calls == ["a"]
    results.get(cache, "b"), results.get(cache, "c")
    assert results.get(cache, "a")[1] is False and calls == ["a", "b", "c", "a"]  # "a" was dropped
    with pytest.raises(ValueError, match="capacity"):
        erf_tab.ErfCache(capacity=0)


def test_erf_of_the_bundled_classifier(cache):
    result = erf_tab.compute_erf(cache, "grootv-nano-fmnist")
    assert result.images == 10 and [s.stage for s in result.stages] == [0, 1, 2, 3]
    pictures, summary = erf_tab.render_erf(result, cached=False)
    assert len(pictures) == 4 and pictures[0][0].shape == (224, 224, 3)
    assert "stage 1 (7x7 output)" in pictures[0][1] and "averaged over 10 example images" in summary
    assert "| 1 | 7x7 | " in summary and "50% of the contribution within" in summary
    with pytest.raises(ValueError, match="vision model"):
        erf_tab.compute_erf(cache, LM)


def test_erf_examples_follow_the_models_data():
    from app.examples import fashion_examples, photo_examples
    from grootvl_core import zoo

    assert erf_tab.erf_examples(zoo.get_entry("grootv-nano-fmnist")) == fashion_examples()
    assert erf_tab.erf_examples(zoo.get_entry("grootv-nano-scenes")) == scene_examples()
    assert erf_tab.erf_examples(zoo.get_entry("grootv-t")) == photo_examples()  # ImageNet: the photos
