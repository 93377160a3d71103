"""What one visitor may send the demo, and how long the server keeps what they leave behind.

One place for the limits a public demo needs so that no request can take the machine with it:

- images: at most :data:`MAX_IMAGE_PIXELS` pixels, checked from the file's header before any pixel
  is decoded (``grootvl_core.image_file``); longer sides above ``app.images.MAX_SIDE`` are
  downscaled;
- uploads: at most :data:`MAX_UPLOAD_MB` per file (Gradio refuses larger ones with HTTP 413);
- Gradio's file cache (uploads and returned pictures): files older than :data:`CACHE_MAX_AGE_S`
  are deleted every :data:`CACHE_SWEEP_S` seconds, all of it when the server stops;
- per-session state (the recorded trees): dropped :data:`STATE_TTL_S` after its last update, and
  at most :data:`MAX_SESSIONS` sessions are kept (least recently used dropped first).

:data:`LIMITS_TEXT` states them in the UI.
"""

from __future__ import annotations

__all__ = [
    "CACHE_MAX_AGE_S",
    "CACHE_SWEEP_S",
    "LIMITS_TEXT",
    "MAX_IMAGE_PIXELS",
    "MAX_SESSIONS",
    "MAX_UPLOAD_MB",
    "STATE_TTL_S",
    "blocks_kwargs",
    "launch_kwargs",
]

MAX_IMAGE_PIXELS = 50_000_000  # width x height of an input image (a 48-megapixel phone photo fits)
MAX_UPLOAD_MB = 32
CACHE_SWEEP_S = 300
CACHE_MAX_AGE_S = 1800
STATE_TTL_S = 1800
MAX_SESSIONS = 1000  # Gradio keeps ~0.1-0.3 MB per session (its copy of the layout, the trees)

LIMITS_TEXT = (
    f"Images up to {MAX_IMAGE_PIXELS // 1_000_000} megapixels and {MAX_UPLOAD_MB} MB per file "
    "(larger ones are refused before decoding); uploads and results are kept "
    f"{CACHE_MAX_AGE_S // 60} minutes."
)


def blocks_kwargs() -> dict:
    """Keyword arguments of ``gr.Blocks`` for these limits."""
    return {"delete_cache": (CACHE_SWEEP_S, CACHE_MAX_AGE_S)}


def launch_kwargs() -> dict:
    """Keyword arguments of ``Blocks.launch`` for these limits."""
    return {"max_file_size": MAX_UPLOAD_MB * 1024 * 1024, "state_session_capacity": MAX_SESSIONS}
