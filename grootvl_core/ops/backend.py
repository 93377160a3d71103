"""Which implementation runs the op: the one place that decides (design.md "Op API").

- ``GROOTVL_OPS=reference``: always the pure-PyTorch reference.
- ``GROOTVL_OPS=native``: the compiled extension, or a ``RuntimeError`` saying why it cannot load.
- unset / ``auto``: the compiled extension when it builds, else the reference with ONE warning that
  says what failed and how to fix it.

CPU tensors use ``grootvl_native`` (C++); CUDA tensors use ``grootvl_native_cuda`` (C++ + CUDA).
Any other device runs the reference.
"""

from __future__ import annotations

import os
import threading
import warnings
from types import ModuleType

import torch

from . import reference

__all__ = ["backend", "eager_native", "implementation", "native_error"]

_lock = threading.Lock()
_modules: dict[str, ModuleType | None] = {}
_errors: dict[str, str] = {}
_warned: set[str] = set()


_parsed_mode: tuple[str | None, str] = (None, "auto")  # (raw GROOTVL_OPS, its mode), parsed once per value


def _mode() -> str:
    # read on every call (tests and users switch it at run time); parsed only when it changes
    global _parsed_mode
    raw = os.environ.get("GROOTVL_OPS")
    if raw == _parsed_mode[0]:
        return _parsed_mode[1]
    mode = (raw or "auto").strip().lower() or "auto"
    if mode not in ("auto", "native", "reference"):
        raise ValueError(f"GROOTVL_OPS must be 'auto', 'native' or 'reference', got {mode!r}")
    _parsed_mode = (raw, mode)
    return mode


def _summary(exc: BaseException) -> str:
    """The most telling line of a build failure (compiler errors come after the ninja command)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    for ln in lines:
        if "error" in ln.lower() and not ln.startswith("["):
            return ln[:300]
    return (lines[0] if lines else type(exc).__name__)[:300]


def _load(kind: str) -> ModuleType | None:
    """Build/import the native module for ``kind`` ("cpu" or "cuda") once per process."""
    if kind in _modules:  # built or failed already: no lock needed to read
        return _modules[kind]
    with _lock:
        if kind not in _modules:
            from .build import build_native

            try:
                _modules[kind] = build_native(cuda=(kind == "cuda"))
            except Exception as exc:  # compiler missing, build error, ...
                _errors[kind] = f"{type(exc).__name__}: {_summary(exc)}"
                _modules[kind] = None
        return _modules[kind]


def native_error(kind: str = "cpu") -> str | None:
    """Why the native ``kind`` build failed in this process (None if it loaded or was not tried)."""
    return _errors.get(kind)


def _device_kind(device) -> str:
    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(device).type


def implementation(device=None) -> ModuleType:
    """The module (native or :mod:`reference`) implementing the backend interface for ``device``."""
    mode = _mode()
    kind = _device_kind(device)
    if mode == "reference" or kind not in ("cpu", "cuda"):
        return reference
    mod = _load(kind)
    if mod is not None:
        return mod
    fix = ("install a C++ compiler and ninja (pip install ninja)" if kind == "cpu"
           else "install the CUDA toolkit matching torch.version.cuda and set CUDA_HOME")
    if mode == "native":
        raise RuntimeError(f"GROOTVL_OPS=native but the native {kind} build failed: "
                           f"{_errors[kind]}. To fix: {fix}, or unset GROOTVL_OPS.")
    if kind not in _warned:
        _warned.add(kind)
        warnings.warn(
            f"grootvl: native {kind} tree-scan build failed ({_errors[kind]}); using the slow "
            f"pure-PyTorch reference instead. To fix: {fix}; run "
            f"`python -m grootvl_core.ops.build{' --cuda' if kind == 'cuda' else ''} --verbose` "
            "to see the full build log.",
            RuntimeWarning,
            stacklevel=3,
        )
    return reference


def backend(device=None) -> str:
    """``"cuda"``, ``"cpu"`` or ``"reference"``: what runs the op for ``device`` (default: the
    current device, CUDA when available). Builds the native extension on first call."""
    impl = implementation(device)
    return "reference" if impl is reference else _device_kind(device)


def eager_native(*tensors: torch.Tensor) -> ModuleType | None:
    """The native module for a direct call that skips the torch custom-op dispatch, or None.

    The custom ops (``grootvl::*``) exist for autograd, ``torch.compile``/``export`` tracing,
    fake tensors and dispatch modes; in plain eager inference their Python dispatch costs 30-60 us
    a call, which is most of a small block's scan at batch 1. Direct is allowed only when it
    changes nothing observable: no gradient needed, nothing tracing or compiling, no
    ``TorchDispatchMode`` or ``__torch_function__`` mode active, no profiler running (so the ops
    keep their names in traces), plain tensors on one CPU or CUDA device, and the native backend
    selected (not the reference).
    """
    if torch.compiler.is_compiling():  # first: dynamo folds it to True and traces nothing below
        return None
    if (torch._C._len_torch_dispatch_stack() or torch._C._is_torch_function_mode_enabled()
            or torch._C._autograd._profiler_enabled()):
        return None
    grad = torch.is_grad_enabled()
    device = tensors[0].device
    for t in tensors:
        if type(t) is not torch.Tensor or t.device != device or (grad and t.requires_grad):
            return None
    if device.type not in ("cpu", "cuda"):
        return None
    mod = implementation(device)
    return None if mod is reference else mod
