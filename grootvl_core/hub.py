"""Safe checkpoint loading, Hub / Google Drive downloads and conversion to Hub folders.

Reference: ``reference-grootvl.md`` section 3.5 (published checkpoint files: a ``torch.save`` of a
dict with ``model``, ``model_ema``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``max_accuracy``,
``amp`` and a pickled yacs ``CfgNode``), section 3.4 (state-dict keys) and section 5 (where the
official files live). ``design.md``: untrusted files are loaded through safetensors,
``torch.load(weights_only=True)`` or a restricted unpickler, never by executing code.

What this module does, in order of use:

* :func:`read_checkpoint` opens a ``.safetensors`` / ``.pth`` / ``.pt`` / ``.bin`` file without
  running code from it. Pickles go through ``torch.load(weights_only=True)`` (with a small
  allow-list) first; a training checkpoint that pickles its yacs config falls back to
  :class:`RestrictedUnpickler`, which turns every class it does not know into an inert dict stub
  (nothing is imported) and refuses any attempt to *call* an unknown global (``os.system`` and
  friends) with :class:`UnsafeCheckpointError`.
* :func:`extract_state_dict` picks ``model`` (default) or ``model_ema`` out of a training checkpoint.
* :func:`load_weights` runs the architecture's ``checkpoint_filter_fn`` (the key remap lives beside
  the model, see ``style-anchors.md``), compares keys and shapes with the model and loads strictly;
  every missing, unexpected or shape-mismatched key is named in :class:`CheckpointError`.
* :func:`hub_download` / :func:`gdrive_download` fetch files with timeouts and clear offline errors.
* :func:`convert_checkpoint` writes ``config.json`` + ``model.safetensors`` + ``README.md`` (a Hub
  folder); :func:`push_folder` uploads such a folder through ``huggingface_hub.HfApi``.

The key remap for foreign layouts is the architecture's business (``models/grootv.py``); this
module only does I/O, safety and reporting.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import pickle
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import torch

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "OfflineError",
    "RestrictedUnpickler",
    "PickledObjectStub",
    "grootvl_home",
    "is_offline",
    "read_checkpoint",
    "extract_state_dict",
    "diff_state_dict",
    "load_weights",
    "load_pretrained_folder",
    "hub_download",
    "gdrive_download",
    "sha256sum",
    "convert_checkpoint",
    "write_model_card",
    "push_folder",
]

PICKLE_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".pkl")
SAFETENSORS_SUFFIX = ".safetensors"
CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class CheckpointError(ValueError):
    """A checkpoint file is unreadable, corrupt or does not fit the model (names file and keys)."""


class UnsafeCheckpointError(CheckpointError):
    """A pickled checkpoint tried to call a function or class while being loaded."""


class OfflineError(RuntimeError):
    """A download was needed but the network is off (``HF_HUB_OFFLINE=1``) or unreachable."""


# --------------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------------


def grootvl_home() -> Path:
    """Root of grootvl's own cache: ``$GROOTVL_HOME``, default ``~/.cache/grootvl``.

    Returns:
        Path (not created): ``downloads/`` holds raw official files, ``models/<name>/`` the
        converted ``config.json`` + ``model.safetensors`` folders.
    """
    env = os.environ.get("GROOTVL_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "grootvl"


def is_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (or ``GROOTVL_OFFLINE``) is set to a true value, read at call time."""
    for var in ("HF_HUB_OFFLINE", "GROOTVL_OFFLINE"):
        if os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}:
            return True
    return False


def _hf_cache_dir() -> str | None:
    """The Hugging Face cache folder as the environment says *now* (``HF_HUB_CACHE``, ``HF_HOME``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return os.environ["HF_HUB_CACHE"]
    if os.environ.get("HF_HOME"):
        return os.path.join(os.environ["HF_HOME"], "hub")
    return None  # huggingface_hub's default


# --------------------------------------------------------------------------------------------
# Restricted unpickling (reference 3.5: the training checkpoints pickle a yacs CfgNode)
# --------------------------------------------------------------------------------------------


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
    return _StubMeta(
        name, (PickledObjectStub,), {"_pickled_name": f"{module}.{name}", "__module__": "grootvl_core.hub"}
    )


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
    __name__ = "grootvl_core.hub.restricted_pickle"


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


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0].split(". ")[0][:200]


# --------------------------------------------------------------------------------------------
# Weights extraction, key checking, strict loading
# --------------------------------------------------------------------------------------------


def extract_state_dict(
    checkpoint: Any, use_ema: bool = False, source: str = "checkpoint"
) -> dict[str, torch.Tensor]:
    """Pick the weights out of a training checkpoint (reference 3.5).

    Args:
        checkpoint: what :func:`read_checkpoint` returned: a bare state dict, or a dict with
            ``model`` / ``model_ema`` / ``state_dict`` / ``module``.
        use_ema: take ``model_ema`` instead of ``model``.
        source: file name used in error messages.

    Returns:
        A ``{key: tensor}`` dict (possibly still nested or ``module.``-prefixed: the architecture's
        ``checkpoint_filter_fn`` finishes the unwrapping).

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
    elif "model" in checkpoint and isinstance(checkpoint["model"], Mapping):
        sd = checkpoint["model"]
    else:
        sd = checkpoint
    if not isinstance(sd, Mapping):
        raise CheckpointError(f"{source}: the weights entry is a {type(sd).__name__}, not a dict of tensors")
    return dict(sd)


def diff_state_dict(
    model: torch.nn.Module, state_dict: Mapping[str, Any]
) -> tuple[list[str], list[str], list[str]]:
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
    missing, unexpected, mismatched = diff_state_dict(model, state_dict)
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
    model.load_state_dict(state_dict, strict=True)
    return model


def load_pretrained_folder(
    cls: type, folder: str | os.PathLike, device: str | torch.device = "cpu"
) -> torch.nn.Module:
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
        with contextlib.redirect_stdout(
            io.StringIO()
        ):  # the mixin prints "Loading weights from local directory"
            model = cls.from_pretrained(str(folder), map_location=str(device), strict=True)
    except (RuntimeError, OSError, TypeError, ValueError, KeyError) as exc:  # keys, shapes, vocab
        msg = str(exc).strip()
        raise CheckpointError(f"could not load {folder / WEIGHTS_NAME} into {cls.__name__}: {msg}") from None
    except Exception as exc:  # safetensors' SafetensorError on a corrupt file
        raise CheckpointError(
            f"could not read {folder / WEIGHTS_NAME}: {_first_line(exc)}; the file is corrupt"
        ) from None
    return model.eval()


# --------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------


def hub_download(repo_id: str, filename: str, revision: str | None = None) -> Path:
    """Fetch one file of a Hugging Face model repo into the HF cache (progress bar, cache reuse).

    Offline (``HF_HUB_OFFLINE=1``) only the cache is consulted.

    Args:
        repo_id: ``"org/name"``.
        filename: file inside the repo, e.g. ``"model.safetensors"``.
        revision: branch, tag or commit; default ``main``.

    Returns:
        Local path of the cached file.

    Raises:
        OfflineError: offline / unreachable and the file is not cached.
        CheckpointError: the repo or file does not exist.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import (
        EntryNotFoundError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    offline = is_offline()
    try:
        return Path(
            hf_hub_download(
                repo_id,
                filename,
                revision=revision,
                cache_dir=_hf_cache_dir(),
                local_files_only=offline,
                etag_timeout=10,
                library_name="grootvl",
            )
        )
    except (RepositoryNotFoundError, RevisionNotFoundError) as exc:
        raise CheckpointError(
            f"Hub repo {repo_id!r} (revision {revision or 'main'}) not found or not accessible: {_first_line(exc)}"
        ) from None
    except LocalEntryNotFoundError:  # (a subclass of EntryNotFoundError in recent huggingface_hub)
        why = "HF_HUB_OFFLINE=1 is set" if offline else "the Hugging Face Hub could not be reached"
        raise OfflineError(f"{filename} of {repo_id} is not in the local cache and {why}") from None
    except EntryNotFoundError:
        raise CheckpointError(f"Hub repo {repo_id!r} has no file {filename!r}") from None
    except OSError as exc:  # connection errors surface as requests/httpx OSError subclasses
        raise OfflineError(f"could not download {filename} from {repo_id}: {_first_line(exc)}") from None


def sha256sum(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _verify_file(path: Path, size: int | None, sha256: str | None) -> None:
    if size is not None and path.stat().st_size != size:
        raise CheckpointError(
            f"{path} has {path.stat().st_size} bytes, expected {size}: incomplete download; delete it and retry"
        )
    if sha256 is not None:
        actual = sha256sum(path)
        if actual.lower() != sha256.lower():
            raise CheckpointError(
                f"{path} has sha256 {actual}, expected {sha256}: corrupt or different file; delete it and retry"
            )


def gdrive_download(
    file_id: str,
    dest: str | os.PathLike,
    size: int | None = None,
    sha256: str | None = None,
    timeout: float = 30.0,
    retries: int = 2,
) -> Path:
    """Download a Google Drive file by id with ``gdown`` (progress, resume), then verify it.

    An existing ``dest`` that passes verification is reused without touching the network.

    Args:
        file_id: the Drive id (reference 5 lists the official ones).
        dest: target file path; parent folders are created; written via ``dest + '.part'``.
        size: expected byte count, when known.
        sha256: expected hex digest, when known.
        timeout: seconds for connect / read of each request (never hangs).
        retries: retries on transient errors.

    Returns:
        ``dest`` as a Path.

    Raises:
        OfflineError: ``HF_HUB_OFFLINE``/``GROOTVL_OFFLINE`` set, or Drive unreachable.
        CheckpointError: downloaded file fails size / sha256 checks.
    """
    dest = Path(dest)
    if dest.is_file():
        _verify_file(dest, size, sha256)
        return dest
    if is_offline():
        raise OfflineError(
            f"{dest.name} (Google Drive id {file_id}) is not downloaded and offline mode is on (HF_HUB_OFFLINE=1)"
        )
    import gdown

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    try:
        out = gdown.download(
            id=file_id,
            output=str(part),
            quiet=False,
            resume=True,
            timeout=(timeout, timeout),
            retries=retries,
        )
    except Exception as exc:  # gdown raises requests errors or FileURLRetrievalError
        text = str(exc)
        if any(s in text for s in ("NameResolution", "Max retries", "ConnectionError", "timed out")):
            why = "Google Drive could not be reached (no network?)"
        else:
            why = _first_line(exc)
        raise OfflineError(f"could not download Google Drive file {file_id}: {why}") from None
    if out is None or not part.is_file():
        raise OfflineError(f"could not download Google Drive file {file_id} (gdown returned nothing)")
    _verify_file(part, size, sha256)
    part.replace(dest)
    return dest


# --------------------------------------------------------------------------------------------
# Conversion to a Hub folder
# --------------------------------------------------------------------------------------------


def convert_checkpoint(
    checkpoint: str | os.PathLike,
    model: torch.nn.Module,
    out_dir: str | os.PathLike,
    filter_fn: Callable[[dict, torch.nn.Module], dict] | None = None,
    use_ema: bool = False,
    card: Mapping[str, Any] | None = None,
) -> Path:
    """Convert a checkpoint into a Hub folder: ``config.json``, ``model.safetensors``, ``README.md``.

    Args:
        checkpoint: source file (official training checkpoint, bare state dict, or safetensors).
        model: freshly built ``PyTorchModelHubMixin`` model of the matching architecture.
        out_dir: destination folder (created).
        filter_fn: the architecture's ``checkpoint_filter_fn``.
        use_ema: convert ``model_ema`` instead of ``model``.
        card: model-card fields for :func:`write_model_card` (``title``, ``arch``, ``metrics``, ...).

    Returns:
        ``out_dir`` as a Path.

    Raises:
        CheckpointError: see :func:`load_weights`.
    """
    load_weights(model, checkpoint, filter_fn=filter_fn, use_ema=use_ema)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    info = dict(card or {})
    info.setdefault("source", Path(checkpoint).name)
    info.setdefault("source_sha256", sha256sum(checkpoint))
    info.setdefault("weights", "model_ema" if use_ema else "model")
    info.setdefault("num_parameters", sum(p.numel() for p in model.parameters()))
    write_model_card(out, info)
    return out


def write_model_card(folder: str | os.PathLike, info: Mapping[str, Any]) -> Path:
    """Write ``README.md`` (a Hub model card with YAML metadata) into ``folder``.

    Args:
        folder: the Hub folder.
        info: ``title``, ``arch``, ``task``, ``license``, ``metrics`` (dict), ``source``,
            ``source_sha256``, ``weights``, ``num_parameters``, ``repo_id``; all optional.

    Returns:
        Path of the written file.
    """
    task = info.get("task", "classification")
    pipeline = {
        "classification": "image-classification",
        "segmentation": "image-segmentation",
        "generation": "text-generation",
    }.get(task, task)
    title = info.get("title", info.get("arch", "GrootVL model"))
    lines = [
        "---",
        f"license: {info.get('license', 'other')}",
        "library_name: grootvl",
        f"pipeline_tag: {pipeline}",
        "tags:",
        "- grootvl",
        "- tree-scan",
        "- state-space-model",
        "---",
        "",
        f"# {title}",
        "",
        'GrootVL ("Tree Topology is All You Need in State Space Model", NeurIPS 2024): a state space '
        "model that scans the input along a minimum spanning tree built from the input itself.",
        "",
    ]
    if info.get("arch"):
        lines.append(f"- architecture: `{info['arch']}`")
    if info.get("num_parameters"):
        lines.append(f"- parameters: {int(info['num_parameters']):,}")
    if info.get("source"):
        lines.append(f"- converted from: `{info['source']}` (weights: `{info.get('weights', 'model')}`)")
    if info.get("source_sha256"):
        lines.append(f"- source sha256: `{info['source_sha256']}`")
    metrics = info.get("metrics") or {}
    if metrics:
        lines += [
            "",
            "Reported by the authors (not re-measured here):",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    repo = info.get("repo_id", "<this-repo>")
    lines += [
        "",
        "## Use",
        "",
        "```python",
        "from grootvl_core.models import GrootV",
        f'model = GrootV.from_pretrained("{repo}").eval()',
        "```",
        "",
        "## Source",
        "",
        "Paper: GrootVL: Tree Topology is All You Need in State Space Model (NeurIPS 2024, "
        "arXiv:2406.02395). Original code and checkpoints: https://github.com/EasonXiao-888/GrootVL.",
        "",
    ]
    path = Path(folder) / "README.md"
    path.write_text("\n".join(lines))
    return path


def push_folder(
    folder: str | os.PathLike, repo_id: str, private: bool | None = None, commit_message: str | None = None
) -> str:
    """Upload a Hub folder (``config.json``, ``model.safetensors``, ``README.md``) to ``repo_id``.

    Args:
        folder: local folder written by :func:`convert_checkpoint`.
        repo_id: ``"org/name"``; created if absent.
        private: repository visibility for a new repo.
        commit_message: commit message; default names the folder.

    Returns:
        The commit URL returned by ``HfApi.upload_folder``.

    Raises:
        OfflineError: offline mode is on.
    """
    if is_offline():
        raise OfflineError(f"cannot push to {repo_id}: offline mode is on (unset HF_HUB_OFFLINE to upload)")
    from huggingface_hub import HfApi

    api = HfApi()
    repo = api.create_repo(repo_id=repo_id, private=private, exist_ok=True, repo_type="model")
    repo_id = getattr(repo, "repo_id", repo_id)
    result = api.upload_folder(
        repo_id=repo_id,
        repo_type="model",
        folder_path=str(folder),
        commit_message=commit_message or f"Upload {Path(folder).name} with grootvl",
    )
    return str(result)
