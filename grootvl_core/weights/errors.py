"""The error types of checkpoint reading, loading and transfer, and their one-line message helper."""

from __future__ import annotations

__all__ = ["CheckpointError", "UnsafeCheckpointError", "OfflineError"]


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupt or does not fit the model (names file and keys)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickled checkpoint tried to call a function or class while being loaded."""


class OfflineError(RuntimeError):
    """A download was needed but the network is off (``HF_HUB_OFFLINE=1``) or unreachable."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].split(". ")[0][:200]
