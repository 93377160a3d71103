"""grootvl_core.image_io: the one rule that turns a user's image into 8-bit RGB, and every path that
reads user images (CLI / classifier, segmenter, drawings, the app) giving the same pixels."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch
from PIL import Image

from grootvl_core import image_io
from grootvl_core.classify import ImageTransform
from grootvl_core.image_io import to_rgb_array, to_rgb_image
from grootvl_core.segment import Segmenter
from grootvl_core.viz.image import as_rgb_uint8
from grootvl_core.zoo import Preprocess


def test_image_inputs_are_normalised(monkeypatch):
    """Input handling: numpy dtypes / channels, PIL modes, bad input named (moved from test_cli)."""
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (9, 11, 3), dtype=np.uint8)
    cases = [
        rgb,
        rgb[:, :, 0],
        rgb[:, :, :1],
        np.dstack([rgb, np.full((9, 11, 1), 255, np.uint8)]),
        rgb.astype(np.uint16) * 257,
        rgb.astype(np.float32) / 255.0,
        Image.fromarray(rgb).convert("CMYK"),
        Image.fromarray(rgb[:, :, 0].astype(np.uint16) * 257),  # I;16
    ]
    for case in cases:
        out = to_rgb_image(case)
        assert out.mode == "RGB" and out.size == (11, 9)
    # 16-bit and float inputs map to the same 8-bit values as the uint8 original
    assert np.array_equal(np.asarray(to_rgb_image(rgb.astype(np.uint16) * 257)), rgb)
    assert np.array_equal(np.asarray(to_rgb_image(rgb.astype(np.float64) / 255.0)), rgb)
    # transparent pixels are composited on white
    clear = np.zeros((2, 2, 4), np.uint8)
    assert np.asarray(to_rgb_image(clear)).min() == 255

    with pytest.raises(ValueError, match="shape"):
        to_rgb_image(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        to_rgb_image(np.full((4, 4), np.nan))
    with pytest.raises(ValueError, match="empty"):
        to_rgb_image(np.zeros((0, 4, 3), np.uint8))
    with pytest.raises(TypeError, match="PIL image"):
        to_rgb_image(42)
    monkeypatch.setattr(image_io, "MAX_PIXELS", 50)
    with pytest.raises(ValueError, match="too large"):
        to_rgb_image(rgb)


def test_sixteen_bit_uses_the_full_range_everywhere():
    """Bug fixed: the drawings shifted 16-bit by 8 bits (65280 -> 255) while the models divided by
    65535 (65280 -> 254); now both use round(v * 255 / 65535)."""
    values = np.array([[0, 257, 65280, 65535]], np.uint16)
    expected = np.array([0, 1, 254, 255], np.uint8)
    assert np.array_equal(to_rgb_array(values)[0, :, 0], expected)
    assert np.array_equal(as_rgb_uint8(values)[0, :, 0], expected)
    assert np.array_equal(as_rgb_uint8(Image.fromarray(values))[0, :, 0], expected)


def test_transparency_is_white_in_drawings_too():
    """Bug fixed: the drawings dropped alpha (a transparent pixel drawn black under its tree)
    while the models saw it on white."""
    rgba = np.zeros((2, 3, 4), np.uint8)
    rgba[0, 0] = (200, 10, 10, 255)
    assert (as_rgb_uint8(rgba)[1] == 255).all()
    assert tuple(as_rgb_uint8(rgba)[0, 0]) == (200, 10, 10)
    assert (as_rgb_uint8(Image.fromarray(rgba, "RGBA"))[1] == 255).all()


def test_drawings_stay_lenient_where_models_refuse():
    assert (as_rgb_uint8(np.full((2, 2), np.nan)) == 0).all()  # a drawing of a NaN map is black
    with pytest.raises(ValueError, match="NaN"):
        to_rgb_array(np.full((2, 2), np.nan))
    assert as_rgb_uint8(np.array([[-5, 300]], np.int32)).tolist() == [[[0] * 3, [255] * 3]]


def _files(tmp_path) -> dict:
    """Square 8x8 files (so every path, cropping or not, keeps all pixels) with the hard cases."""
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    files = {}
    sixteen = (rng.integers(0, 65536, (8, 8))).astype(np.uint16)
    sixteen[0, :4] = (0, 257, 65280, 65535)
    Image.fromarray(sixteen).save(files.setdefault("16-bit", tmp_path / "grey16.png"))
    rgba = np.dstack([rgb, rng.integers(0, 256, (8, 8, 1), dtype=np.uint8)])
    rgba[0, 0, 3] = 0
    Image.fromarray(rgba, "RGBA").save(files.setdefault("rgba", tmp_path / "rgba.png"))
    pal = Image.fromarray(rgb).quantize(8)
    pal.info["transparency"] = 0
    pal.save(files.setdefault("palette", tmp_path / "palette.png"), transparency=0)
    pal_opaque = Image.fromarray(rgb).quantize(5)
    pal_opaque.save(files.setdefault("palette-opaque", tmp_path / "palette_opaque.png"))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees to show upright
    Image.fromarray(rgb).save(files.setdefault("exif", tmp_path / "rotated.png"), exif=exif)
    Image.fromarray(rgb[:, :, 0]).save(files.setdefault("grey", tmp_path / "grey.png"))
    return files


def _classifier_pixels(path) -> np.ndarray:
    """What the classifier (and so ``python -m grootvl_core classify``) feeds the model, as pixels."""
    pre = Preprocess(input_size=8, resize=8, interpolation="nearest", mean=(0.0,) * 3, std=(1.0,) * 3)
    x = ImageTransform(pre)(str(path))
    return (x.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _segmenter_pixels(path) -> np.ndarray:
    pre = Preprocess(input_size=8, resize=8, interpolation="nearest", mean=(0.0,) * 3, std=(1.0,) * 3)
    model = types.SimpleNamespace(class_names=[], palette=[], eval=lambda: model)
    x, shown = Segmenter(model, pre).to_input(str(path))
    assert np.array_equal((x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), shown)
    return shown


def test_every_reader_of_user_images_gives_the_same_pixels(tmp_path):
    from app.images import load_user_image

    for case, path in _files(tmp_path).items():
        expected = to_rgb_array(str(path))
        with Image.open(path) as im:
            drawn = as_rgb_uint8(im)
        got = {
            "drawings": drawn,
            "app": np.asarray(load_user_image(str(path))[0]),
            "classifier / CLI": _classifier_pixels(path),
            "segmenter": _segmenter_pixels(path),
        }
        for where, pixels in got.items():
            assert np.array_equal(pixels, expected), f"{case}: {where} reads different pixels"
    # the rules themselves, on the files
    files = _files(tmp_path)
    assert to_rgb_array(str(files["16-bit"]))[0, :4, 0].tolist() == [0, 1, 254, 255]
    assert to_rgb_array(str(files["rgba"]))[0, 0].tolist() == [255, 255, 255]
    assert to_rgb_array(str(files["palette"])).shape == (8, 8, 3)
    with Image.open(files["exif"]) as im:
        raw = np.asarray(im.convert("RGB"))
    assert np.array_equal(to_rgb_array(str(files["exif"])), np.rot90(raw, k=-1))


def test_segmenter_input_is_unchanged_by_the_shared_transform():
    """The segmenter now resizes and normalises with the classifier's transforms (crop=False);
    the tensor is the one its own PIL code made (the bundled reference outputs depend on it)."""
    rng = np.random.default_rng(3)
    image = Image.fromarray(rng.integers(0, 256, (37, 53), dtype=np.uint8))
    pre = Preprocess(input_size=24, resize=24, interpolation="bilinear", mean=(0.2860,), std=(0.3530,), grayscale=True)
    model = types.SimpleNamespace(class_names=[], palette=[], eval=lambda: model)
    x, shown = Segmenter(model, pre).to_input(image)
    resized = image.resize((24, 24), Image.BILINEAR)
    arr = torch.from_numpy(np.asarray(resized, dtype=np.float32) / 255.0)[None]
    assert torch.equal(x[0], (arr - 0.2860) / 0.3530)
    assert np.array_equal(shown, np.asarray(resized.convert("RGB")))
