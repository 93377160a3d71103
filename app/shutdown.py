"""Stopping the demo cleanly: a SIGTERM (what ``docker stop``, systemd, a Space restart and the
benchmarks send) ends it the way Ctrl-C does, so Gradio closes the server and deletes its file
cache, and the ``atexit`` handlers run (``app.outputs`` removes its folder of pictures)."""

from __future__ import annotations

import signal
import threading

__all__ = ["stop_on_sigterm"]


def _interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def stop_on_sigterm() -> bool:
    """Make SIGTERM raise ``KeyboardInterrupt`` in the main thread (where ``launch()`` blocks).
    Returns False (and changes nothing) outside the main thread or when SIGTERM already has a
    handler of its own."""
    if threading.current_thread() is not threading.main_thread():
        return False
    if signal.getsignal(signal.SIGTERM) not in (signal.SIG_DFL, None):
        return False
    signal.signal(signal.SIGTERM, _interrupt)
    return True
