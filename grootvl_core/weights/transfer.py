"""Moving files: Hub and Google Drive downloads, Hub uploads, checksums, offline detection, the cache root."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from .errors import CheckpointError, OfflineError, _first_line

__all__ = ["grootvl_home", "is_offline", "hub_download", "gdrive_download", "sha256sum", "push_folder"]


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
