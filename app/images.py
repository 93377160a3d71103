"""What the app does with a user's image before any model sees it.

Any upload that decodes as an image is accepted: grey, RGBA (composited on white), palette,
16-bit and float images are converted to 8-bit RGB by :func:`grootvl_core.image_io.to_rgb_image`,
turned upright by their EXIF orientation. The size is checked from the file's header before any
pixel is decoded (at most :data:`app.limits.MAX_IMAGE_PIXELS`, in every format); images with a
longer side above :data:`MAX_SIDE` pixels are then downscaled (and the user is told), so a huge
photo never stalls the server; files that are not images get a clear message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from grootvl_core.image_file import ImageTooLarge, UnreadableImageFile, check_image_size, read_image
from grootvl_core.image_io import to_rgb_image

from .limits import MAX_IMAGE_PIXELS

__all__ = ["MAX_SIDE", "UnreadableImage", "image_input", "load_user_image"]

MAX_SIDE = 2048  # longer side, in pixels, after which uploads are downscaled
FORMATS = "PNG, JPEG, WebP, BMP, GIF or TIFF"


class UnreadableImage(str):
    """What the callback of a batched event gets for an input Gradio could not process (see
    :mod:`app.input_guard`): the message, to be reported for that request alone."""


def load_user_image(value) -> tuple[Image.Image, str]:
    """``(RGB PIL image, note)`` from what a Gradio image input gives (path, numpy array or PIL).

    Raises:
        ValueError: nothing given, the file is not a readable image, or it has more than
            :data:`~app.limits.MAX_IMAGE_PIXELS` pixels (told by its header, nothing decoded).
    """
    if isinstance(value, UnreadableImage):
        raise ValueError(str(value))
    if value is None or (isinstance(value, str) and not value):
        raise ValueError("no image: upload one, paste one, or pick an example")
    if isinstance(value, dict) and "path" in value:  # a FileData payload
        value = value["path"]
    notes = []
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise ValueError(f"cannot read the image file {path.name!r}")
        try:
            # the header's size is checked first; huge JPEGs are downscaled while decoding (draft mode)
            value = read_image(path, max_pixels=MAX_IMAGE_PIXELS, draft_side=MAX_SIDE)
        except ImageTooLarge:
            raise
        except UnreadableImageFile as exc:
            raise ValueError(f"{path.name!r} is not an image this app can read ({exc.reason}); use {FORMATS}") from None
    elif isinstance(value, Image.Image):
        check_image_size(*value.size, MAX_IMAGE_PIXELS)
    elif isinstance(value, np.ndarray) and value.ndim >= 2:
        check_image_size(value.shape[1], value.shape[0], MAX_IMAGE_PIXELS)
    image = to_rgb_image(value)  # the one rule of grootvl_core.image_io (an (H, W, 4) array is RGBA)
    w, h = image.size
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        notes.append(
            f"The image ({w}x{h}) was downscaled to {image.size[0]}x{image.size[1]} (longer side limit {MAX_SIDE} px)."
        )
    return image, " ".join(notes)


def image_input(**kwargs):
    """A ``gr.Image`` input that hands the callback the uploaded file untouched (16-bit, alpha and
    all: ``type="filepath"``, ``image_mode=None``). A file that is not an image, or any other payload
    Gradio cannot process, is answered per request by :class:`app.input_guard.GuardedBlocks`."""
    import gradio as gr

    return gr.Image(type="filepath", image_mode=None, **{"sources": ["upload", "clipboard"], **kwargs})
