"""The models the app keeps in memory: loaded on first use from the zoo, at most ``capacity`` at a
time (least recently used dropped first), one lock per model.

The lock serialises the passes that record trees (``capture_trees`` / ``capture_token_trees`` set
hooks on the model's modules while they run) and the prompt passes of generation; decoding steps
and plain predictions that record nothing do not need it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import torch

from grootvl_core import zoo

__all__ = ["LoadedModel", "ModelCache", "default_device"]

log = logging.getLogger("grootvl.app")


def default_device() -> str:
    """``$GROOTVL_DEVICE`` if set, else ``cuda`` when available, else ``cpu``."""
    return os.environ.get("GROOTVL_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")


@dataclass
class LoadedModel:
    """A zoo model ready for a task: ``predictor`` is a Classifier, a Segmenter or the model itself
    (generation), ``tokenizer`` is set for generation."""

    name: str
    entry: zoo.ZooEntry
    predictor: Any
    tokenizer: Any = None
    lock: threading.Lock = field(default_factory=threading.Lock)


class ModelCache:
    """Bounded LRU of :class:`LoadedModel`.

    Args:
        capacity: models kept in memory at once (>= 1).
        device: where models run.
    """

    def __init__(self, capacity: int = 3, device: str | None = None):
        if capacity < 1:
            raise ValueError(f"ModelCache: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self.device = device or default_device()
        self._models: OrderedDict[str, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[str, threading.Lock] = {}

    def names(self) -> list[str]:
        """Names in memory, least recently used first."""
        with self._lock:
            return list(self._models)

    def get(self, name: str, task: str) -> LoadedModel:
        """The loaded model ``name`` (loading it if needed); ``task`` must be its zoo task.

        Raises:
            ValueError: unknown name or wrong task.
            grootvl_core.hub.OfflineError: the weights are not local and cannot be downloaded.
        """
        entry = zoo.get_entry(name)
        if entry.task != task:
            raise ValueError(f"{name!r} is a {entry.task} model; pick a {task} model")
        with self._lock:
            if name in self._models:
                self._models.move_to_end(name)
                return self._models[name]
            loading = self._loading.setdefault(name, threading.Lock())
        with loading:  # one load per name, even when many requests ask at once
            with self._lock:
                if name in self._models:
                    self._models.move_to_end(name)
                    return self._models[name]
            loaded = self._load(entry)
            with self._lock:
                self._models[name] = loaded
                while len(self._models) > self.capacity:
                    dropped, _ = self._models.popitem(last=False)
                    log.info("model cache: dropped %s (capacity %d)", dropped, self.capacity)
                self._loading.pop(name, None)
            return loaded

    def _load(self, entry: zoo.ZooEntry) -> LoadedModel:
        log.info("loading %s on %s", entry.name, self.device)
        if entry.task == "classification":
            from grootvl_core.classify import Classifier

            return LoadedModel(entry.name, entry, Classifier.from_zoo(entry, device=self.device))
        if entry.task == "segmentation":
            from grootvl_core.segment import Segmenter

            return LoadedModel(entry.name, entry, Segmenter.from_zoo(entry, device=self.device))
        model = zoo.load_model(entry, device=self.device)
        tokenizer = zoo.load_entry_tokenizer(entry)
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ValueError(
                f"the tokenizer of {entry.name!r} has {tokenizer.vocab_size} ids but the model only "
                f"{model.config.vocab_size}"
            )
        return LoadedModel(entry.name, entry, model, tokenizer)
