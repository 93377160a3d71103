"""Reading an image file without trusting it: the size comes from the header and is checked before
any pixel is decoded, then the file is decoded once, turned upright (EXIF orientation) and closed.

    image = read_image("photo.jpg")                          # PIL image, upright, fully loaded
    image = read_image(path, max_pixels=50_000_000, draft_side=2048)

A small file can decode into gigabytes (a 13,300 x 13,300 PNG of 700 KB is 700 MB of RGBA), so
``Image.open`` (which parses the header only, for every format Pillow reads) is followed by the
size check and only then by ``load``. JPEGs larger than ``draft_side`` are decoded at a reduced
scale directly (Pillow's draft mode), the rest at full size.
"""

from __future__ import annotations

import os
import warnings
from typing import IO, Union

from PIL import Image, ImageOps

__all__ = ["MAX_PIXELS", "ImageTooLarge", "UnreadableImageFile", "check_image_size", "read_image"]

MAX_PIXELS = 100_000_000  # default limit of read_image (width x height)

_DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, Image.DecompressionBombError)

Source = Union[str, "os.PathLike[str]", IO[bytes]]


class UnreadableImageFile(ValueError):
    """The file is missing, not an image Pillow can read, or truncated; ``reason`` says which,
    without the file's name (for callers that word their own message)."""

    def __init__(self, message: str, reason: str):
        super().__init__(message)
        self.reason = reason


class ImageTooLarge(ValueError):
    """The image's header announces more pixels than the caller allows."""


def check_image_size(width: int, height: int, max_pixels: int, name: str = "the image") -> None:
    """Raise :class:`ImageTooLarge` (or ``ValueError`` for an empty image) unless
    ``0 < width * height <= max_pixels``."""
    if width <= 0 or height <= 0:
        raise ValueError(f"{name} is empty ({width}x{height} pixels)")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"{name} is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is "
            f"{max_pixels / 1e6:g} megapixels: downscale it first"
        )


def _name(source: Source) -> str:
    if isinstance(source, (str, os.PathLike)):
        return repr(os.path.basename(os.fspath(source)))
    return "the image"


def read_image(source: Source, *, max_pixels: int = MAX_PIXELS, draft_side: int | None = None) -> Image.Image:
    """The decoded, upright image in ``source`` (a path or a binary file object).

    Args:
        source: path or file object of an image in any format Pillow reads.
        max_pixels: refuse images whose header announces more than this many pixels (width x height),
            before decoding any of them.
        draft_side: when set, a JPEG whose longer side exceeds 4x this is decoded directly at a
            reduced scale (still at least ``draft_side`` on its longer side).

    Returns:
        A loaded ``PIL.Image`` (first frame of multi-frame files), EXIF orientation applied; the
        file is closed.

    Raises:
        ImageTooLarge: more than ``max_pixels`` pixels (nothing decoded).
        UnreadableImageFile: not an image, truncated, or unsupported (both are ``ValueError``).
    """
    name = _name(source)
    try:
        with warnings.catch_warnings():  # Pillow warns above 89 M pixels; the check below decides
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(source)
    except Image.DecompressionBombError as exc:  # Pillow's own, looser, limit: also too large
        raise ImageTooLarge(f"{name}: {exc}") from None
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise UnreadableImageFile(f"cannot read image {name}: there is no such file", "no such file") from exc
    except _DECODE_ERRORS as exc:
        reason = f"{type(exc).__name__}: {exc}"
        raise UnreadableImageFile(f"{name} is not an image this program can read ({reason})", reason) from None
    with im:
        width, height = im.size
        check_image_size(width, height, max_pixels, name)
        try:
            if draft_side and max(width, height) > 4 * draft_side:
                im.draft(im.mode if im.mode in ("L", "RGB") else "RGB", (draft_side, draft_side))
            im.load()
            # exif_transpose returns a new, upright image (a copy when there is nothing to turn)
            return ImageOps.exif_transpose(im)
        except _DECODE_ERRORS as exc:
            reason = f"{type(exc).__name__}: {exc}; the file may be truncated or damaged"
            raise UnreadableImageFile(f"{name} could not be decoded ({reason})", reason) from None
