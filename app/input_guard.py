"""Gradio's input processing, one request at a time: a bad payload fails only its own request, and
its problem reaches the user as a message.

Before a callback runs, Gradio checks and converts every input (files must have been uploaded to
this app, a payload must match the component's data model, the component's ``preprocess`` must
accept it). For a ``batch=True`` event it does this for each request of the batch in turn, and the
first one that raises fails the whole batch, other sessions' requests included. :class:`GuardedBlocks`
catches such an error per request: in a batched event that request's inputs become
:class:`~app.images.UnreadableImage` markers carrying the message (the callback answers that
request alone with it), in any other event it is raised as a ``gr.Error`` with a message saying
what was wrong and what to do. This works for every session alike, also for one whose components
Gradio has re-created (a clicked ``gr.Examples`` item replaces the session's copy of its input).

An image sent inline as a ``data:`` URL is decoded by Gradio itself, so its size is checked here,
from the header, first (:data:`app.limits.MAX_IMAGE_PIXELS`).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging

import gradio as gr
from PIL import Image

from grootvl_core.image_file import ImageTooLarge, check_image_size

from .images import UnreadableImage
from .limits import MAX_IMAGE_PIXELS

__all__ = ["GuardedBlocks", "input_error_message"]

log = logging.getLogger("grootvl.app")

IMAGE_FORMATS = "PNG, JPEG, WebP, BMP, GIF or TIFF"


def _file_name(inputs: list) -> str:
    for value in inputs:
        if isinstance(value, dict) and (value.get("orig_name") or value.get("path")):
            name = str(value.get("orig_name") or value["path"]).replace("\\", "/").rsplit("/", 1)[-1]
            return repr(name[:80])
    return "the file"


def input_error_message(exc: BaseException, inputs: list) -> str:
    """What the user reads when Gradio could not process the inputs ``inputs`` of one request."""
    from gradio.exceptions import ComponentProcessingError, InvalidPathError

    if isinstance(exc, gr.Error):
        return exc.message
    if isinstance(exc, ImageTooLarge):
        return f"{exc}"
    if isinstance(exc, InvalidPathError):
        return (
            "a file of this request was not uploaded to this app, so it cannot be read: upload it first "
            "(the page's upload button, POST /gradio_api/upload, or gradio_client's handle_file)"
        )
    try:
        from pydantic import ValidationError
    except ImportError:  # pragma: no cover - gradio depends on pydantic
        ValidationError = ()  # noqa: N806
    if isinstance(exc, ValidationError):
        first = exc.errors()[0] if exc.errors() else {}
        return (
            "an input of this request has the wrong form (an image input takes a file: "
            f'{{"path": ..., "meta": {{"_type": "gradio.FileData"}}}}): {first.get("msg", exc)}'
        )
    cause = exc.__cause__ if isinstance(exc, ComponentProcessingError) and exc.__cause__ else exc
    if isinstance(cause, (OSError, Image.DecompressionBombError, SyntaxError, EOFError)):
        return f"{_file_name(inputs)} is not an image this app can read ({type(cause).__name__}); use {IMAGE_FORMATS}"
    log.warning("input of a request refused (%s: %s)", type(exc).__name__, str(exc)[:300])
    return f"an input of this request could not be read ({type(cause).__name__}: {str(cause)[:200]})"


def _check_inline_images(block_fn, inputs: list) -> None:
    """Refuse a ``data:`` URL image above the pixel limit before Gradio decodes it."""
    for block, value in zip(block_fn.inputs, inputs):
        if not isinstance(block, gr.Image) or not isinstance(value, dict):
            continue
        url = value.get("url")
        if not (isinstance(url, str) and url.startswith("data:")):
            continue
        try:
            data = base64.b64decode(url.partition(",")[2], validate=False)
            with Image.open(io.BytesIO(data)) as im:  # the header only
                width, height = im.size
        except (binascii.Error, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
            raise gr.Error(
                f"the inline (data: URL) image is not one this app can read ({type(exc).__name__}); use {IMAGE_FORMATS}"
            ) from None
        check_image_size(width, height, MAX_IMAGE_PIXELS, "the inline image")


class GuardedBlocks(gr.Blocks):
    """``gr.Blocks`` whose input processing fails one request at a time (see the module docstring)."""

    async def preprocess_data(self, block_fn, inputs, state, explicit_call: bool = False):
        try:
            _check_inline_images(block_fn, list(inputs))
            return await super().preprocess_data(block_fn, inputs, state, explicit_call)
        except Exception as exc:  # noqa: BLE001 - each becomes this request's message
            message = input_error_message(exc, list(inputs))
            if block_fn.batch:
                return [UnreadableImage(message) for _ in block_fn.inputs]
            raise gr.Error(message, title="Cannot read the input") from None
