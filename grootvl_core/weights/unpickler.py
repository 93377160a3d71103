"""Opening checkpoint files without running code from them (reference 3.5, ``design.md``).

Pickles go through ``torch.load(weights_only=True)`` (with a small allow-list) first; a training
checkpoint that pickles its yacs config falls back to :class:`RestrictedUnpickler`, which turns
every class it does not know into an inert dict stub (nothing is imported) and refuses any attempt
to *call* an unknown global (``os.system`` and friends) with :class:`UnsafeCheckpointError`.
"""

from __future__ import annotations

import contextlib
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from .errors import CheckpointError, UnsafeCheckpointError, _first_line

__all__ = ["SAFETENSORS_SUFFIX", "PickledObjectStub", "RestrictedUnpickler", "read_checkpoint"]

SAFETENSORS_SUFFIX = ".safetensors"


class _StubMeta(type):
    """Metaclass of the inert stubs: instances may be *created* (NEWOBJ) but never *called*.

    ``pickle``'s REDUCE opcode calls ``callable(*args)``; for a stub that call lands here and is
    refused, so a payload such as ``os.system("...")`` never runs.
    """

    def __call__(cls, *args, **kwargs):
        raise UnsafeCheckpointError(
            f"refusing to load: the pickle asks to call {cls._pickled_name}(...) while being "
            "unpickled. Checkpoints only need tensors and plain containers; this file may be "
            "malicious. Load it only if you trust its source (torch.load(weights_only=False))."
        )


class PickledObjectStub(dict, metaclass=_StubMeta):
    """Inert stand-in for a pickled instance of a class that is not imported (e.g. yacs ``CfgNode``).

    It behaves as a ``dict`` holding the object's dict items (a ``CfgNode`` is a dict subclass),
    with the pickled ``__dict__`` / state kept in ``pickled_state`` and the original class in
    ``pickled_class``. No code of the original class runs.
    """

    _pickled_name = "<unknown>"

    @property
    def pickled_class(self) -> str:
        return type(self)._pickled_name

    def __setstate__(self, state: Any) -> None:
        # BUILD opcode: store the state, never interpret it.
        object.__setattr__(self, "pickled_state", state)

    def __reduce__(self):  # pragma: no cover - pickling a stub again keeps it a plain dict
        return (dict, (dict(self),))

    def __repr__(self) -> str:
        return f"<{type(self)._pickled_name} stub {dict.__repr__(self)}>"


def _stub_class(module: str, name: str) -> type:
    return _StubMeta(name, (PickledObjectStub,), {"_pickled_name": f"{module}.{name}", "__module__": __name__})


def _safe_reconstructor(cls, base, state):
    """Protocol 0/1 form of ``copyreg._reconstructor`` that only builds stubs or plain containers."""
    if isinstance(cls, _StubMeta):
        obj = dict.__new__(cls)
        if state is not None:
            dict.update(obj, state)
        return obj
    if cls in (dict, OrderedDict, list, set, object) and base in (object, dict, list, set):
        return cls() if state is None else cls(state)
    raise UnsafeCheckpointError(f"refusing to load: copyreg._reconstructor on {cls!r}")


def _torch_globals() -> dict[tuple[str, str], Any]:
    import torch._utils as tu

    allowed: dict[tuple[str, str], Any] = {
        ("collections", "OrderedDict"): OrderedDict,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "slice"): slice,
        ("builtins", "complex"): complex,
        ("builtins", "bytearray"): bytearray,
        ("_codecs", "encode"): _codecs_encode,  # protocol-2 pickles of bytes
        ("copyreg", "_reconstructor"): _safe_reconstructor,
        ("torch", "Size"): torch.Size,
        ("torch", "device"): torch.device,
    }
    for fn in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_parameter",
        "_rebuild_parameter_with_state",
        "_rebuild_qtensor",
        "_rebuild_device_tensor_from_numpy",
    ):
        if hasattr(tu, fn):
            allowed[("torch._utils", fn)] = getattr(tu, fn)
    return allowed


def _codecs_encode(text: str, encoding: str = "latin1") -> bytes:
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError("refusing to load: unexpected _codecs.encode arguments")
    return text.encode("latin1")


def _numpy_globals() -> dict[tuple[str, str], Any]:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is a dependency
        return {}
    allowed: dict[tuple[str, str], Any] = {("numpy", "dtype"): np.dtype, ("numpy", "ndarray"): np.ndarray}
    for mod in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(mod, "scalar")] = _numpy_scalar
        allowed[(mod, "_reconstruct")] = _numpy_reconstruct
    return allowed


def _numpy_scalar(dtype, data=None):
    import numpy as np

    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafeCheckpointError("refusing to load: numpy scalar of an object dtype")
    return np.frombuffer(data, dtype=dtype)[0]


def _numpy_reconstruct(subtype, shape, dtype):
    import numpy as np

    if subtype is not np.ndarray:
        raise UnsafeCheckpointError(f"refusing to load: numpy array subclass {subtype!r}")
    return np.ndarray.__new__(np.ndarray, shape, dtype)


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that imports nothing and calls only a fixed allow-list.

    Allowed: torch's tensor-rebuild helpers and dtypes, ``OrderedDict``, basic builtins, numpy
    scalars / arrays of plain dtypes. Any other global becomes an inert :class:`PickledObjectStub`
    subclass: it can be instantiated the way pickle protocol 2 rebuilds objects (``cls.__new__``,
    then ``__setstate__``), which is how a yacs ``CfgNode`` arrives, but calling it (how a
    ``__reduce__`` exploit runs ``os.system``) raises :class:`UnsafeCheckpointError`.

    Used as the ``Unpickler`` of the pickle module handed to ``torch.load`` (torch adds storage
    handling and ``persistent_load`` around it).
    """

    _allowed: dict[tuple[str, str], Any] | None = None

    def find_class(self, module: str, name: str) -> Any:
        if RestrictedUnpickler._allowed is None:
            RestrictedUnpickler._allowed = {**_torch_globals(), **_numpy_globals()}
        key = (module, name)
        if key in RestrictedUnpickler._allowed:
            return RestrictedUnpickler._allowed[key]
        if module == "torch" and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if module == "numpy.dtypes" or (module == "numpy" and name.endswith("DType")):
            import numpy as np

            obj = getattr(getattr(np, "dtypes", np), name, None)
            if isinstance(obj, type) and issubclass(obj, np.dtype):
                return obj
        return _stub_class(module, name)


class _RestrictedPickleModule:
    """Minimal pickle-module facade for ``torch.load(pickle_module=...)``."""

    Unpickler = RestrictedUnpickler
    UnpicklingError = pickle.UnpicklingError
    load = staticmethod(lambda f, **kw: RestrictedUnpickler(f, **kw).load())
    __name__ = "grootvl_core.weights.unpickler.restricted_pickle"


def _safe_globals() -> list[Any]:
    """Allow-list for ``torch.load(weights_only=True)``: numpy scalars (``max_accuracy`` may be one)."""
    out: list[Any] = []
    try:
        import numpy as np

        out += [np.dtype, np.ndarray]
        for mod in ("numpy._core.multiarray", "numpy.core.multiarray"):
            try:
                module = __import__(mod, fromlist=["scalar"])
                out.append(module.scalar)
                break
            except (ImportError, AttributeError):
                continue
        out += [getattr(np.dtypes, n) for n in dir(np.dtypes) if n.endswith("DType")]
    except ImportError:  # pragma: no cover
        pass
    return out


def read_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Any:
    """Open a checkpoint file without executing code from it.

    Args:
        path: ``.safetensors`` file, or a pickle (``.pth``/``.pt``/``.bin``/``.ckpt``; also any other
            suffix, read as a pickle).
        map_location: where tensors go.

    Returns:
        ``dict[str, Tensor]`` for safetensors; for pickles, what was saved (usually a dict), with
        unknown classes (the yacs config) replaced by :class:`PickledObjectStub` instances.

    Raises:
        CheckpointError: missing, empty, truncated or corrupt file (the message names the file).
        UnsafeCheckpointError: the pickle tried to call a function while loading.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path} (expected a .safetensors or .pth file)")
    if path.stat().st_size == 0:
        raise CheckpointError(f"checkpoint {path} is empty (0 bytes); delete it and download it again")
    if path.suffix == SAFETENSORS_SUFFIX:
        from safetensors.torch import load_file

        try:
            return load_file(str(path), device=str(map_location))
        except Exception as exc:  # safetensors raises SafetensorError / OSError on corrupt files
            raise CheckpointError(
                f"could not read safetensors file {path}: {_first_line(exc)}. The file is truncated "
                "or corrupt; delete it and download or convert it again."
            ) from None
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        first_error = _first_line(exc)
    except Exception as exc:  # zip / EOF / "invalid load key" errors on truncated files
        raise CheckpointError(
            f"could not read checkpoint {path}: {_first_line(exc)}. The file is truncated or corrupt "
            "(or not a PyTorch checkpoint); delete it and download it again."
        ) from None
    # weights_only refused a global (typically the pickled yacs CfgNode): restricted unpickler.
    try:
        with _warnings_suppressed():
            return torch.load(
                path, map_location=map_location, weights_only=False, pickle_module=_RestrictedPickleModule
            )
    except UnsafeCheckpointError as exc:
        raise UnsafeCheckpointError(f"{path}: {exc}") from None
    except Exception as exc:
        raise CheckpointError(
            f"could not read checkpoint {path}: {_first_line(exc)} (weights-only loading said: "
            f"{first_error}). The file is truncated, corrupt, or not a PyTorch checkpoint."
        ) from None


@contextlib.contextmanager
def _warnings_suppressed():
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield
