"""Which implementation runs the op: the one place that decides (design.md "Op API").

Per device:

- CPU tensors: the compiled C++ extension ``grootvl_native`` when it builds, else the pure-PyTorch
  reference with ONE warning that says what failed and how to fix it.
- GPU tensors: a chain, each GPU backend serving a device only after it passed the self-check
  (:mod:`.selfcheck`) on that device: the compiled CUDA extension ``grootvl_native_cuda`` (needs
  nvcc at first use), else the Triton kernels (:mod:`.triton_backend`, no toolchain), else the
  reference. Exactly one warning per device when a backend is skipped: which, why, what runs.
- Any other device: the reference.

``GROOTVL_OPS`` forces a choice (a forced backend that cannot serve raises, saying why):
``reference`` everywhere; ``native`` the compiled extension (CPU, or CUDA on GPUs); ``cuda`` the
same (CPU tensors use its CPU kernels); ``triton`` the Triton kernels on GPUs and, with
``TRITON_INTERPRET=1`` set before Triton is imported, on CPU tensors in Triton's interpreter (how
CI runs every kernel without a GPU). Unset or ``auto``: the chains above.
"""

from __future__ import annotations

import os
import threading
import warnings
from types import ModuleType

import torch

from . import reference

__all__ = [
    "backend",
    "eager_native",
    "fused_cpu",
    "fused_cpu_eligible",
    "implementation",
    "load_gpu_backend",
    "native_error",
    "triton_interpreted",
]

_MODES = ("auto", "native", "reference", "cuda", "triton")
_GPU_CHAIN = {"auto": ("cuda", "triton"), "native": ("cuda",), "cuda": ("cuda",), "triton": ("triton",)}

_lock = threading.RLock()
_modules: dict[str, ModuleType | None] = {}  # "cpu" / "cuda" native builds, "triton"
_errors: dict[str, str] = {}
_missing_sources: set[str] = set()  # builds that failed because the installation has no C++ sources
_checked: dict[tuple[str, str], tuple[bool, str]] = {}  # (backend, device) -> (passed, why not)
_resolved: dict[tuple[str, str, int | None], ModuleType] = {}  # (mode, device type, index)
_warned: set[str] = set()

_parsed_mode: tuple[str | None, str] = (None, "auto")  # (raw GROOTVL_OPS, its mode), parsed once per value


def _mode() -> str:
    # read on every call (tests and users switch it at run time); parsed only when it changes
    global _parsed_mode
    raw = os.environ.get("GROOTVL_OPS")
    if raw == _parsed_mode[0]:
        return _parsed_mode[1]
    mode = (raw or "auto").strip().lower() or "auto"
    if mode not in _MODES:
        raise ValueError(f"GROOTVL_OPS must be one of {', '.join(_MODES)}, got {mode!r}")
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
            except Exception as exc:  # compiler missing, sources missing, build error, ...
                _errors[kind] = f"{type(exc).__name__}: {_summary(exc)}"
                if isinstance(exc, FileNotFoundError):  # build.NativeSourcesMissing
                    _missing_sources.add(kind)
                _modules[kind] = None
        return _modules[kind]


def triton_interpreted() -> bool:
    """Whether ``TRITON_INTERPRET=1`` asks for Triton's CPU interpreter."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in ("1", "true", "yes", "on")


def _load_triton() -> ModuleType | None:
    if "triton" in _modules:
        return _modules["triton"]
    with _lock:
        if "triton" not in _modules:
            try:
                from . import triton_backend

                _modules["triton"] = triton_backend
            except Exception as exc:  # not installed, or a Triton too old for the kernels
                _errors["triton"] = f"{type(exc).__name__}: {_summary(exc)}"
                _modules["triton"] = None
        return _modules["triton"]


def native_error(kind: str = "cpu") -> str | None:
    """Why the ``kind`` backend ("cpu", "cuda" or "triton") failed to load in this process (None if
    it loaded or was not tried)."""
    return _errors.get(kind)


def _device_label(device: torch.device) -> str:
    if device.type == "cuda" and device.index is None:
        return f"cuda:{torch.cuda.current_device()}"
    return str(device)


def load_gpu_backend(name: str, device: torch.device) -> tuple[ModuleType | None, str]:
    """``(module, "")`` for GPU backend ``name`` ("cuda" or "triton") on ``device``, built or
    imported, NOT yet self-checked; ``(None, why)`` when it cannot run there."""
    if name == "cuda":
        if device.type != "cuda":
            return None, "the compiled CUDA op takes CUDA tensors only"
        mod = _load("cuda")
        if mod is None:
            return None, f"build failed ({_errors['cuda']})"
        return mod, ""
    if device.type == "cpu" and not triton_interpreted():
        return None, (
            "Triton kernels take GPU tensors; set TRITON_INTERPRET=1 before Python starts "
            "to run them on the CPU in Triton's interpreter"
        )
    mod = _load_triton()
    if mod is None:
        return None, f"cannot import Triton ({_errors['triton']})"
    if device.type == "cpu" and not mod.interpreted():
        return None, "Triton was imported before TRITON_INTERPRET=1 was set: set it before Python starts"
    return mod, ""


def _passes(name: str, mod: ModuleType, device: torch.device) -> tuple[bool, str]:
    """The self-check of ``name`` on ``device``, run once per process."""
    key = (name, _device_label(device))
    if key not in _checked:
        from . import selfcheck

        result = selfcheck.run(mod, device, name)
        _checked[key] = (result.passed, "" if result.passed else f"self-check failed: {result.detail}")
    return _checked[key]


def _gpu_backend(mode: str, device: torch.device) -> ModuleType:
    label = _device_label(device)
    skipped = []
    for name in _GPU_CHAIN[mode]:
        mod, why = load_gpu_backend(name, device)
        if mod is not None:
            ok, why = _passes(name, mod, device)
            if ok:
                if skipped:
                    _warn_once(label, f"grootvl: {_skips(skipped)} on {label}; the {name} backend serves it instead.")
                return mod
        if mode != "auto":
            raise RuntimeError(
                f"GROOTVL_OPS={mode} but the {name} tree-scan backend cannot serve {label}: "
                f"{why}. Unset GROOTVL_OPS to fall back, or fix the cause."
            )
        skipped.append((name, why))
    _warn_once(
        label,
        f"grootvl: {_skips(skipped)} on {label}; using the slow pure-PyTorch reference "
        "instead. Run `python -m grootvl_core.ops.selfcheck` for details.",
    )
    return reference


def _skips(skipped: list[tuple[str, str]]) -> str:
    return "; ".join(f"the {name} tree-scan backend was skipped ({why})" for name, why in skipped)


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        warnings.warn(message, RuntimeWarning, stacklevel=4)


def _cpu_backend(mode: str) -> ModuleType:
    if mode == "triton":
        mod, why = load_gpu_backend("triton", torch.device("cpu"))
        if mod is not None:
            ok, why = _passes("triton", mod, torch.device("cpu"))
            if ok:
                return mod
        raise RuntimeError(f"GROOTVL_OPS=triton but the triton tree-scan backend cannot serve the CPU: {why}.")
    mod = _load("cpu")
    if mod is not None:
        return mod
    err = _errors["cpu"]
    fix = (
        "reinstall grootvl so that its C++ sources are present"
        if "cpu" in _missing_sources
        else "install a C++ compiler and ninja (pip install ninja)"
    )
    if mode in ("native", "cuda"):
        raise RuntimeError(
            f"GROOTVL_OPS={mode} but the native cpu build failed: {err}. To fix: {fix}, or unset GROOTVL_OPS."
        )
    _warn_once(
        "cpu",
        f"grootvl: native cpu tree-scan build failed ({err}); using the slow pure-PyTorch "
        f"reference instead. To fix: {fix}; run `python -m grootvl_core.ops.build --verbose` "
        "to see the full build log.",
    )
    return reference


def _device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def implementation(device=None) -> ModuleType:
    """The module (native, Triton or :mod:`reference`) implementing the backend interface for
    ``device``; resolved (built, imported, self-checked) once per device and ``GROOTVL_OPS``."""
    mode = _mode()
    dev = _device(device)
    key = (mode, dev.type, dev.index)
    mod = _resolved.get(key)
    if mod is not None:
        return mod
    with _lock:
        if key not in _resolved:
            if mode == "reference" or dev.type not in ("cpu", "cuda"):
                mod = reference
            elif dev.type == "cpu":
                mod = _cpu_backend(mode)
            else:
                mod = _gpu_backend(mode, dev)
            _resolved[key] = mod
        return _resolved[key]


def backend(device=None) -> str:
    """``"cuda"``, ``"triton"``, ``"cpu"`` or ``"reference"``: what runs the op for ``device``
    (default: the current device, CUDA when available). Builds, imports and self-checks on first
    call."""
    impl = implementation(device)
    if impl is reference:
        return "reference"
    if getattr(impl, "NAME", None) == "triton":
        return "triton"
    return _device(device).type


def fused_cpu(*tensors: torch.Tensor) -> ModuleType | None:
    """The native CPU module when its fused inference kernels (``grid_tree``, ``ssm_*``,
    ``depthwise_conv_silu``, ``grid_cosine_weights``) may run on ``tensors``: all on the CPU and
    the compiled CPU op serving it. None otherwise (the callers then use the reference formula)."""
    if any(t.device.type != "cpu" for t in tensors):
        return None
    impl = implementation(torch.device("cpu"))
    return None if impl is reference or getattr(impl, "NAME", None) == "triton" else impl


def _unobserved() -> bool:
    """True when nothing can observe an op call beyond its result: not compiling or tracing, no
    ``TorchDispatchMode`` or ``__torch_function__`` mode active, no profiler running."""
    if torch.compiler.is_compiling():  # first: dynamo folds it to True and traces nothing below
        return False
    return not (
        torch._C._len_torch_dispatch_stack()
        or torch._C._is_torch_function_mode_enabled()
        or torch._C._autograd._profiler_enabled()
    )


def fused_cpu_eligible(*tensors: torch.Tensor, dtype: torch.dtype = torch.float32) -> ModuleType | None:
    """THE rule for "may this call run a fused native CPU inference kernel?"; the module, or None.

    Used by every op with such a kernel (``depthwise_conv_silu``, ``ssm_discretize``,
    ``ssm_output``, the eager ``grid_spanning_tree``). Allowed only when it changes nothing
    observable: nothing compiling or tracing, no dispatch or ``__torch_function__`` mode, no
    profiler (see :func:`eager_native`), no gradient needed by any of ``tensors``, all of them
    plain tensors or parameters on the CPU with ``dtype``, and the compiled CPU op serving (not the
    reference, not Triton). Otherwise the caller runs its PyTorch formula.
    """
    if not _unobserved():
        return None
    grad = torch.is_grad_enabled()
    for t in tensors:
        # NOTE: nn.Parameter is allowed (module weights reach the kernels as parameters); it
        # disables __torch_function__, so a parameter is a plain tensor to the dispatcher.
        if (
            type(t) not in (torch.Tensor, torch.nn.Parameter)
            or t.device.type != "cpu"
            or t.dtype != dtype
            or (grad and t.requires_grad)
        ):
            return None
    return fused_cpu(*tensors)


def eager_native(*tensors: torch.Tensor) -> ModuleType | None:
    """The backend module for a direct call that skips the torch custom-op dispatch, or None.

    The custom ops (``grootvl::*``) exist for autograd, ``torch.compile``/``export`` tracing,
    fake tensors and dispatch modes; in plain eager inference their Python dispatch costs 30-60 us
    a call, which is most of a small block's scan at batch 1. Direct is allowed only when it
    changes nothing observable: no gradient needed, nothing tracing or compiling, no
    ``TorchDispatchMode`` or ``__torch_function__`` mode active, no profiler running (so the ops
    keep their names in traces), plain tensors on one CPU or CUDA device, and a native or Triton
    backend selected (not the reference).
    """
    if not _unobserved():
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
