"""Hub cache (offline, laid out by the test) and Google Drive downloads (grootvl_core.weights.transfer)."""

from __future__ import annotations

import pytest
import torch

from grootvl_core import hub, weights, zoo
from grootvl_core.models import GrootV

from .helpers import TINY, lay_out_hf_cache, same_weights


def test_hub_cache_offline_loads_through_zoo(tmp_path, monkeypatch, tiny_pair):
    src, _ = tiny_pair
    saved = tmp_path / "saved"
    src.save_pretrained(saved)
    cache = tmp_path / "hf_cache"
    snap = lay_out_hf_cache(cache, "testorg/tiny-grootv-hub", saved)
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("GROOTVL_HUB_ORG", "testorg")
    monkeypatch.setenv("GROOTVL_HOME", str(tmp_path / "home"))
    entry = zoo.ZooEntry(
        name="tiny-hub",
        task="classification",
        arch="test_grootv",
        kwargs=dict(TINY),
        hub_repo="tiny-grootv-hub",
    )
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)

    assert weights.hub_download("testorg/tiny-grootv-hub", "config.json") == snap / "config.json"
    assert zoo.weights_source("tiny-hub") == "hub-cache" and zoo.is_cached("tiny-hub")
    assert "tiny-hub" in zoo.available_offline()
    model = zoo.load_model("tiny-hub")
    assert isinstance(model, GrootV) and not model.training and same_weights(model, src)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), src(x), atol=1e-6)

    # The same repo under another org is not cached: a clear offline error listing what works.
    monkeypatch.setenv("GROOTVL_HUB_ORG", "otherorg")
    assert not zoo.is_cached("tiny-hub")
    with pytest.raises(weights.OfflineError, match="HF_HUB_OFFLINE=1") as err:
        zoo.load_model("tiny-hub")
    assert "work offline now" in str(err.value)
    with pytest.raises(weights.OfflineError, match="not in the local cache"):
        weights.hub_download("otherorg/tiny-grootv-hub", "config.json")


def test_gdrive_download_verifies_and_respects_offline(tmp_path, monkeypatch):
    import gdown

    payload = b"grootvl" * 1000
    calls = []

    def fake_download(*, id, output, timeout, **kwargs):
        calls.append((id, timeout))
        with open(output, "wb") as f:
            f.write(payload)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    import hashlib

    digest = hashlib.sha256(payload).hexdigest()
    dest = weights.gdrive_download("FILEID", tmp_path / "dl" / "ck.pth", size=len(payload), sha256=digest, timeout=5)
    assert dest.read_bytes() == payload and calls == [("FILEID", (5, 5))]
    assert not (tmp_path / "dl" / "ck.pth.part").exists()
    # Present and verified: no second download.
    weights.gdrive_download("FILEID", dest, sha256=digest)
    assert len(calls) == 1
    with pytest.raises(weights.CheckpointError, match="sha256"):
        weights.gdrive_download("OTHER", tmp_path / "bad.pth", sha256="0" * 64)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(weights.OfflineError, match="offline"):
        weights.gdrive_download("FILEID", tmp_path / "never.pth")
    assert len(calls) == 2


def test_the_old_hub_module_re_exports_every_name():
    """grootvl_core.hub (where this code lived) still gives the same objects."""
    assert set(weights.__all__) <= set(hub.__all__)
    assert all(getattr(hub, name) is getattr(weights, name) for name in weights.__all__)
