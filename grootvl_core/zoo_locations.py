"""Where a zoo entry's weights are: one ordered table of places, read by everything that depends on it.

The order (local places, needing no network, first) is ``_LOCATORS``; :func:`weights_locations`
lists the places that apply to an entry now and :func:`locate_weights` gives the first, which
:func:`grootvl_core.zoo.load_model`, :func:`weights_source`, :func:`is_cached`, the CLI's ``zoo``
table and the app's model pickers all read. The places are described in :mod:`grootvl_core.zoo`.
Everything here is re-exported by ``zoo``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import hub
from .zoo_registry import OfficialCheckpoint, ZooEntry, get_entry, list_models

__all__ = [
    "SOURCES",
    "OFFLINE_SOURCES",
    "WeightsLocation",
    "hub_repo_id",
    "bundled_dir",
    "cache_dir",
    "weights_locations",
    "locate_weights",
    "weights_source",
    "is_cached",
    "available_offline",
]


def hub_repo_id(entry: ZooEntry | str) -> str | None:
    """Full Hub repo id of an entry, or None when it names none that exists.

    A full ``org/name`` in ``hub_repo`` is used as is. A bare name is a mirror of converted weights
    and is opt-in: ``$GROOTVL_HUB_ORG/<hub_repo>`` only with ``GROOTVL_HUB_ORG`` set.
    """
    entry = get_entry(entry)
    if not entry.hub_repo:
        return None
    if "/" in entry.hub_repo:
        return entry.hub_repo
    # NOTE: no default organisation: whoever registered it would serve the demo's weights.
    org = os.environ.get("GROOTVL_HUB_ORG")
    return f"{org}/{entry.hub_repo}" if org else None


def _checkpoints_root() -> Path:
    """``$GROOTVL_CHECKPOINTS``; else the copy an installed wheel carries (``grootvl_core/_checkpoints``,
    see ``setup.py``); else ``checkpoints/`` of the source checkout."""
    env = os.environ.get("GROOTVL_CHECKPOINTS")
    if env:
        return Path(env)
    here = Path(__file__).resolve().parent
    shipped = here / "_checkpoints"
    return shipped if shipped.is_dir() else here.parent / "checkpoints"


def bundled_dir(entry: ZooEntry | str) -> Path | None:
    """``checkpoints/<bundled>`` of an entry if it holds ``config.json`` + ``model.safetensors``."""
    entry = get_entry(entry)
    if not entry.bundled:
        return None
    folder = _checkpoints_root() / entry.bundled
    return folder if _is_model_folder(folder) else None


def cache_dir(entry: ZooEntry | str) -> Path:
    """Converted-cache folder of an entry: ``$GROOTVL_HOME/models/<name>``."""
    return hub.grootvl_home() / "models" / get_entry(entry).name


def _is_model_folder(folder: Path) -> bool:
    return (folder / hub.CONFIG_NAME).is_file() and (folder / hub.WEIGHTS_NAME).is_file()


def _hub_snapshot(entry: ZooEntry) -> Path | None:
    """Folder of the cached Hub snapshot holding both files, or None (never touches the network)."""
    from huggingface_hub import try_to_load_from_cache

    repo = hub_repo_id(entry)
    if repo is None:
        return None
    paths = []
    for fname in (hub.CONFIG_NAME, hub.WEIGHTS_NAME):
        p = try_to_load_from_cache(repo, fname, cache_dir=hub._hf_cache_dir(), revision=entry.hub_revision)
        if not isinstance(p, str):
            return None
        paths.append(Path(p))
    return paths[0].parent if paths[0].parent == paths[1].parent else None


def _official_path(entry: ZooEntry) -> Path:
    return hub.grootvl_home() / "downloads" / entry.official.filename


@dataclass(frozen=True)
class WeightsLocation:
    """One place an entry's weights come from (an answer of :func:`locate_weights`).

    Attributes:
        kind: one of :data:`SOURCES`, or ``"none"``.
        path: the local folder (``bundled``, ``cache``, ``hub-cache``) or file (``official-downloaded``).
        repo: Hub repo id (``hub-cache``, ``hub``).
        revision: Hub revision (``hub-cache``, ``hub``).
        official: the authors' checkpoint (``official-downloaded``, ``official``).
    """

    kind: str
    path: Path | None = None
    repo: str | None = None
    revision: str | None = None
    official: OfficialCheckpoint | None = None

    @property
    def offline(self) -> bool:
        """True when loading from here needs no network."""
        return self.kind in OFFLINE_SOURCES

    def describe(self, detail: bool = False) -> str:
        """One line naming the real source (for the UI and ``zoo``); ``detail`` adds paths / ids."""
        repo = self.repo + (f"@{self.revision}" if self.revision else "") if self.repo else ""
        gdrive = f"authors' Google Drive file {self.official.filename}" if self.official else ""
        if detail and self.official:
            gdrive += f" (id {self.official.gdrive_id})"
        where = f" in {self.path}" if detail and self.path else ""
        return {
            "bundled": f"bundled{where} (offline)",
            "cache": f"converted, cached{where} (offline)",
            "hub-cache": f"Hugging Face Hub {repo}, cached{where} (offline)",
            "official-downloaded": f"{gdrive}, downloaded{where} (offline; converted on first load)",
            "hub": f"Hugging Face Hub {repo} (downloads on first use)",
            "official": f"{gdrive} (downloads + converts on first use)",
        }.get(self.kind, "no weights")


def _at_bundled(entry: ZooEntry) -> WeightsLocation | None:
    folder = bundled_dir(entry)
    return WeightsLocation("bundled", path=folder) if folder else None


def _at_cache(entry: ZooEntry) -> WeightsLocation | None:
    folder = cache_dir(entry)
    return WeightsLocation("cache", path=folder) if _is_model_folder(folder) else None


def _at_hub_cache(entry: ZooEntry) -> WeightsLocation | None:
    folder = _hub_snapshot(entry)
    if folder is None:
        return None
    return WeightsLocation("hub-cache", path=folder, repo=hub_repo_id(entry), revision=entry.hub_revision)


def _at_official_downloaded(entry: ZooEntry) -> WeightsLocation | None:
    if entry.official is None or not _official_path(entry).is_file():
        return None
    return WeightsLocation("official-downloaded", path=_official_path(entry), official=entry.official)


def _at_hub(entry: ZooEntry) -> WeightsLocation | None:
    repo = hub_repo_id(entry)
    return WeightsLocation("hub", repo=repo, revision=entry.hub_revision) if repo else None


def _at_official(entry: ZooEntry) -> WeightsLocation | None:
    return WeightsLocation("official", official=entry.official) if entry.official else None


# The order in which weights are looked for: the local ones (no network) first, then the remote
# ones. Everything that depends on the order reads this table (through :func:`weights_locations`).
_LOCATORS: tuple[tuple[str, Callable[[ZooEntry], WeightsLocation | None]], ...] = (
    ("bundled", _at_bundled),
    ("cache", _at_cache),
    ("hub-cache", _at_hub_cache),
    ("official-downloaded", _at_official_downloaded),
    ("hub", _at_hub),
    ("official", _at_official),
)
SOURCES = tuple(kind for kind, _ in _LOCATORS)
OFFLINE_SOURCES = SOURCES[:4]


def weights_locations(entry: ZooEntry | str) -> list[WeightsLocation]:
    """Every place an entry's weights can come from now, in the order :func:`load_model` tries them
    (local places only where the files are there; never touches the network)."""
    entry = get_entry(entry)
    return [loc for _, find in _LOCATORS if (loc := find(entry)) is not None]


def locate_weights(entry: ZooEntry | str) -> WeightsLocation:
    """Where an entry's weights come from now (the first of :func:`weights_locations`), or a
    location of kind ``"none"``."""
    return next(iter(weights_locations(entry)), WeightsLocation("none"))


def weights_source(entry: ZooEntry | str) -> str:
    """Kind of :func:`locate_weights`: ``bundled``, ``cache``, ``hub-cache``, ``official-downloaded``
    (convert only), ``hub``, ``official`` (download + convert) or ``none``."""
    return locate_weights(entry).kind


def is_cached(name: ZooEntry | str) -> bool:
    """True if the model loads without network (bundled, converted cache, Hub cache, or an
    official file already downloaded and only waiting to be converted)."""
    return locate_weights(name).offline


def available_offline(task: str | None = None) -> list[str]:
    """Names of the entries that :func:`load_model` can load with no network."""
    return [n for n in list_models(task) if is_cached(n)]
