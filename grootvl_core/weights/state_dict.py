"""From a read checkpoint to ``load_state_dict``: one unwrap, one strict key diff, strict loading.

:func:`extract_state_dict` picks ``model`` (default) or ``model_ema`` out of a training checkpoint;
:func:`load_weights` runs the architecture's ``checkpoint_filter_fn`` (the key remap lives beside
the model, see ``style-anchors.md``), compares keys and shapes with the model and loads strictly;
every missing, unexpected or shape-mismatched key is named in :class:`CheckpointError`.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, _first_line
from .unpickler import read_checkpoint

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "extract_state_dict",
    "diff_state_dict",
    "check_state_dict",
    "load_weights",
    "unwrap_state_dict",
    "load_pretrained_folder",
]

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


def extract_state_dict(checkpoint: Any, use_ema: bool = False, source: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Pick the weights out of a training checkpoint (reference 3.5).

    Args:
        checkpoint: what :func:`read_checkpoint` returned: a bare state dict, or a dict with
            ``model`` / ``model_ema`` / ``state_dict`` / ``module`` (one level is unwrapped).
        use_ema: take ``model_ema`` instead of ``model``.
        source: file name used in error messages.

    Returns:
        A ``{key: tensor}`` dict, unwrapped by :func:`unwrap_state_dict` (the architecture's
        ``checkpoint_filter_fn`` then remaps foreign key names).

    Raises:
        CheckpointError: not a dict, or ``model_ema`` asked for but absent.
    """
    if not isinstance(checkpoint, Mapping):
        raise CheckpointError(f"{source}: expected a dict of weights, got {type(checkpoint).__name__}")
    if use_ema:
        if "model_ema" not in checkpoint:
            raise CheckpointError(
                f"{source} has no 'model_ema' entry (top-level keys: {_short_list(checkpoint.keys())}); "
                "drop the EMA option to load 'model'"
            )
        sd = checkpoint["model_ema"]
    else:
        sd = checkpoint
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{source}: the weights entry is a {type(sd).__name__}, not a dict of tensors")
    return dict(unwrap_state_dict(sd, use_ema=use_ema))


_CONTAINERS = ("model", "state_dict", "model_ema", "state_dict_ema", "module")
_EMA_CONTAINERS = ("model_ema", "state_dict_ema", "model", "state_dict", "module")


def unwrap_state_dict(state_dict: Mapping[str, Any], use_ema: bool = False) -> Mapping[str, Any]:
    """Unwrap training containers and DDP prefixes; pure, no I/O, idempotent.

    Unwraps ``model``, ``state_dict``, ``model_ema``, ``state_dict_ema``, ``module`` (nested ones
    too, e.g. ``{"model_ema": {"module": {...}}}``) and strips ``module.`` key prefixes left by
    DDP / EMA wrappers. A dict that is already native is returned unchanged (the same object).

    Args:
        state_dict: a bare state dict or a training checkpoint dict.
        use_ema: prefer ``model_ema`` / ``state_dict_ema`` when the checkpoint has both.

    Returns:
        A mapping of parameter / buffer names to tensors.
    """
    sd = state_dict
    containers = _EMA_CONTAINERS if use_ema else _CONTAINERS
    for _ in range(4):
        inner = next((sd[k] for k in containers if isinstance(sd.get(k), Mapping)), None)
        if inner is None:
            break
        sd = inner
    if sd and all(isinstance(k, str) and k.startswith("module.") for k in sd):
        # strip one level at a time: an EMA of a DDP model can carry "module.module."
        return unwrap_state_dict({k[len("module.") :]: v for k, v in sd.items()}, use_ema)
    return sd


def diff_state_dict(model: torch.nn.Module, state_dict: Mapping[str, Any]) -> tuple[list[str], list[str], list[str]]:
    """Compare a state dict with a model's.

    Returns:
        ``(missing, unexpected, mismatched)``: key names absent from ``state_dict``, key names the
        model does not have, and ``"key: checkpoint (a, b) vs model (c, d)"`` lines.
    """
    expected = model.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = []
    for k, v in state_dict.items():
        if k in expected and isinstance(v, torch.Tensor) and tuple(v.shape) != tuple(expected[k].shape):
            mismatched.append(f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}")
        elif k in expected and not isinstance(v, torch.Tensor):
            mismatched.append(f"{k}: checkpoint holds a {type(v).__name__}, not a tensor")
    return missing, unexpected, mismatched


def check_state_dict(
    model: torch.nn.Module, state_dict: Mapping[str, Any], name: str = "checkpoint", strict: bool = True
) -> None:
    """Raise :class:`CheckpointError` naming every key of ``state_dict`` that does not fit ``model``.

    Args:
        model: the target module.
        state_dict: the (filtered) weights.
        name: the source, for the message.
        strict: also fail on missing / unexpected keys (shape mismatches always fail).

    Raises:
        CheckpointError: missing / unexpected / shape-mismatched keys, all named.
    """
    missing, unexpected, mismatched = diff_state_dict(model, state_dict)
    if not strict:
        missing, unexpected = [], []
    if missing or unexpected or mismatched:
        parts = [f"{name} does not fit {type(model).__name__} (strict loading):"]
        if missing:
            parts.append(f"  missing keys ({len(missing)}): {_short_list(missing)}")
        if unexpected:
            parts.append(f"  unexpected keys ({len(unexpected)}): {_short_list(unexpected)}")
        if mismatched:
            parts.append(f"  shape mismatches ({len(mismatched)}): {_short_list(mismatched, 10)}")
        parts.append(
            "  Check that the architecture / config matches the checkpoint (e.g. grootv_tiny vs grootv_small)."
        )
        raise CheckpointError("\n".join(parts))


def _short_list(items: Iterable[Any], limit: int = 20) -> str:
    items = [str(i) for i in items]
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def load_weights(
    model: torch.nn.Module,
    source: str | os.PathLike | Mapping[str, Any],
    filter_fn: Callable[[dict, torch.nn.Module], dict] | None = None,
    use_ema: bool = False,
) -> torch.nn.Module:
    """Load a checkpoint into ``model`` strictly, naming every key that does not fit.

    Args:
        model: the target module (already built with the right config).
        source: a checkpoint path or an already-read checkpoint object.
        filter_fn: ``checkpoint_filter_fn(state_dict, model) -> state_dict`` of the architecture
            (unwraps ``model``/``module.``, remaps foreign keys); ``None`` loads keys as they are.
        use_ema: take ``model_ema`` from a training checkpoint.

    Returns:
        ``model``, with the weights loaded.

    Raises:
        CheckpointError: unreadable file, or missing / unexpected / shape-mismatched keys (all named).
    """
    name = str(source) if isinstance(source, (str, os.PathLike)) else "checkpoint"
    checkpoint = read_checkpoint(source) if isinstance(source, (str, os.PathLike)) else source
    state_dict = extract_state_dict(checkpoint, use_ema=use_ema, source=name)
    if filter_fn is not None:
        state_dict = filter_fn(state_dict, model)
    check_state_dict(model, state_dict, name)
    model.load_state_dict(state_dict, strict=True)
    return model


def load_pretrained_folder(cls: type, folder: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """``cls.from_pretrained(folder)`` (``config.json`` + ``model.safetensors``), strict, errors named.

    Args:
        cls: a ``PyTorchModelHubMixin`` model class (e.g. ``GrootV``).
        folder: a Hub-format folder (local, bundled, or a Hub snapshot).
        device: ``map_location`` for the weights.

    Returns:
        The model in eval mode.

    Raises:
        CheckpointError: missing files, corrupt safetensors, or keys that do not fit (named).
    """
    folder = Path(folder)
    for fname in (CONFIG_NAME, WEIGHTS_NAME):
        if not (folder / fname).is_file():
            raise CheckpointError(
                f"{folder} is not a model folder: {fname} is missing (need config.json + model.safetensors)"
            )
    try:
        json.loads((folder / CONFIG_NAME).read_text())
    except ValueError as exc:
        raise CheckpointError(f"{folder / CONFIG_NAME} is not valid JSON: {exc}") from None
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # the mixin prints "Loading weights from local directory"
            model = cls.from_pretrained(str(folder), map_location=str(device), strict=True)
    except (RuntimeError, OSError, TypeError, ValueError, KeyError) as exc:  # keys, shapes, vocab
        msg = str(exc).strip()
        raise CheckpointError(f"could not load {folder / WEIGHTS_NAME} into {cls.__name__}: {msg}") from None
    except Exception as exc:  # safetensors' SafetensorError on a corrupt file
        raise CheckpointError(
            f"could not read {folder / WEIGHTS_NAME}: {_first_line(exc)}; the file is corrupt"
        ) from None
    return model.eval()
