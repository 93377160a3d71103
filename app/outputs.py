"""Output pictures as PNG files with unique names.

Gradio saves a returned numpy image under a path named by the image's content hash and rewrites
that file in place each time; two requests that produce the same picture at the same moment (the
same example, the same tree) can then truncate a file while it is being downloaded. A returned
file path is instead copied into Gradio's cache atomically, so every callback returns pictures
through :func:`png`: a fresh file in a private temporary folder, deleted after ``KEEP_SECONDS``.
Files offered for download (:func:`png` with a ``name``, :func:`text_file`) keep a readable name
inside a fresh sub-folder of their own.
"""

from __future__ import annotations

import os
import re
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

__all__ = ["KEEP_SECONDS", "png", "text_file"]

KEEP_SECONDS = 600.0
_folder = Path(tempfile.mkdtemp(prefix="grootvl-app-"))
_lock = threading.Lock()
_last_sweep = [time.monotonic()]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


def _sweep(now: float) -> None:
    for path in _folder.rglob("*"):
        try:
            if path.is_file() and now - path.stat().st_mtime > KEEP_SECONDS:
                path.unlink()
        except OSError:
            pass
    for sub in _folder.iterdir():  # the emptied download folders (not one being filled now)
        try:
            if sub.is_dir() and now - sub.stat().st_mtime > KEEP_SECONDS and not any(sub.iterdir()):
                sub.rmdir()
        except OSError:
            pass


def _new_path(name: str | None, suffix: str) -> Path:
    if name is None:
        return _folder / f"{uuid.uuid4().hex}{suffix}"
    if not _NAME.fullmatch(name) or not name.endswith(suffix):
        raise ValueError(f"output file name must be letters, digits, '.', '_', '-' ending in {suffix}, got {name!r}")
    sub = _folder / uuid.uuid4().hex
    sub.mkdir()
    return sub / name


def png(image: np.ndarray, name: str | None = None) -> str:
    """Write an ``(H, W, 3)`` uint8 RGB array as a new PNG file and return its path (a unique
    name, or ``name`` (ending in ``.png``) inside a fresh folder, for downloads)."""
    import cv2

    arr = np.ascontiguousarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"png: expected (H, W, 3) uint8, got {arr.dtype} {arr.shape}")
    path = _new_path(name, ".png")
    tmp = path.with_name(path.stem + ".part.png")  # cv2 picks the format from the suffix
    if not cv2.imwrite(str(tmp), cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)
    _maybe_sweep()
    return str(path)


def text_file(text: str, name: str) -> str:
    """Write ``text`` (UTF-8) as ``name`` inside a fresh folder and return the path (downloads)."""
    suffix = Path(name).suffix
    if not suffix:
        raise ValueError(f"text_file: name needs a suffix such as .json, got {name!r}")
    path = _new_path(name, suffix)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    _maybe_sweep()
    return str(path)


def _maybe_sweep() -> None:
    with _lock:
        now = time.monotonic()
        if now - _last_sweep[0] > 60:
            _last_sweep[0] = now
            _sweep(time.time())
