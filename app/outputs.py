"""Output pictures as PNG files with unique names.

Gradio saves a returned numpy image under a path named by the image's content hash and rewrites
that file in place each time; two requests that produce the same picture at the same moment (the
same example, the same tree) can then truncate a file while it is being downloaded. A returned
file path is instead copied into Gradio's cache atomically, so every callback returns pictures
through :func:`png`: a fresh file in a private temporary folder, deleted after ``KEEP_SECONDS``.
Files offered for download (:func:`png` with a ``name``, :func:`text_file`) keep a readable name
inside a fresh sub-folder of their own.

The folder (``grootvl-app-<pid>-*`` in the temp directory) is made on the first picture and
removed when the process exits; folders that processes which no longer run left behind (killed
servers) are removed when the next one makes its own.
"""

from __future__ import annotations

import atexit
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from pathlib import Path

import numpy as np

__all__ = ["KEEP_SECONDS", "output_folder", "png", "remove_stale_folders", "text_file"]

KEEP_SECONDS = 600.0
PREFIX = "grootvl-app-"
_folder: Path | None = None
_lock = threading.Lock()
_last_sweep = [time.monotonic()]
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,100}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_stale_folders(parent: Path | None = None) -> list[Path]:
    """Remove the output folders of processes that no longer run; returns what was removed."""
    parent = Path(parent or tempfile.gettempdir())
    removed = []
    for path in parent.glob(PREFIX + "*"):
        pid = path.name[len(PREFIX) :].split("-", 1)[0]
        if path.is_dir() and pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def output_folder() -> Path:
    """This process's folder of output pictures (made on first use, removed at exit)."""
    global _folder
    with _lock:
        if _folder is None or not _folder.is_dir():
            remove_stale_folders()
            _folder = Path(tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-"))
            atexit.register(shutil.rmtree, _folder, ignore_errors=True)
        return _folder


def _sweep(folder: Path, now: float) -> None:
    for path in folder.rglob("*"):
        try:
            if path.is_file() and now - path.stat().st_mtime > KEEP_SECONDS:
                path.unlink()
        except OSError:
            pass
    for sub in folder.iterdir():  # the emptied download folders (not one being filled now)
        try:
            if sub.is_dir() and now - sub.stat().st_mtime > KEEP_SECONDS and not any(sub.iterdir()):
                sub.rmdir()
        except OSError:
            pass


def _new_path(name: str | None, suffix: str) -> Path:
    folder = output_folder()
    if name is None:
        return folder / f"{uuid.uuid4().hex}{suffix}"
    if not _NAME.fullmatch(name) or not name.endswith(suffix):
        raise ValueError(f"output file name must be letters, digits, '.', '_', '-' ending in {suffix}, got {name!r}")
    sub = folder / uuid.uuid4().hex
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
    folder = output_folder()  # takes the lock itself
    with _lock:
        now = time.monotonic()
        if now - _last_sweep[0] > 60:
            _last_sweep[0] = now
            _sweep(folder, time.time())
