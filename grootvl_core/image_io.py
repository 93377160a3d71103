"""The one place a user's image becomes 8-bit RGB (or grey): used by the CLI, the classifier and
segmenter, the drawing functions (:mod:`grootvl_core.viz`) and the app.

    image = to_rgb_image("photo.png")            # PIL "RGB", upright, alpha on white
    pixels = to_rgb_array(image_or_array)         # (H, W, 3) uint8, the same pixels

One rule each:

- files are read by :func:`grootvl_core.image_file.read_image` (size from the header first);
- EXIF orientation: the image is turned upright (``PIL.ImageOps.exif_transpose``; a no-op on an
  image that is already upright or was read by ``read_image``);
- 16-bit (``I;16*`` images, uint16 arrays, ``I`` images above 255): ``round(v * 255 / 65535)``,
  so 0 -> 0, 65535 -> 255 and ``257 * k -> k`` (the full range maps onto the full range, unlike
  ``v >> 8``, which darkens by up to one level);
- float (``F`` images, float arrays): ``[0, 1]`` (or ``[0, 255]`` for ``F`` images above 1) to
  ``0..255`` rounded; NaN or infinite values are an error;
- alpha (RGBA, LA, PA, palette with transparency, ``(H, W, 4)`` arrays): composited on white;
- palette and greyscale images: expanded to RGB by Pillow (``convert("RGB")``).
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageOps

from .image_file import MAX_PIXELS, read_image

__all__ = ["to_rgb_array", "to_rgb_image"]

_WIDE_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def to_rgb_image(image, grayscale: bool = False) -> Image.Image:
    """Normalise any reasonable image to an 8-bit RGB (or ``L``) PIL image (rules: module doc).

    Args:
        image: a ``PIL.Image`` (any mode: L, LA, P, RGBA, CMYK, I;16, I, F, ...), a path, or a numpy
            array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` of uint8, uint16, bool or
            float in ``[0, 1]``.
        grayscale: return mode ``L`` instead of ``RGB``.

    Returns:
        A PIL image in mode ``RGB`` (or ``L``), upright. Alpha is composited on white.

    Raises:
        ValueError: unreadable file, wrong array shape, empty or oversized image.
        TypeError: unsupported input type.
    """
    if isinstance(image, (str, bytes)) or hasattr(image, "__fspath__"):
        image = read_image(image, max_pixels=MAX_PIXELS)  # size checked from the header first
    if isinstance(image, np.ndarray):
        image = _array_to_pil(image)
    if not isinstance(image, Image.Image):
        raise TypeError(f"expected a PIL image, a numpy array or a path, got {type(image).__name__}")
    w, h = image.size
    if w == 0 or h == 0:
        raise ValueError(f"image is empty ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ValueError(f"image is too large ({w}x{h} pixels > {MAX_PIXELS:,}); downscale it first")
    if image.getexif().get(0x0112, 1) != 1:  # NOTE: 0x0112 is the EXIF Orientation tag
        image = ImageOps.exif_transpose(image)
    if image.mode in _WIDE_MODES:
        arr = np.asarray(image, dtype=np.float64)
        if not np.isfinite(arr).all():
            raise ValueError(
                f"the image has {int((~np.isfinite(arr)).sum()):,} NaN or infinite pixel values "
                "(a float image): write finite values, e.g. in [0, 1]"
            )
        hi = 65535.0 if image.mode.startswith("I;16") or arr.max(initial=0) > 255 else 255.0
        if image.mode == "F" and arr.max(initial=0) <= 1.0:
            hi = 1.0
        image = Image.fromarray(np.clip(arr / hi * 255.0 + 0.5, 0, 255).astype(np.uint8), mode="L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("L" if grayscale else "RGB")


def to_rgb_array(image) -> np.ndarray:
    """:func:`to_rgb_image` as a ``(H, W, 3)`` uint8 array (a ``(H, W, 3)`` uint8 array is returned
    as a contiguous array of the same values, without a round trip through PIL)."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3:
        return np.ascontiguousarray(image)
    return np.asarray(to_rgb_image(image))


def _array_to_pil(arr: np.ndarray) -> Image.Image:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise ValueError(f"image array must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"image array is empty (shape {arr.shape})")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float64) / 65535.0 * 255.0 + 0.5).astype(np.uint8)
    elif np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ValueError("image array contains NaN or infinite values")
        arr = (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    elif arr.dtype == np.bool_:
        arr = arr.astype(np.uint8) * 255
    elif arr.dtype != np.uint8:
        raise ValueError(f"image array dtype must be uint8, uint16, bool or float in [0, 1]; got {arr.dtype}")
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[arr.ndim if arr.ndim == 2 else arr.shape[2]]
    return Image.fromarray(np.ascontiguousarray(arr), mode=mode)
