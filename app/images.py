"""What the app does with a user's image before any model sees it.

Any upload that decodes as an image is accepted: grey, RGBA (composited on white), palette,
16-bit and float images are converted to 8-bit RGB by :func:`grootvl_core.classify.to_pil_rgb`.
Images with a longer side above :data:`MAX_SIDE` pixels are downscaled first (and the user is
told), so a huge photo never stalls the server; files that are not images get a clear message.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from grootvl_core.classify import to_pil_rgb

__all__ = ["MAX_SIDE", "UnreadableImage", "image_input", "load_user_image"]

MAX_SIDE = 2048  # longer side, in pixels, after which uploads are downscaled


class UnreadableImage(str):
    """What a batched image input (``image_input(batched=True)``) hands the callback for an upload
    that is not an image: the message, to be reported for that request alone."""


def load_user_image(value) -> tuple[Image.Image, str]:
    """``(RGB PIL image, note)`` from what a Gradio image input gives (path, numpy array or PIL).

    Raises:
        ValueError: nothing given, or the file is not a readable image.
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
            with Image.open(path) as im:
                # downscale while decoding (JPEG draft mode) before the full decode of huge files
                if max(im.size) > 4 * MAX_SIDE:
                    im.draft("RGB", (MAX_SIDE, MAX_SIDE))
                im.load()
                value = im.copy()
        except (OSError, Image.DecompressionBombError, ValueError) as exc:
            raise ValueError(f"{path.name!r} is not an image this app can read ({exc}); use PNG, JPEG, "
                             "WebP, BMP, GIF or TIFF") from None
    if isinstance(value, np.ndarray) and value.ndim == 3 and value.shape[2] == 4 and value.dtype == np.uint8:
        value = Image.fromarray(value, "RGBA")
    image = to_pil_rgb(value)
    w, h = image.size
    if max(w, h) > MAX_SIDE:
        scale = MAX_SIDE / max(w, h)
        image = image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)
        notes.append(f"The image ({w}x{h}) was downscaled to {image.size[0]}x{image.size[1]} "
                     f"(longer side limit {MAX_SIDE} px).")
    return image, " ".join(notes)


def image_input(batched: bool = False, **kwargs):
    """A ``gr.Image`` input that hands the callback the uploaded file untouched (16-bit, alpha and
    all: ``type="filepath"``, ``image_mode=None``) and answers a file that is not an image with a
    clear message instead of a decoding error.

    With ``batched=True`` (the input of a ``batch=True`` event, where one raised error would fail
    every request of the batch, other users' included) such a file reaches the callback as an
    :class:`UnreadableImage` carrying the message, for :func:`load_user_image` to raise for that
    request alone.
    """
    import gradio as gr

    component = gr.Image(type="filepath", image_mode=None, **{"sources": ["upload", "clipboard"], **kwargs})
    decode = component.preprocess

    def preprocess(payload):
        try:
            return decode(payload)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            name = getattr(payload, "orig_name", None) or "the file"
            message = (f"{name} is not an image this app can read ({type(exc).__name__}); use PNG, JPEG, WebP, "
                       "BMP, GIF or TIFF")
            if batched:
                return UnreadableImage(message)
            raise gr.Error(message, title="Not an image") from None

    component.preprocess = preprocess  # this instance only (a subclass would make gradio write stubs)
    return component
