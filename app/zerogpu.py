"""ZeroGPU, Hugging Face's shared-GPU Space hardware: CUDA exists only inside functions decorated
with ``spaces.GPU`` (a GPU is attached for the call, within the given duration in seconds, then
released). On such a Space the app runs every event that may touch the GPU (a model load, which
moves the weights, and the forward passes) through ``spaces.GPU``, and prepares the CUDA op inside
one at start-up; everything else (drawing recorded trees, the pixel tree, the zoo table) stays on
the CPU and costs no GPU time. Anywhere else (no ``spaces`` package, or ``SPACES_ZERO_GPU`` unset)
nothing is wrapped.

Every event of the demo is named in :data:`GPU_EVENTS` or :data:`CPU_EVENTS` (by its API name, or
by its function's name when it has no public API name); a test checks that none is missing, so a
new event gets a decision. An unlisted one is wrapped, to be safe.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Callable
from typing import Any

__all__ = ["CPU_EVENTS", "GPU_EVENTS", "event_key", "gpu_function", "on_zero_gpu", "spaces_module", "wrap_gpu_events"]

log = logging.getLogger("grootvl.app")

# seconds of GPU asked for per call: a forward pass of a bundled model takes milliseconds, a first
# load of a published one (weights from the disk cache to the GPU) seconds; generation streams up
# to 512 tokens
GPU_EVENTS: dict[str, int] = {
    "classify": 60,
    "classify_trees": 60,
    "on_model": 120,  # the Classify tab's model picker loads the model at once
    "segment": 60,
    "generate": 120,
    "erf": 120,  # input gradients of every stage over the model's examples
}
CPU_EVENTS = frozenset(
    {
        "load_example",  # gr.Examples
        "on_stage",
        "on_view",
        "on_affinity",
        "on_click",
        "draw",  # tree panels: recorded trees, on the CPU
        "classify_tree",
        "classify_affinity",
        "segment_tree",
        "segment_affinity",
        "on_opacity",
        "token_tree",
        "pixel_tree",
        "zoo",
        "classify_scans",
        "segment_scans",
        "classify_export",
        "segment_export",  # from the recorded trees
    }
)
PREPARE_SECONDS = 300  # the CUDA op's first build (where a toolkit exists) and its self-check

_TRUE = ("1", "true", "yes", "on")


def spaces_module():
    """The ``spaces`` package, or None when it is not installed."""
    try:
        return importlib.import_module("spaces")
    except ImportError:
        return None


def on_zero_gpu() -> bool:
    """True on a ZeroGPU Space: ``SPACES_ZERO_GPU`` is set (as the Space sets it, and as the
    ``spaces`` package reads it) and ``spaces`` is importable."""
    if os.environ.get("SPACES_ZERO_GPU", "").strip().lower() not in _TRUE:
        return False
    if spaces_module() is None:
        log.warning(
            "SPACES_ZERO_GPU is set but the `spaces` package is not installed: GPU work is not "
            "wrapped in spaces.GPU (pip install spaces, or unset SPACES_ZERO_GPU)"
        )
        return False
    return True


def gpu_function(fn: Callable, duration: int) -> Callable:
    """``spaces.GPU(fn, duration=duration)`` on ZeroGPU, else ``fn`` itself."""
    if not on_zero_gpu():
        return fn
    return spaces_module().GPU(fn, duration=duration)


def event_key(block_fn: Any) -> str:
    """The name an event is listed under: its public API name, else its function's name."""
    if getattr(block_fn, "api_visibility", "public") == "public" and block_fn.api_name:
        return str(block_fn.api_name)
    return str(block_fn.name)


def wrap_gpu_events(demo) -> dict[str, int]:
    """On ZeroGPU, make every GPU event of the built (not yet launched) ``demo`` run inside
    ``spaces.GPU``; returns ``{event: duration}`` of what was wrapped (empty elsewhere)."""
    if not on_zero_gpu():
        return {}
    spaces = spaces_module()
    wrapped: dict[str, int] = {}
    for block_fn in demo.fns.values():
        if block_fn.fn is None:
            continue
        key = event_key(block_fn)
        if key in CPU_EVENTS:
            continue
        duration = GPU_EVENTS.get(key)
        if duration is None:
            log.warning(
                "ZeroGPU: event %r is in neither GPU_EVENTS nor CPU_EVENTS of app/zerogpu.py; "
                "running it inside spaces.GPU to be safe",
                key,
            )
            duration = 60
        block_fn.fn = spaces.GPU(block_fn.fn, duration=duration)
        wrapped[key] = duration
    log.info(
        "ZeroGPU: %d events run inside spaces.GPU: %s",
        len(wrapped),
        ", ".join(f"{k} ({v} s)" for k, v in sorted(wrapped.items())),
    )
    return wrapped
