"""The restricted unpickler refuses code in checkpoints and never runs it (grootvl_core.weights.unpickler)."""

from __future__ import annotations

import os
import pickle

import pytest
import torch

from grootvl_core import weights
from grootvl_core.models import GrootV, checkpoint_filter_fn

from .helpers import TINY


class _Payload:
    """Pickles as ``os.system('touch <marker>')``: the classic checkpoint exploit."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _ExecPayload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (exec, (f"open({str(self.marker)!r}, 'w').write('x')",))


@pytest.mark.parametrize("payload_cls", [_Payload, _ExecPayload])
def test_malicious_pickle_is_refused_and_does_not_run(tmp_path, tiny_pair, payload_cls):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pth"
    torch.save({"model": tiny_pair[0].state_dict(), "config": payload_cls(marker)}, path)
    with pytest.raises(weights.UnsafeCheckpointError, match="refusing to load.*evil.pth|evil.pth.*refusing"):
        weights.read_checkpoint(path)
    with pytest.raises(weights.UnsafeCheckpointError):
        weights.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    assert not marker.exists()


def test_plain_pickle_file_with_payload_is_refused(tmp_path):
    """A non-zip (legacy / raw pickle) file takes the same restricted path."""
    marker = tmp_path / "pwned_raw"
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    with pytest.raises(weights.UnsafeCheckpointError, match="posix.system|nt.system"):
        weights.read_checkpoint(path)
    assert not marker.exists()
