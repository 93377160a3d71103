"""Compatibility module: the checkpoint code moved to :mod:`grootvl_core.weights` (one concept per file).

Every public name that lived here is re-exported, so ``from grootvl_core.hub import CheckpointError``
and ``hub.load_weights(...)`` keep working. New code imports from ``grootvl_core.weights``.
"""

from __future__ import annotations

from .weights import *  # noqa: F401,F403 - the re-export is this module's purpose
from .weights import __all__ as _weights_all
from .weights.transfer import _hf_cache_dir  # noqa: F401 - used by grootvl_core.zoo

__all__ = list(_weights_all)
