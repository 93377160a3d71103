"""app.outputs: one folder of pictures per process, removed at exit and, if the process was
killed, by the next one; app.shutdown: SIGTERM stops the demo like Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np

from app import outputs
from app.shutdown import stop_on_sigterm


def test_folders_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stale = tmp_path / f"{outputs.PREFIX}{int(dead.stdout)}-abc"
    stale.mkdir()
    (stale / "x.png").write_bytes(b"png")
    alive = tmp_path / f"{outputs.PREFIX}{os.getppid()}-def"
    alive.mkdir()
    unrelated = tmp_path / f"{outputs.PREFIX}old-style"
    unrelated.mkdir()
    assert outputs.remove_stale_folders(tmp_path) == [stale]
    assert not stale.exists() and alive.exists() and unrelated.exists()


def test_the_folder_is_removed_when_the_process_exits(tmp_path):
    code = (
        "import numpy as np; from app.outputs import png, output_folder; "
        "p = png(np.zeros((4, 4, 3), np.uint8)); print(output_folder())"
    )
    env = dict(os.environ, TMPDIR=str(tmp_path))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    folder = done.stdout.strip().splitlines()[-1]
    assert folder.startswith(str(tmp_path))
    assert list(tmp_path.iterdir()) == []


def test_png_writes_into_this_process_folder():
    path = outputs.png(np.zeros((4, 4, 3), np.uint8))
    assert os.path.dirname(path) == str(outputs.output_folder())
    assert outputs.output_folder().name.startswith(f"{outputs.PREFIX}{os.getpid()}-")


def test_sigterm_becomes_keyboard_interrupt():
    code = (
        "import os, signal, time; from app.shutdown import stop_on_sigterm\n"
        "assert stop_on_sigterm()\n"
        "try:\n    os.kill(os.getpid(), signal.SIGTERM); time.sleep(5)\n"
        "except KeyboardInterrupt:\n    print('interrupted')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "interrupted", done.stderr
    previous = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, lambda *a: None)
    try:
        assert stop_on_sigterm() is False  # an existing handler is left alone
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_malloc_settings_respect_the_operator(monkeypatch):
    from app import allocator

    monkeypatch.setenv("GROOTVL_APP_MALLOC", "0")
    assert allocator.tune_malloc() == {}
    monkeypatch.delenv("GROOTVL_APP_MALLOC")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    done = allocator.tune_malloc()
    assert "arena_max" not in done
    if sys.platform.startswith("linux") and os.path.exists("/lib/x86_64-linux-gnu/libc.so.6"):
        assert done == {"mmap_threshold": allocator.MMAP_THRESHOLD}
