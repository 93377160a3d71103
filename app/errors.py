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

__all__ = ["user_errors"]

log = logging.getLogger("grootvl.app")

# errors whose message is written for the user
_USER_ERRORS = (ValueError, TypeError, OfflineError, CheckpointError, OSError, FloatingPointError)


@contextlib.contextmanager
def user_errors(what: str):
    """Run a callback body; re-raise user-facing errors as ``gr.Error`` (``what`` says which action
    failed, e.g. ``"classify"``)."""
    try:
        yield
    except gr.Error:
        raise
    except OfflineError as exc:
        raise gr.Error(f"{what}: this model is not available offline. {exc}", title="Model not available") from None
    except _USER_ERRORS as exc:
        raise gr.Error(f"{what}: {exc}", title="Cannot do that") from None
    except MemoryError:
        raise gr.Error(f"{what}: out of memory; try a smaller image or fewer tokens", title="Out of memory") from None
    except Exception as exc:  # noqa: BLE001 - the operator gets the traceback, the user a message
        log.exception("%s failed", what)
        raise gr.Error(f"{what}: internal error ({type(exc).__name__}); the server log has the details",
                       title="Internal error") from None
