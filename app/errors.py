"""Turn library errors into messages the user reads in the UI (never a traceback).

Every callback runs inside :func:`user_errors`: the errors a user can cause or fix (bad image, empty
prompt, offline download, corrupt file) become ``gr.Error`` with the library's own message; anything
else is logged with its traceback for the operator and shown as a short "internal error" note.
"""

from __future__ import annotations

import contextlib
import logging

import gradio as gr

from grootvl_core.hub import CheckpointError, OfflineError

__all__ = ["failure_message", "user_errors"]

log = logging.getLogger("grootvl.app")

# errors whose message is written for the user
_USER_ERRORS = (ValueError, TypeError, OfflineError, CheckpointError, OSError, FloatingPointError)


def failure_message(what: str, exc: BaseException) -> tuple[str, str]:
    """``(message, title)`` a user reads for ``exc`` raised while doing ``what`` (e.g. ``"classify"``).
    Unexpected errors are logged here with their traceback and get a short "internal error" note."""
    if isinstance(exc, gr.Error):
        return exc.message, exc.title or "Error"
    if isinstance(exc, OfflineError):
        return f"{what}: this model is not available offline. {exc}", "Model not available"
    if isinstance(exc, _USER_ERRORS):
        return f"{what}: {exc}", "Cannot do that"
    if isinstance(exc, MemoryError):
        return f"{what}: out of memory; try a smaller image or fewer tokens", "Out of memory"
    log.error("%s failed", what, exc_info=exc)
    return f"{what}: internal error ({type(exc).__name__}); the server log has the details", "Internal error"


@contextlib.contextmanager
def user_errors(what: str):
    """Run a callback body; re-raise user-facing errors as ``gr.Error`` (``what`` says which action
    failed, e.g. ``"classify"``)."""
    try:
        yield
    except gr.Error:
        raise
    except Exception as exc:  # noqa: BLE001 - every error becomes a message (see failure_message)
        message, title = failure_message(what, exc)
        raise gr.Error(message, title=title) from None
