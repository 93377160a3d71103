"""What a careless or hostile visitor can send the demo: each bad request fails alone, with its
message, before any huge image is decoded; uploads are bounded (against the app on a free port)."""

from __future__ import annotations

import asyncio
import math
import sys
import threading
from pathlib import Path

import gradio as gr
import pytest
from PIL import Image

from app import ModelCache, build_demo
from app.examples import fashion_examples, photo_examples
from app.images import UnreadableImage
from app.limits import MAX_UPLOAD_MB

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from gradio_rest import GradioError, RestClient, file_data  # noqa: E402

from tests.test_image_file import png_bomb  # noqa: E402


def _classify(url: str, image, model: str = "grootv-nano-fmnist"):
    with RestClient(url, timeout=120) as c:
        if isinstance(image, str) and Path(image).is_file():
            image = c.upload(image)
        return c.predict("/classify", [image, model])


def test_bad_payloads_in_a_batch_fail_only_themselves(demo_url, tmp_path):
    """Bad payloads sent first, so they lead batches: a path never uploaded, an integer, a file that
    is not an image, a bomb; the good requests of the same batches all get their labels."""
    (tmp_path / "notes.png").write_bytes(b"not an image")
    bomb = tmp_path / "bomb.png"
    png_bomb(bomb, 13_300)
    bad = [file_data("/etc/hostname"), 12345, {"path": 5}, str(tmp_path / "notes.png"), str(bomb)]
    good = [fashion_examples()[i % 10] for i in range(12)]
    answers: dict[int, tuple] = {}

    def send(i, image):
        try:
            answers[i] = ("ok", _classify(demo_url, image))
        except Exception as exc:  # noqa: BLE001 - recorded and judged below
            answers[i] = ("error", exc)

    threads = [threading.Thread(target=send, args=(i, img)) for i, img in enumerate(bad + good)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    for i in range(len(bad)):
        kind, value = answers[i]
        assert kind == "ok", f"bad payload {i} raised instead of answering alone: {value}"
        labels, note = value
        assert not (labels or {}).get("confidences") and "Cannot classify" in note, note
    assert "uploaded" in answers[0][1][1] and "megapixels" in answers[4][1][1]
    assert "not an image" in answers[3][1][1]
    for i in range(len(bad), len(bad) + len(good)):
        kind, value = answers[i]
        assert kind == "ok" and value[0]["confidences"], (i, value)


@pytest.mark.parametrize(
    "api, data",
    [
        ("/pixel_tree", [12345, 32, "l2", "depth"]),
        ("/pixel_tree", [file_data("/etc/hostname"), 32, "l2", "depth"]),
        ("/segment", [{"path": 5}, "grootv-nano-scenes", 0.5, False]),
    ],
)
def test_unbatched_bad_payloads_get_their_message(demo_url, api, data):
    with RestClient(demo_url, timeout=60) as c, pytest.raises(GradioError) as err:
        c.predict(api, data)
    message = str(err.value)
    assert "the app raised an error" not in message and ("uploaded" in message or "wrong form" in message), message


def test_image_bombs_are_refused_from_the_header(demo_url, tmp_path):
    bomb = tmp_path / "bomb.png"
    png_bomb(bomb, 13_300)
    with RestClient(demo_url, timeout=60) as c:
        image = c.upload(bomb)
        for api, data in [
            ("/pixel_tree", [image, 32, "l2", "depth"]),
            ("/segment", [image, "grootv-nano-scenes", 0.5, False]),
        ]:
            with pytest.raises(GradioError, match="13300x13300 = 176.9 megapixels; the limit is 50 megapixels"):
                c.predict(api, data)
        import base64  # the same file inline: Gradio would decode a data: URL itself

        url = "data:image/png;base64," + base64.b64encode(bomb.read_bytes()).decode()
        with pytest.raises(GradioError, match="megapixels"):
            c.predict("/pixel_tree", [{"url": url, "meta": {"_type": "gradio.FileData"}}, 32, "l2", "depth"])
        small = "data:image/png;base64," + base64.b64encode(Path(fashion_examples()[0]).read_bytes()).decode()
        picture, note = c.predict(
            "/pixel_tree", [{"url": small, "meta": {"_type": "gradio.FileData"}}, 16, "l2", "depth"]
        )
        assert picture and "grid" in note


def test_uploads_above_the_limit_are_refused(demo_url, tmp_path):
    big = tmp_path / "big.bin"
    with open(big, "wb") as f:
        f.truncate((MAX_UPLOAD_MB + 1) * 1024 * 1024)
    with RestClient(demo_url, timeout=60) as c, pytest.raises(GradioError, match="413"):
        c.upload(big)


@pytest.mark.parametrize(
    "args, match",
    [
        ((8, math.nan, 40, 0.95, 0), "Temperature must be a finite number"),
        ((8, 0.7, 40, math.nan, 0), "Top-p must be a finite number"),
        ((8, 0.7, 40, 0.95, 2**70), r"Seed must lie in \[0, 18446744073709551615\]"),
        ((8, 0.7, 40, 0.95, math.nan), "NaN"),
        ((math.inf, 0.7, 40, 0.95, 0), "greater than maximum value 512"),  # Gradio's own slider check
    ],
)
def test_generate_refuses_bad_sampling_values_by_name(demo_url, args, match):
    with RestClient(demo_url, timeout=60) as c, pytest.raises(GradioError, match=match):
        c.predict("/generate", ["A fortune:", "grootl-nano-fortunes", *args])


def test_the_largest_seed_and_nucleus_sampling_still_work(demo_url):
    with RestClient(demo_url, timeout=60) as c:
        _, stats, *_ = c.predict("/generate", ["A fortune:", "grootl-nano-fortunes", 4, 0.7, 40, 0.5, 2**64 - 1])
        assert "4 new tokens" in stats


# -- the same guard without a server: a session whose input Gradio has re-created -------------------


def _fn(demo, api_name):
    return next(fn for fn in demo.fns.values() if fn.api_name == api_name)


def test_a_recreated_session_component_keeps_the_messages(tmp_path):
    """After a gr.Examples click Gradio keeps a re-created copy of the input for that session (no
    per-instance overrides); a non-image must still get its message, and in the batched /classify
    event only that request's marker."""
    from gradio.state_holder import SessionState

    demo = build_demo(ModelCache(1, "cpu"))
    (tmp_path / "notes.png").write_bytes(b"not an image")
    payload = {"path": str(tmp_path / "notes.png"), "orig_name": "notes.png", "meta": {"_type": "gradio.FileData"}}
    for api_name in ("classify", "pixel_tree"):
        fn = _fn(demo, api_name)
        image = fn.inputs[0]
        state = SessionState(demo)
        state[image._id] = image.__class__(**{**image.constructor_args, "render": False})  # what an update does
        inputs = [payload] + [b.value for b in fn.inputs[1:]]
        if fn.batch:
            out = asyncio.run(demo.preprocess_data(fn, inputs, state, explicit_call=True))
            assert isinstance(out[0], UnreadableImage) and "'notes.png' is not an image" in out[0]
        else:
            with pytest.raises(gr.Error, match="'notes.png' is not an image this app can read"):
                asyncio.run(demo.preprocess_data(fn, inputs, state, explicit_call=True))


def test_limits_are_stated_and_set():
    from app.limits import CACHE_MAX_AGE_S, CACHE_SWEEP_S, LIMITS_TEXT, STATE_TTL_S, launch_kwargs

    demo = build_demo(ModelCache(1, "cpu"))
    assert demo.delete_cache == (CACHE_SWEEP_S, CACHE_MAX_AGE_S)
    assert "50 megapixels" in LIMITS_TEXT and f"{MAX_UPLOAD_MB} MB" in LIMITS_TEXT
    assert any(LIMITS_TEXT in str(getattr(b, "value", "")) for b in demo.blocks.values())
    states = [b for b in demo.blocks.values() if isinstance(b, gr.State)]
    assert states and all(s.time_to_live == STATE_TTL_S for s in states)
    assert launch_kwargs()["max_file_size"] == MAX_UPLOAD_MB * 1024 * 1024
    prompt = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "generate-prompt")
    from app.tabs.generate import MAX_PROMPT_TOKENS

    assert prompt.max_length == MAX_PROMPT_TOKENS  # the byte model: one token per byte


def test_photos_are_read_upright(tmp_path):
    from app.images import load_user_image

    im = Image.open(photo_examples()[0]).convert("RGB").resize((60, 40))
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 270 CW to view
    im.save(tmp_path / "phone.jpg", exif=exif)
    assert load_user_image(str(tmp_path / "phone.jpg"))[0].size == (40, 60)
