"""Everything between a checkpoint file and ``load_state_dict`` (``design.md``: weights/).

Reference: ``reference-grootvl.md`` section 3.5 (published checkpoint files: a ``torch.save`` of a
dict with ``model``, ``model_ema``, ``optimizer``, ``lr_scheduler``, ``epoch``, ``max_accuracy``,
``amp`` and a pickled yacs ``CfgNode``), section 3.4 (state-dict keys) and section 5 (where the
official files live). Untrusted files are loaded through safetensors,
``torch.load(weights_only=True)`` or a restricted unpickler, never by executing code.

One concept per file, in order of use:

* ``unpickler.py``: :func:`read_checkpoint` and :class:`RestrictedUnpickler`.
* ``state_dict.py``: :func:`extract_state_dict` (the one unwrap of training checkpoints),
  :func:`diff_state_dict` (the one strict key / shape diff), :func:`load_weights`,
  :func:`load_pretrained_folder`.
* ``transfer.py``: :func:`hub_download`, :func:`gdrive_download`, :func:`push_folder`,
  :func:`sha256sum`, :func:`is_offline`, :func:`grootvl_home`.
* ``model_card.py``: :func:`write_model_card` (task-aware: the right class and usage snippet).
* ``convert.py``: :func:`convert_checkpoint` (checkpoint -> Hub folder).
* ``errors.py``: :class:`CheckpointError`, :class:`UnsafeCheckpointError`, :class:`OfflineError`.

The key remap for foreign layouts is each architecture's ``checkpoint_filter_fn``; this package
only does I/O, safety and reporting.
"""

from .convert import convert_checkpoint
from .errors import CheckpointError, OfflineError, UnsafeCheckpointError
from .model_card import write_model_card
from .state_dict import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    check_state_dict,
    diff_state_dict,
    extract_state_dict,
    load_pretrained_folder,
    load_weights,
    unwrap_state_dict,
)
from .transfer import gdrive_download, grootvl_home, hub_download, is_offline, push_folder, sha256sum
from .unpickler import SAFETENSORS_SUFFIX, PickledObjectStub, RestrictedUnpickler, read_checkpoint

__all__ = [
    "CONFIG_NAME",
    "WEIGHTS_NAME",
    "SAFETENSORS_SUFFIX",
    "CheckpointError",
    "UnsafeCheckpointError",
    "OfflineError",
    "RestrictedUnpickler",
    "PickledObjectStub",
    "grootvl_home",
    "is_offline",
    "read_checkpoint",
    "extract_state_dict",
    "unwrap_state_dict",
    "diff_state_dict",
    "check_state_dict",
    "load_weights",
    "load_pretrained_folder",
    "hub_download",
    "gdrive_download",
    "sha256sum",
    "convert_checkpoint",
    "write_model_card",
    "push_folder",
]
