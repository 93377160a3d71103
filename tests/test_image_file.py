"""grootvl_core.image_file: the size is refused from the header (nothing decoded), EXIF orientation
is applied, unreadable files get a clear error; to_rgb_image refuses NaN float images."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image, ImageFile

from grootvl_core.image_file import ImageTooLarge, UnreadableImageFile, read_image
from grootvl_core.image_io import to_rgb_image

FORMATS = ["png", "jpeg", "webp", "bmp", "gif", "tiff"]


def png_bomb(path, side: int) -> None:
    """A ``side`` x ``side`` RGBA PNG of zeros, written row by row (a few KB per 1,000 rows)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * side)
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


@pytest.fixture
def no_decoding(monkeypatch):
    """Any pixel decoding fails the test."""

    def load(self):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", load)


@pytest.mark.parametrize("fmt", FORMATS)
def test_too_many_pixels_is_refused_from_the_header_in_every_format(tmp_path, fmt, no_decoding):
    path = tmp_path / f"big.{fmt}"
    Image.new("RGB", (300, 200), (10, 20, 30)).save(path, format=fmt.upper())
    with pytest.raises(ImageTooLarge, match=r"300x200 = 0\.1 megapixels; the limit is 0\.05 megapixels"):
        read_image(path, max_pixels=50_000)


def test_a_small_png_bomb_is_refused_before_decoding(tmp_path, no_decoding):
    path = tmp_path / "bomb.png"
    png_bomb(path, 13_300)  # 708 MB of RGBA pixels
    assert path.stat().st_size < 1_000_000
    with pytest.raises(ImageTooLarge, match="13300x13300"):
        read_image(path)  # the default limit, 100 megapixels
    with pytest.raises(ValueError, match="13300x13300"):
        to_rgb_image(str(path))


def test_reads_every_format_and_closes_the_file(tmp_path):
    for fmt in FORMATS:
        path = tmp_path / f"ok.{fmt}"
        Image.new("RGB", (30, 20), (200, 10, 10)).save(path, format=fmt.upper())
        im = read_image(path)
        assert im.size == (30, 20)
        path.unlink()  # nothing holds it open


def test_exif_orientation_is_applied(tmp_path):
    im = Image.new("RGB", (40, 20), (0, 0, 0))
    im.paste((255, 255, 255), (0, 0, 10, 20))  # white on the left
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view" (how phones store portrait photos)
    path = tmp_path / "phone.jpg"
    im.save(path, exif=exif, quality=95)
    upright = read_image(path)
    assert upright.size == (20, 40)
    arr = np.asarray(upright.convert("L"))
    assert arr[:10].mean() > 200 and arr[-10:].mean() < 50  # the white left side is now on top
    assert to_rgb_image(str(path)).size == (20, 40)


def test_unreadable_files(tmp_path):
    (tmp_path / "notes.png").write_bytes(b"not an image")
    with pytest.raises(UnreadableImageFile, match="not an image"):
        read_image(tmp_path / "notes.png")
    Image.new("RGB", (64, 64)).save(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableImageFile):
        read_image(tmp_path / "cut.png")


def test_nan_float_images_are_refused(tmp_path):
    arr = np.full((8, 8), np.nan, np.float32)
    arr[0, 0] = 0.5
    Image.fromarray(arr, "F").save(tmp_path / "nan.tif")
    with pytest.raises(ValueError, match="63 NaN or infinite pixel values"):
        to_rgb_image(str(tmp_path / "nan.tif"))
    finite = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(finite, "F").save(tmp_path / "ok.tif")
    assert to_rgb_image(str(tmp_path / "ok.tif")).size == (8, 8)
