"""Output pictures as PNG files with unique names.

Gradio saves a returned numpy image under a path named by the image's content hash and rewrites
that file in place each time; two requests that produce the same picture at the same moment (the
same example, the same tree) can then truncate a file while it is being downloaded. A returned
file path is instead copied into Gradio's cache atomically, so every callback returns pictures
through :func:`png`: a fresh file in a private temporary folder, deleted after ``KEEP_SECONDS``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

__all__ = ["KEEP_SECONDS", "png"]

KEEP_SECONDS = 600.0
_folder = Path(tempfile.mkdtemp(prefix="grootvl-app-"))
_lock = threading.Lock()
_last_sweep = [time.monotonic()]


def _sweep(now: float) -> None:
    for path in _folder.glob("*.png"):
        try:
            if now - path.stat().st_mtime > KEEP_SECONDS:
                path.unlink()
        except OSError:
            pass


def png(image: np.ndarray) -> str:
    """Write an ``(H, W, 3)`` uint8 RGB array as a new PNG file and return its path."""
    import cv2

    arr = np.ascontiguousarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"png: expected (H, W, 3) uint8, got {arr.dtype} {arr.shape}")
    path = _folder / f"{uuid.uuid4().hex}.png"
    tmp = path.with_name(path.stem + ".part.png")  # cv2 picks the format from the suffix
    if not cv2.imwrite(str(tmp), cv2.cvtColor(arr, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 1]):
        raise OSError(f"could not write {tmp}")
    os.replace(tmp, path)
    with _lock:
        now = time.monotonic()
        if now - _last_sweep[0] > 60:
            _last_sweep[0] = now
            _sweep(time.time())
    return str(path)
