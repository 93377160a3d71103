"""The zoo's registry: what an entry is (:class:`ZooEntry` and its parts) and the name -> entry map.

The table itself is in :mod:`grootvl_core.zoo`, which registers it on import; where an entry's
weights are is :mod:`grootvl_core.zoo_locations`. Everything here is re-exported by ``zoo``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["TASKS", "Preprocess", "OfficialCheckpoint", "ZooEntry", "MODELS", "register", "list_models", "get_entry"]

TASKS = ("classification", "segmentation", "generation")


@dataclass(frozen=True)
class Preprocess:
    """Image preprocessing of an entry (reference 3.6 for the ImageNet models).

    Attributes:
        input_size: side of the square network input.
        resize: shorter-side resize before the center crop (224 = crop ratio 1.0).
        interpolation: ``"bicubic"`` / ``"bilinear"``.
        mean, std: per-channel normalisation of ``[0, 1]`` RGB.
        grayscale: the model takes one channel.
    """

    input_size: int = 224
    resize: int = 224
    interpolation: str = "bicubic"
    mean: tuple[float, ...] = (0.485, 0.456, 0.406)
    std: tuple[float, ...] = (0.229, 0.224, 0.225)
    grayscale: bool = False


@dataclass(frozen=True)
class OfficialCheckpoint:
    """An official training checkpoint to download and convert (reference 3.5 / 5).

    Attributes:
        gdrive_id: Google Drive file id.
        filename: local file name under ``$GROOTVL_HOME/downloads/``.
        size: byte count when known (verified after download).
        sha256: hex digest when known (verified after download).
        use_ema: convert ``model_ema`` instead of ``model`` (reference 3.5 recommends ``model``).
    """

    gdrive_id: str
    filename: str
    size: int | None = None
    sha256: str | None = None
    use_ema: bool = False


@dataclass(frozen=True)
class ZooEntry:
    """One named model.

    Attributes:
        name: zoo name (``grootv-t``).
        task: ``"classification"``, ``"segmentation"`` or ``"generation"``.
        arch: architecture factory name (``grootv_tiny``), resolved by :func:`resolve_architecture`.
        model_class: class name in ``grootvl_core.models`` used for Hub folders (``from_pretrained``).
        kwargs: extra config passed to the factory.
        hub_repo: full ``org/name`` id of a Hub repo that exists, or the bare name of an opt-in
            mirror (``$GROOTVL_HUB_ORG/<hub_repo>``, used only with ``GROOTVL_HUB_ORG`` set).
        hub_revision: branch / tag / commit on the Hub (required for a full id mirroring ``official``).
        bundled: folder name under ``checkpoints/``.
        official: the authors' checkpoint to convert.
        preprocess: input preprocessing.
        labels: ``"imagenet-1k"`` (timm's label list) or an explicit tuple of class names.
        params: parameter count.
        flops: FLOPs as reported (string, e.g. ``"4.8G"``).
        metrics: reported numbers (from the paper / README; not re-measured).
        license: licence of the weights as a Hub licence id; ``"other"`` where it is not recorded
            (``reference-grootvl.md`` names no licence for the released GrootV checkpoints: check
            https://github.com/EasonXiao-888/GrootVL before redistributing them).
        description: one line for tables.
        tokenizer: for ``generation`` entries, the folder or Hub repo holding ``tokenizer.json``
            (used when the weights folder has none).
    """

    name: str
    task: str
    arch: str
    model_class: str = "GrootV"
    kwargs: dict[str, Any] = field(default_factory=dict)
    hub_repo: str | None = None
    hub_revision: str | None = None
    bundled: str | None = None
    official: OfficialCheckpoint | None = None
    preprocess: Preprocess = Preprocess()
    labels: str | tuple[str, ...] | None = "imagenet-1k"
    params: int | None = None
    flops: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    license: str = "other"
    description: str = ""
    tokenizer: str | None = None


MODELS: dict[str, ZooEntry] = {}


def register(entry: ZooEntry, overwrite: bool = False) -> ZooEntry:
    """Add an entry to the zoo (for plugins, bundled extras and tests).

    Args:
        entry: the entry.
        overwrite: replace an existing entry of the same name.

    Returns:
        ``entry``.

    Raises:
        ValueError: duplicate name without ``overwrite``, an unknown task, or a Hub mirror of the
            official weights named by full id without a pinned ``hub_revision``.
    """
    if entry.task not in TASKS:
        raise ValueError(f"zoo.register: task must be one of {TASKS}, got {entry.task!r}")
    if entry.official is not None and entry.hub_repo and "/" in entry.hub_repo and not entry.hub_revision:
        raise ValueError(
            f"zoo.register: {entry.name!r} mirrors its official weights at {entry.hub_repo!r}: pin hub_revision "
            "(or give a bare name, used only with GROOTVL_HUB_ORG set)"
        )
    if entry.name in MODELS and not overwrite:
        raise ValueError(f"zoo.register: {entry.name!r} is already in the zoo; pass overwrite=True to replace it")
    MODELS[entry.name] = entry
    return entry


def list_models(task: str | None = None) -> list[str]:
    """Names of the zoo entries, in table order, optionally only those of one ``task``."""
    if task is not None and task not in TASKS:
        raise ValueError(f"list_models: task must be one of {TASKS} or None, got {task!r}")
    return [n for n, e in MODELS.items() if task is None or e.task == task]


def get_entry(name: str) -> ZooEntry:
    """The entry called ``name``.

    Raises:
        ValueError: unknown name (the message lists the valid names).
    """
    if isinstance(name, ZooEntry):
        return name
    try:
        return MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; the zoo has: {', '.join(MODELS)} (see `python -m grootvl_core zoo`)"
        ) from None
