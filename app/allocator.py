"""glibc malloc settings for a long-running demo: a documented complement to keeping large
allocations out of the request path (``grootvl_core.models.token_tree_capture``), not a
substitute for it.

glibc serves a freed block of more than 128 KB from ``mmap`` only until the first such block is
freed; from then on its threshold rises (up to 32 MB) and tensors of a few MB come from the heap,
where the small long-lived objects a server allocates between requests (Gradio's per-session
state) land in the freed holes, so the next request's large blocks no longer fit and the heap
grows. A fixed threshold (:data:`MMAP_THRESHOLD`) sends every block above it to ``mmap`` and back
to the system on ``free``; :data:`ARENA_MAX` bounds the per-thread heaps. Measured with
``benchmarks/soak.py`` (see ``benchmarks/README.md``).

Only on glibc; nothing is changed when ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_ARENA_MAX`` are set
(the operator's choice) or ``GROOTVL_APP_MALLOC=0``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

__all__ = ["ARENA_MAX", "MMAP_THRESHOLD", "tune_malloc"]

log = logging.getLogger("grootvl.app")

MMAP_THRESHOLD = 1 << 20  # bytes: larger blocks are mmap-ed and returned on free
ARENA_MAX = 4
_M_MMAP_THRESHOLD = -3  # mallopt parameters (malloc.h)
_M_ARENA_MAX = -8


def tune_malloc() -> dict[str, int]:
    """Apply the settings above; returns what was set (empty when nothing was)."""
    if os.environ.get("GROOTVL_APP_MALLOC", "1") == "0":
        return {}
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (macOS, musl without mallopt)
        return {}
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    done = {}
    if "MALLOC_MMAP_THRESHOLD_" not in os.environ and mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1:
        done["mmap_threshold"] = MMAP_THRESHOLD
    if "MALLOC_ARENA_MAX" not in os.environ and mallopt(_M_ARENA_MAX, ARENA_MAX) == 1:
        done["arena_max"] = ARENA_MAX
    if done:
        log.info("malloc: %s", ", ".join(f"{k}={v}" for k, v in done.items()))
    return done
