"""Every endpoint of the demo through gradio_client, against the app on a free local port."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from app.examples import fashion_examples, photo_examples, scene_examples

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import handle_file  # noqa: E402


@pytest.fixture(scope="module")
def client(demo_url):
    return gradio_client.Client(demo_url, verbose=False)


def _image(path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"))


def test_api_names(client):
    names = set(client.view_api(return_format="dict", print_info=False)["named_endpoints"])
    assert {
        "/classify",
        "/classify_trees",
        "/classify_affinity",
        "/classify_tree",
        "/segment",
        "/segment_affinity",
        "/segment_tree",
        "/generate",
        "/token_tree",
        "/pixel_tree",
        "/zoo",
        "/classify_scans",
        "/classify_export",
        "/segment_scans",
        "/segment_export",
        "/erf",
    } <= names


def test_classify_bundled_model_with_tree_and_affinity(client):
    labels, info = client.predict(handle_file(fashion_examples()[0]), "grootv-nano-fmnist", api_name="/classify")
    assert labels["label"] == "Ankle boot" and len(labels["confidences"]) == 5
    conf = [c["confidence"] for c in labels["confidences"]]
    assert conf == sorted(conf, reverse=True) and 0 < sum(conf) <= 1 + 1e-6
    assert "ms" in info
    # the trees: a second, unbatched step (the UI chains it after the labels)
    stage, block, row, col = client.predict(
        handle_file(fashion_examples()[0]), "grootv-nano-fmnist", api_name="/classify_trees"
    )
    assert stage["value"] == 0 and block["value"] == 0  # dropdown updates: choices filled
    assert stage["choices"][0][0] == "stage 1 · 7x7"
    assert (row, col) == (3, 3)  # the centre of the first stage's 7x7 grid
    # the pictures come from the recorded trees: no new forward pass
    tree_img = _image(client.predict(0, 0, "depth", api_name="/classify_tree"))
    heat_img = _image(client.predict(0, 0, row, col, api_name="/classify_affinity"))
    assert tree_img.shape == heat_img.shape and max(tree_img.shape[:2]) == 448
    other = _image(client.predict(0, 0, 0, 0, api_name="/classify_affinity"))  # another pixel
    assert other.shape == heat_img.shape and np.abs(other.astype(int) - heat_img.astype(int)).sum() > 0
    weight_view = _image(client.predict(0, 0, "weight", api_name="/classify_tree"))
    assert weight_view.shape == tree_img.shape and np.abs(weight_view.astype(int) - tree_img.astype(int)).sum() > 0


def test_classify_photo_rgba_and_16bit(client, tmp_path):
    rgba = np.zeros((40, 30, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 128
    Image.fromarray(rgba, "RGBA").save(tmp_path / "rgba.png")
    Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16)).save(tmp_path / "grey16.png")
    for path in (photo_examples()[0], tmp_path / "rgba.png", tmp_path / "grey16.png"):
        labels = client.predict(handle_file(str(path)), "grootv-nano-fmnist", api_name="/classify")[0]
        assert len(labels["confidences"]) == 5


def test_classify_huge_image_is_downscaled_with_a_note(client, tmp_path):
    Image.new("RGB", (5000, 300), (10, 200, 30)).save(tmp_path / "wide.png")
    info = client.predict(handle_file(str(tmp_path / "wide.png")), "grootv-nano-fmnist", api_name="/classify")[1]
    assert "downscaled" in info and "2048" in info


@pytest.mark.parametrize("content", [b"this is not an image", b""])
def test_classify_non_image_gets_a_clear_message(client, tmp_path, content):
    # /classify is batched: a request's problem is its own answer (no labels, the message), never an
    # error that would fail the other requests of its batch; the trees step raises it
    path = tmp_path / "notes.png"
    path.write_bytes(content)
    labels, info = client.predict(handle_file(str(path)), "grootv-nano-fmnist", api_name="/classify")
    assert labels is None or not labels.get("confidences")
    assert "not an image" in info and "Cannot classify" in info
    with pytest.raises(Exception, match="not an image"):
        client.predict(handle_file(str(path)), "grootv-nano-fmnist", api_name="/classify_trees")


def test_classify_without_image_or_with_wrong_model(client):
    assert "no image" in client.predict(None, "grootv-nano-fmnist", api_name="/classify")[1]
    info = client.predict(handle_file(fashion_examples()[0]), "grootv-nano-scenes", api_name="/classify")[1]
    assert "segmentation model" in info
    assert (
        "unknown"
        in client.predict(handle_file(fashion_examples()[0]), "no-such-model", api_name="/classify")[1].lower()
    )
    with pytest.raises(Exception, match="no image"):
        client.predict(None, "grootv-nano-fmnist", api_name="/classify_trees")


def test_published_model_offline_says_so(client):
    info = client.predict(handle_file(photo_examples()[0]), "grootv-t", api_name="/classify")[1]
    assert "not available offline" in info


def test_classify_batch_answers_each_request_alone(demo_url, tmp_path):
    """Concurrent requests share batches; the bad ones get their message, the good ones their labels."""
    import concurrent.futures

    bad = tmp_path / "bad.png"
    bad.write_bytes(b"nope")
    jobs = [(fashion_examples()[i % 10], "grootv-nano-fmnist") for i in range(10)]
    jobs += [(str(bad), "grootv-nano-fmnist"), (fashion_examples()[0], "grootv-nano-scenes")]
    clients = [gradio_client.Client(demo_url, verbose=False) for _ in range(4)]
    alone = {
        img: clients[0].predict(handle_file(img), "grootv-nano-fmnist", api_name="/classify")[0] for img, _ in jobs[:10]
    }
    with concurrent.futures.ThreadPoolExecutor(len(clients)) as pool:
        futures = [
            pool.submit(clients[k % len(clients)].predict, handle_file(img), name, api_name="/classify")
            for k, (img, name) in enumerate(jobs)
        ]
        answers = [f.result(timeout=120) for f in futures]
    for (img, name), (labels, info) in zip(jobs, answers):
        if img == str(bad) or name != "grootv-nano-fmnist":
            assert "Cannot classify" in info and not (labels or {}).get("confidences")
        else:  # the answer it gets on its own, batched or not
            assert labels["label"] == alone[img]["label"], img
            got = [(c["label"], c["confidence"]) for c in labels["confidences"]]
            want = [(c["label"], c["confidence"]) for c in alone[img]["confidences"]]
            assert [g[0] for g in got] == [w[0] for w in want]
            assert np.allclose([g[1] for g in got], [w[1] for w in want], atol=1e-4)
            assert "ms (forward pass" in info


def test_affinity_outside_the_grid_is_an_error(client):
    client.predict(handle_file(fashion_examples()[1]), "grootv-nano-fmnist", api_name="/classify_trees")
    with pytest.raises(Exception, match="outside"):
        client.predict(0, 0, 99, 0, api_name="/classify_affinity")


def test_segment_mask_legend_tree(client):
    mask, legend, info, stage, block, row, col = client.predict(
        handle_file(scene_examples()[0]), "grootv-nano-scenes", 0.5, api_name="/segment"
    )
    assert _image(mask).shape[:2] == (448, 448)
    assert "legend-swatch" in legend and "%" in legend
    assert stage["choices"][0][0] == "stage 1 · 24x24" and (row, col) == (12, 12)
    assert _image(client.predict(0, 0, "depth", api_name="/segment_tree")).shape[:2] == (448, 448)
    assert _image(client.predict(0, 0, 1, 2, api_name="/segment_affinity")).shape[:2] == (448, 448)


def test_generate_streams_text_and_token_tree(client):
    job = client.submit("The meaning of life", "grootl-nano-fortunes", 12, 0.0, 0, 1.0, 0, api_name="/generate")
    outputs = list(job)
    assert outputs, "no streamed updates"
    text, stats, layer_update, tree0, reach0 = job.result()
    assert layer_update["maximum"] == 3  # 4 layers
    assert _image(tree0).ndim == 3 and len(reach0) == len("The meaning of life")
    assert isinstance(text, str) and "tokens/s" in stats
    assert len(outputs) >= 2  # streamed: the first token at once, then at most ~20 updates a second
    # the prompt's token tree, per layer, from the same prompt pass
    for layer in (0, 3):
        tree, reach = client.predict(layer, api_name="/token_tree")
        assert _image(tree).ndim == 3
        assert len(reach) == len("The meaning of life")  # byte tokens, one highlight each
        scores = [r["class_or_confidence"] for r in reach]
        assert max(scores) == pytest.approx(1.0) and min(scores) >= 0
    # greedy decoding is deterministic
    again = client.predict("The meaning of life", "grootl-nano-fortunes", 12, 0.0, 0, 1.0, 0, api_name="/generate")
    assert again[0] == text


@pytest.mark.parametrize(
    "prompt, match", [("", "empty"), ("   ", "empty"), ("x" * 1100, "limit is 1,?024"), ("é" * 1000, "limit is 1,?024")]
)
def test_generate_bad_prompts(client, prompt, match):
    with pytest.raises(Exception, match=match):
        client.predict(prompt, "grootl-nano-fortunes", 8, 0.7, 40, 0.95, 0, api_name="/generate")


def test_pixel_tree_any_image_no_model(client):
    tree, info = client.predict(handle_file(photo_examples()[1]), 16, "l2", "weight", api_name="/pixel_tree")
    assert max(_image(tree).shape[:2]) == 448
    assert "vertices" in info


def test_zoo_lists_every_model_and_offline_state(client):
    from grootvl_core import zoo

    table = client.predict(api_name="/zoo")
    rows = table["data"]
    assert [r[0] for r in rows] == zoo.list_models()
    offline = {r[0]: r[4] for r in rows}
    assert offline["grootv-nano-fmnist"] == "yes" and offline["grootv-t"] == "no"


@pytest.mark.parametrize(
    "tab, image, model, grid",
    [
        ("classify", fashion_examples()[2], "grootv-nano-fmnist", (7, 7)),
        ("segment", scene_examples()[0], "grootv-nano-scenes", (24, 24)),
    ],
)
def test_scans_side_by_side_and_tree_export(client, tab, image, model, grid):
    import json
    from pathlib import Path

    if tab == "classify":
        client.predict(handle_file(image), model, api_name="/classify_trees")
    else:
        client.predict(handle_file(image), model, 0.5, api_name="/segment")
    tree, raster, reading = client.predict(0, 0, 1, 2, api_name=f"/{tab}_scans")
    assert _image(tree).shape == _image(raster).shape and max(_image(tree).shape[:2]) == 448
    assert "From pixel (1, 2)" in reading and "raster chain" in reading
    png_path, json_path = client.predict(0, 0, "depth", api_name=f"/{tab}_export")
    assert Path(png_path).name == f"{tab}-stage1-block1.png" and _image(png_path).ndim == 3
    data = json.loads(Path(json_path).read_text())
    assert (data["grid"]["height"], data["grid"]["width"]) == grid
    assert len(data["edges"]) == grid[0] * grid[1] - 1 == len(data["transition_weights"]["per_edge"])
    with pytest.raises(Exception, match="outside"):
        client.predict(0, 0, 99, 0, api_name=f"/{tab}_scans")


def test_segment_with_flip(client):
    mask, legend, info, *_ = client.predict(
        handle_file(scene_examples()[0]), "grootv-nano-scenes", 0.5, True, api_name="/segment"
    )
    assert _image(mask).shape[:2] == (448, 448) and "two forward passes" in info


@pytest.mark.parametrize("model, stages", [("grootv-nano-fmnist", 4), ("grootv-nano-scenes", 4)])
def test_effective_receptive_field(client, model, stages):
    gallery, info = client.predict(model, api_name="/erf")
    assert len(gallery) == stages
    assert _image(gallery[0]["image"]).shape == (224, 224, 3) and "stage 1" in gallery[0]["caption"]
    assert "computed in" in info or "from the cache" in info
    assert "from the cache" in client.predict(model, api_name="/erf")[1]


def test_effective_receptive_field_of_a_published_model_offline_says_so(client):
    with pytest.raises(Exception, match="not available offline"):
        client.predict("grootv-t", api_name="/erf")


def test_effective_receptive_field_needs_a_vision_model(client):
    # not among the tab's choices (Gradio says so), and never a traceback
    with pytest.raises(Exception, match="vision model|not in the list of choices"):
        client.predict("grootl-nano-fortunes", api_name="/erf")
