"""The model zoo: every named model the CLI and the demo can offer, as one table of data.

Reference: ``reference-grootvl.md`` section 5 (reported numbers and the official Google Drive
ids), 3.1 (configurations, parameter counts, FLOPs), 3.6 (evaluation preprocessing); ``design.md``
("Zoo"). Like timm's ``default_cfgs`` and SAM's ``sam_model_registry``, entries are plain data; the
few functions below the table resolve them.

Where weights come from, in the order :func:`load_model` tries them (the table ``_LOCATORS`` of
:mod:`grootvl_core.zoo_locations`;
:func:`locate_weights` answers for one entry, and everything else reads that answer):

1. ``bundled``: a folder ``checkpoints/<bundled>/`` (``config.json`` + ``model.safetensors``) in
   the repository, or its copy inside an installed wheel (``grootvl_core/_checkpoints/``), or
   under ``$GROOTVL_CHECKPOINTS``; works offline.
2. ``cache``: the local converted cache ``$GROOTVL_HOME/models/<name>/`` (default ``~/.cache/grootvl``).
3. ``hub-cache``: a Hub repo (see 5) already in the usual Hugging Face cache (``HF_HUB_CACHE``).
4. ``official-downloaded``: the authors' file of (6) already downloaded, converted on first load.
5. ``hub``: a Hugging Face repo. A full ``org/name`` in ``hub_repo`` names a repo that exists
   (``state-spaces/mamba-130m-hf``); a table entry mirroring converted weights there must pin
   ``hub_revision``. A bare name is an opt-in mirror, ``$GROOTVL_HUB_ORG/<hub_repo>``, looked for
   only with ``GROOTVL_HUB_ORG`` set (there is no default organisation).
6. ``official``: the authors' training checkpoint on Google Drive (reference 5), downloaded once
   with gdown into ``$GROOTVL_HOME/downloads/``, verified, then converted once into (2).

With ``HF_HUB_OFFLINE=1`` (or no network) only (1)-(4) work; the error raised otherwise lists
:func:`available_offline`.

Adding a model: append a :class:`ZooEntry` to ``_ENTRIES`` (or call :func:`register`).
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from . import hub
from .data.fashion_mnist import FASHION_MNIST_CLASSES, FASHION_MNIST_MEAN, FASHION_MNIST_STD
from .data.scenes import SCENE_CLASSES, SCENE_PALETTE
from .zoo_locations import (
    OFFLINE_SOURCES,
    SOURCES,
    WeightsLocation,
    _official_path,
    available_offline,
    bundled_dir,
    cache_dir,
    hub_repo_id,
    is_cached,
    locate_weights,
    weights_locations,
    weights_source,
)
from .zoo_registry import MODELS, TASKS, OfficialCheckpoint, Preprocess, ZooEntry, get_entry, list_models, register

__all__ = [
    "Preprocess",
    "OfficialCheckpoint",
    "ZooEntry",
    "MODELS",
    "TASKS",
    "SOURCES",
    "OFFLINE_SOURCES",
    "WeightsLocation",
    "register",
    "list_models",
    "get_entry",
    "hub_repo_id",
    "bundled_dir",
    "load_entry_tokenizer",
    "cache_dir",
    "is_cached",
    "available_offline",
    "resolve_architecture",
    "build_model",
    "load_model",
    "load_local_weights",
    "weights_locations",
    "locate_weights",
    "weights_source",
]


# ------------------------------------------------------------------------------------------------
# The table (reference 5: acc@1, params, FLOPs, Google Drive ids; 3.1: exact parameter counts)
# ------------------------------------------------------------------------------------------------

_ENTRIES: list[ZooEntry] = [
    ZooEntry(
        name="grootv-t",
        task="classification",
        arch="grootv_tiny",
        hub_repo="grootv-tiny-in1k",
        official=OfficialCheckpoint(gdrive_id="1OIiMBxk92WhPssRg0pv0U5y8ZBtHq2eQ", filename="grootv_t_1k_224.pth"),
        params=29_958_600,
        flops="4.8G",
        metrics={"imagenet-1k acc@1": 83.4},
        description="GrootV-T, ImageNet-1k, 224x224",
    ),
    ZooEntry(
        name="grootv-s",
        task="classification",
        arch="grootv_small",
        hub_repo="grootv-small-in1k",
        official=OfficialCheckpoint(gdrive_id="1G6DdEI3JDSltfbmZmcqz79rxM1t01K_8", filename="grootv_s_1k_224.pth"),
        params=51_331_624,
        flops="8.5G",
        metrics={"imagenet-1k acc@1": 84.2},
        description="GrootV-S, ImageNet-1k, 224x224",
    ),
    ZooEntry(
        name="grootv-b",
        task="classification",
        arch="grootv_base",
        hub_repo="grootv-base-in1k",
        official=OfficialCheckpoint(gdrive_id="1-8rwMVinj_fV9YMlzx6fGwdjxyLcjd3w", filename="grootv_b_1k_224.pth"),
        params=90_597_096,
        flops="15.1G",
        metrics={"imagenet-1k acc@1": 84.8},
        description="GrootV-B, ImageNet-1k, 224x224",
    ),
    # Language (reference 4.1, 5): Mamba-130m as published on the Hub, run as plain Mamba
    # (tree_scale=0), and the published GrootL fine-tune (a Mamba checkpoint run with tree_scale=0.3).
    ZooEntry(
        name="mamba-130m",
        task="generation",
        arch="mamba_130m",
        model_class="MambaLM",
        hub_repo="state-spaces/mamba-130m-hf",
        labels=None,
        params=129_135_360,
        metrics={
            "PIQA": 64.5,
            "Arc-E": 48.0,
            "sst": 65.6,
            "WinoGrande": 51.8,
            "LAMBADA ppl": 16.1,
            "race": 27.4,
            "OpenbookQA": 16.8,
        },
        license="apache-2.0",
        description="Mamba-130m (plain, tree_scale=0), Hugging Face format",
        tokenizer="state-spaces/mamba-130m-hf",
    ),
    ZooEntry(
        name="grootl-130m",
        task="generation",
        arch="grootl_130m",
        model_class="GrootL",
        official=OfficialCheckpoint(gdrive_id="1oby7sHYUxg4TIqFjIXSk8GB98fa9kSBm", filename="grootl_130m.bin"),
        labels=None,
        params=129_135_360,
        metrics={
            "PIQA": 65.0,
            "Arc-E": 49.8,
            "sst": 69.5,
            "WinoGrande": 51.1,
            "LAMBADA ppl": 15.9,
            "race": 28.9,
            "OpenbookQA": 19.2,
        },
        description="GrootL-130m: Mamba-130m + tree scanning (tree_scale=0.3), LoRA fine-tune merged",
        tokenizer="state-spaces/mamba-130m-hf",
    ),
]


def _fashion_mnist_preprocess(side: int) -> Preprocess:
    """The bundled models' input: one grey channel resized to ``side`` (no crop), Fashion-MNIST mean/std."""
    return Preprocess(
        input_size=side,
        resize=side,
        interpolation="bilinear",
        mean=FASHION_MNIST_MEAN,
        std=FASHION_MNIST_STD,
        grayscale=True,
    )


# The project's own small models, trained on this project's CPU machines from data Debian installs
# (issue 5; `python -m grootvl_core train ...`) and shipped in checkpoints/, so everything works
# offline. Their metrics are the ones in each folder's metrics.json (a test keeps them equal).
_BUNDLED: list[ZooEntry] = [
    ZooEntry(
        name="grootv-nano-fmnist",
        task="classification",
        arch="grootv_nano",
        kwargs=dict(in_chans=1, num_classes=10),
        bundled="grootv-nano-fmnist",
        preprocess=_fashion_mnist_preprocess(28),
        labels=FASHION_MNIST_CLASSES,
        params=2_237_130,
        metrics={"fashion-mnist test top-1 %": 92.39},
        license="apache-2.0",
        description="GrootV-nano trained by grootvl on Fashion-MNIST (28x28 grey), bundled",
    ),
    ZooEntry(
        name="grootv-nano-scenes",
        task="segmentation",
        arch="upernet_grootv_nano",
        model_class="GrootVSegmenter",
        # depths: the bundle was grown from the nano's 1-1-3-1 (grootvl_core.train.grow)
        kwargs=dict(
            in_chans=1,
            num_classes=len(SCENE_CLASSES),
            class_names=list(SCENE_CLASSES),
            palette=[list(c) for c in SCENE_PALETTE],
            depths=[1, 1, 7, 2],
        ),
        bundled="grootv-nano-scenes",
        preprocess=_fashion_mnist_preprocess(96),
        labels=tuple(SCENE_CLASSES),
        params=4_708_918,
        metrics={"scenes test mIoU %": 70.65},
        license="apache-2.0",
        description=(
            "GrootV-nano (depths 1-1-7-2) + UperNet trained by grootvl on Fashion-MNIST scenes (96x96), bundled"
        ),
    ),
    ZooEntry(
        name="grootl-nano-fortunes",
        task="generation",
        arch="grootl_nano",
        model_class="GrootL",
        bundled="grootl-nano-fortunes",
        labels=None,
        params=475_008,
        metrics={"fortunes validation bits/byte": 2.3014},
        license="apache-2.0",
        description="GrootL-nano, byte-level, trained by grootvl on Debian's fortunes, bundled",
    ),
]

for _entry in _BUNDLED + _ENTRIES:
    register(_entry)  # the same checks as any added entry
del _entry


# ------------------------------------------------------------------------------------------------
# Building and loading
# ------------------------------------------------------------------------------------------------


def resolve_architecture(arch: str) -> tuple[Callable[..., torch.nn.Module], Callable | None]:
    """Factory and ``checkpoint_filter_fn`` of an architecture name.

    Looks in ``grootvl_core.models`` first, then in timm's registry (importing
    ``grootvl_core.models`` registers ``grootv_*`` and ``test_grootv``).

    Returns:
        ``(factory, filter_fn)``; ``filter_fn`` is the ``checkpoint_filter_fn`` of the module that
        defines the factory, or None.

    Raises:
        ValueError: unknown architecture.
    """
    models = importlib.import_module("grootvl_core.models")
    factory = getattr(models, arch, None)
    if not callable(factory):
        import timm

        if not timm.is_model(arch):
            known = sorted({e.arch for e in MODELS.values()})
            raise ValueError(
                f"unknown architecture {arch!r}; known: {', '.join(known)} "
                "(or any timm model name registered by grootvl_core.models)"
            )
        factory = timm.models.model_entrypoint(arch)
    module = sys.modules.get(factory.__module__)
    return factory, getattr(module, "checkpoint_filter_fn", None)


def build_model(entry: ZooEntry | str, **overrides: Any) -> torch.nn.Module:
    """Build an entry's architecture with random weights (``kwargs`` + ``overrides``)."""
    entry = get_entry(entry)
    factory, _ = resolve_architecture(entry.arch)
    return factory(pretrained=False, **{**entry.kwargs, **overrides})


def _model_class(entry: ZooEntry) -> type:
    models = importlib.import_module("grootvl_core.models")
    cls = getattr(models, entry.model_class, None)
    if cls is None or not hasattr(cls, "from_pretrained"):
        raise ValueError(
            f"zoo entry {entry.name!r}: grootvl_core.models has no Hub-loadable class {entry.model_class!r}"
        )
    return cls


def _offline_error(entry: ZooEntry, why: str) -> hub.OfflineError:
    offline = available_offline()
    listing = ", ".join(offline) if offline else "none (no bundled checkpoints or cached downloads found)"
    return hub.OfflineError(
        f"cannot load {entry.name!r}: {why}. Models that work offline now: {listing}. "
        f"To use {entry.name!r}, run once with network access (unset HF_HUB_OFFLINE), or pass --weights PATH."
    )


def load_local_weights(
    entry: ZooEntry | str, path: str | os.PathLike, device: str | torch.device = "cpu", use_ema: bool = False
) -> torch.nn.Module:
    """An entry's model with weights from a local file or Hub-format folder (``--weights``).

    Args:
        entry: the zoo entry (architecture, config).
        path: a folder with ``config.json`` + ``model.safetensors``, or a checkpoint file
            (``.safetensors`` / official ``.pth``), loaded strictly.
        device: target device.
        use_ema: for training checkpoints, take ``model_ema``.

    Returns:
        The model in eval mode on ``device``.
    """
    entry = get_entry(entry)
    path = Path(path)
    if path.is_dir():
        return hub.load_pretrained_folder(_model_class(entry), path, device=device)
    _, filter_fn = resolve_architecture(entry.arch)
    model = build_model(entry)
    hub.load_weights(model, path, filter_fn=filter_fn, use_ema=use_ema)
    return model.to(device).eval()


def load_model(name: ZooEntry | str, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a zoo model with its weights from the first place :func:`weights_locations` names.

    Args:
        name: zoo name (see :func:`list_models`).
        device: target device.

    Returns:
        The model in eval mode on ``device``.

    Raises:
        ValueError: unknown name.
        hub.OfflineError: the weights are not local and the network is off or unreachable (the
            message lists :func:`available_offline`).
        hub.CheckpointError: corrupt or mismatching weights (keys named).
    """
    entry = get_entry(name)
    cls = _model_class(entry)
    locations = weights_locations(entry)
    reasons = []
    for i, loc in enumerate(locations):
        if loc.kind in ("bundled", "cache", "hub-cache"):
            return hub.load_pretrained_folder(cls, loc.path, device=device)
        if loc.kind == "official-downloaded":
            return _convert_official(entry, device)  # downloaded earlier: no network needed
        if loc.kind == "hub":
            try:
                hub.hub_download(loc.repo, hub.CONFIG_NAME, revision=loc.revision)
                weights = hub.hub_download(loc.repo, hub.WEIGHTS_NAME, revision=loc.revision)
                return hub.load_pretrained_folder(cls, weights.parent, device=device)
            except hub.OfflineError as exc:
                reasons.append(str(exc))
            except hub.CheckpointError as exc:
                if i == len(locations) - 1:
                    raise
                reasons.append(str(exc))  # repo not published: fall back to the next place
        elif loc.kind == "official":
            if hub.is_offline():
                raise _offline_error(entry, "its weights are not cached and HF_HUB_OFFLINE=1 is set")
            try:
                return _convert_official(entry, device)
            except hub.OfflineError as exc:
                reasons.append(str(exc))
    if not reasons:
        raise ValueError(f"zoo entry {entry.name!r} names no weights (no bundled folder, Hub repo or official file)")
    raise _offline_error(entry, "; ".join(reasons))


def _convert_official(entry: ZooEntry, device: str | torch.device) -> torch.nn.Module:
    """Download the official checkpoint, convert it once into the cache folder, load that."""
    off = entry.official
    raw = hub.gdrive_download(off.gdrive_id, _official_path(entry), size=off.size, sha256=off.sha256)
    _, filter_fn = resolve_architecture(entry.arch)
    target = cache_dir(entry)
    tmp = target.with_name(target.name + ".tmp")
    hub.convert_checkpoint(
        raw,
        build_model(entry),
        tmp,
        filter_fn=filter_fn,
        use_ema=off.use_ema,
        card=dict(
            title=entry.description or entry.name,
            arch=entry.arch,
            task=entry.task,
            metrics=entry.metrics,
            license=entry.license,
            repo_id=hub_repo_id(entry) or entry.name,
        ),
    )
    if target.exists():
        import shutil

        shutil.rmtree(target)
    tmp.replace(target)
    return hub.load_pretrained_folder(_model_class(entry), target, device=device)


def load_entry_tokenizer(name: ZooEntry | str, weights: str | os.PathLike | None = None):
    """The tokenizer of a ``generation`` entry: the one saved beside its weights (``weights``, the
    bundled folder, the converted cache), else the entry's ``tokenizer`` folder or Hub repo.

    Raises:
        ValueError: the entry names no tokenizer and none lies beside its weights.
        OSError: the tokenizer repo cannot be fetched (offline and not cached).
    """
    from .tokenizer import load_tokenizer

    entry = get_entry(name)
    for folder in (weights, bundled_dir(entry), cache_dir(entry)):
        if folder and any((Path(folder) / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
            try:
                return load_tokenizer(folder)
            except OSError:
                continue
    if entry.tokenizer:
        return load_tokenizer(entry.tokenizer)
    raise ValueError(f"no tokenizer for {entry.name!r}: pass --tokenizer DIR_OR_REPO")
