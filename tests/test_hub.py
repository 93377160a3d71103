"""Safe checkpoint loading, strict key reporting, Hub cache, conversion and upload (grootvl_core.hub).

Checkpoints are written by the tests in the published layout of reference 3.5 (a dict with
``model``, ``model_ema``, ``optimizer``, ``epoch`` and a pickled config object whose class lives
in a module the loader cannot import).
"""

from __future__ import annotations

import json
import os
import pickle
import sys
import types

import pytest
import torch

from grootvl_core import hub, zoo
from grootvl_core.models import GrootV, checkpoint_filter_fn

TINY = dict(channels=16, depths=[1, 1, 1, 1], num_classes=10)


@pytest.fixture(scope="module")
def tiny_pair():
    """Two tiny GrootV models with different random weights (``model`` and ``model_ema``)."""
    torch.manual_seed(1)
    a = GrootV(**TINY).eval()
    torch.manual_seed(2)
    b = GrootV(**TINY).eval()
    return a, b


def _fake_cfg_module(name: str):
    """A throwaway module with a yacs-like ``CfgNode`` (a dict subclass with attributes)."""
    mod = types.ModuleType(name)

    class CfgNode(dict):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.__dict__["__immutable__"] = False

    CfgNode.__module__ = name
    CfgNode.__qualname__ = "CfgNode"
    mod.CfgNode = CfgNode
    return mod


def _write_published(path, model, ema, cfg_module="grootvl_test_fake_yacs.config"):
    """torch.save a training checkpoint laid out as reference 3.5, with an un-importable config class."""
    mod = _fake_cfg_module(cfg_module)
    parent_name, _, child = cfg_module.rpartition(".")
    parent = types.ModuleType(parent_name)
    setattr(parent, child, mod)
    sys.modules[parent_name], sys.modules[cfg_module] = parent, mod
    try:
        cfg = mod.CfgNode(
            MODEL=mod.CfgNode(TYPE="grootv", NAME="grootv_t_1k_224"), TRAIN=mod.CfgNode(EPOCHS=300)
        )
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        torch.save(
            {
                "model": model.state_dict(),
                "model_ema": ema.state_dict(),
                "optimizer": opt.state_dict(),
                "lr_scheduler": {"base_values": [5e-4]},
                "max_accuracy": 83.4,
                "epoch": 299,
                "config": cfg,
            },
            path,
        )
    finally:
        del sys.modules[cfg_module], sys.modules[parent_name]
    return path


def _same_weights(model, reference) -> bool:
    sd, ref = model.state_dict(), reference.state_dict()
    return sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in sd)


# ------------------------------------------------------------------------------------------------
# Published training checkpoints
# ------------------------------------------------------------------------------------------------


def test_published_checkpoint_loads_model_and_ema(tmp_path, tiny_pair):
    src, ema = tiny_pair
    path = _write_published(tmp_path / "ckpt_epoch_best.pth", src, ema)
    # torch's weights-only loader alone refuses the pickled config class: the fallback is needed.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)

    ckpt = hub.read_checkpoint(path)
    assert not any(m.startswith("grootvl_test_fake_yacs") for m in sys.modules)  # nothing was imported
    cfg = ckpt["config"]
    assert (
        isinstance(cfg, hub.PickledObjectStub)
        and cfg.pickled_class == "grootvl_test_fake_yacs.config.CfgNode"
    )
    assert cfg["MODEL"]["NAME"] == "grootv_t_1k_224" and cfg["TRAIN"]["EPOCHS"] == 300
    assert cfg.pickled_state == {"__immutable__": False}
    assert ckpt["epoch"] == 299

    model = hub.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    assert _same_weights(model, src) and not _same_weights(model, ema)
    model_ema = hub.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn, use_ema=True)
    assert _same_weights(model_ema, ema)


def test_module_prefixed_bare_state_dict_loads(tmp_path, tiny_pair):
    src, _ = tiny_pair
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    model = hub.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    assert _same_weights(model, src)


def test_missing_ema_is_named(tmp_path, tiny_pair):
    path = tmp_path / "plain.pth"
    torch.save({"model": tiny_pair[0].state_dict()}, path)
    with pytest.raises(hub.CheckpointError, match="no 'model_ema'"):
        hub.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn, use_ema=True)


def test_wrong_and_missing_keys_are_named(tmp_path, tiny_pair):
    sd = dict(tiny_pair[0].state_dict())
    sd["levels.0.blocks.0.TreeSSM.A_log"] = sd.pop("levels.0.blocks.0.TreeSSM.A_logs")  # renamed key
    del sd["head.bias"]
    path = tmp_path / "bad.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(hub.CheckpointError) as err:
        hub.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    msg = str(err.value)
    assert "bad.pth" in msg
    assert "missing keys (2)" in msg and "levels.0.blocks.0.TreeSSM.A_logs" in msg and "head.bias" in msg
    assert "unexpected keys (1)" in msg and "levels.0.blocks.0.TreeSSM.A_log" in msg


def test_shape_mismatch_is_named(tmp_path, tiny_pair):
    path = tmp_path / "ten_classes.safetensors"
    from safetensors.torch import save_file

    save_file(tiny_pair[0].state_dict(), str(path))
    with pytest.raises(hub.CheckpointError) as err:
        hub.load_weights(GrootV(**{**TINY, "num_classes": 5}), path, filter_fn=checkpoint_filter_fn)
    assert "head.weight: checkpoint (10, 192) vs model (5, 192)" in str(err.value)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_truncated_file_fails_cleanly(tmp_path, tiny_pair, suffix):
    full = tmp_path / f"full{suffix}"
    if suffix == ".pth":
        torch.save({"model": tiny_pair[0].state_dict()}, full)
    else:
        from safetensors.torch import save_file

        save_file(tiny_pair[0].state_dict(), str(full))
    data = full.read_bytes()
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(data[: len(data) // 3])
    with pytest.raises(hub.CheckpointError, match=f"cut{suffix}.*(truncated|corrupt)"):
        hub.load_weights(GrootV(**TINY), cut, filter_fn=checkpoint_filter_fn)
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(hub.CheckpointError, match="empty"):
        hub.read_checkpoint(empty)
    with pytest.raises(hub.CheckpointError, match="not found"):
        hub.read_checkpoint(tmp_path / "nope.pth")


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
    with pytest.raises(hub.UnsafeCheckpointError, match="refusing to load.*evil.pth|evil.pth.*refusing"):
        hub.read_checkpoint(path)
    with pytest.raises(hub.UnsafeCheckpointError):
        hub.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    assert not marker.exists()


def test_plain_pickle_file_with_payload_is_refused(tmp_path):
    """A non-zip (legacy / raw pickle) file takes the same restricted path."""
    marker = tmp_path / "pwned_raw"
    path = tmp_path / "raw.pkl"
    path.write_bytes(pickle.dumps({"x": _Payload(marker)}, protocol=2))
    with pytest.raises(hub.UnsafeCheckpointError, match="posix.system|nt.system"):
        hub.read_checkpoint(path)
    assert not marker.exists()


# ------------------------------------------------------------------------------------------------
# Hub cache (offline), conversion round trip, upload
# ------------------------------------------------------------------------------------------------


def _lay_out_hf_cache(cache, repo_id, folder, revision="0123456789abcdef0123456789abcdef01234567"):
    """Write a Hugging Face cache entry by hand: refs/main + snapshots/<rev>/<files>."""
    org, name = repo_id.split("/")
    root = cache / f"models--{org}--{name}"
    (root / "refs").mkdir(parents=True)
    (root / "refs" / "main").write_text(revision)
    snap = root / "snapshots" / revision
    snap.mkdir(parents=True)
    for fname in ("config.json", "model.safetensors"):
        (snap / fname).write_bytes((folder / fname).read_bytes())
    return snap


def test_hub_cache_offline_loads_through_zoo(tmp_path, monkeypatch, tiny_pair):
    src, _ = tiny_pair
    saved = tmp_path / "saved"
    src.save_pretrained(saved)
    cache = tmp_path / "hf_cache"
    snap = _lay_out_hf_cache(cache, "testorg/tiny-grootv-hub", saved)
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

    assert hub.hub_download("testorg/tiny-grootv-hub", "config.json") == snap / "config.json"
    assert zoo.weights_source("tiny-hub") == "hub-cache" and zoo.is_cached("tiny-hub")
    assert "tiny-hub" in zoo.available_offline()
    model = zoo.load_model("tiny-hub")
    assert isinstance(model, GrootV) and not model.training and _same_weights(model, src)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(x), src(x), atol=1e-6)

    # The same repo under another org is not cached: a clear offline error listing what works.
    monkeypatch.setenv("GROOTVL_HUB_ORG", "otherorg")
    assert not zoo.is_cached("tiny-hub")
    with pytest.raises(hub.OfflineError, match="HF_HUB_OFFLINE=1") as err:
        zoo.load_model("tiny-hub")
    assert "work offline now" in str(err.value)
    with pytest.raises(hub.OfflineError, match="not in the local cache"):
        hub.hub_download("otherorg/tiny-grootv-hub", "config.json")


def test_convert_round_trip_and_push(tmp_path, monkeypatch, tiny_pair):
    src, ema = tiny_pair
    path = _write_published(tmp_path / "ckpt.pth", src, ema)
    out = hub.convert_checkpoint(
        path,
        GrootV(**TINY),
        tmp_path / "hubdir",
        filter_fn=checkpoint_filter_fn,
        use_ema=True,
        card=dict(arch="test_grootv", metrics={"acc@1": 1.0}),
    )
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((out / "config.json").read_text())["channels"] == 16
    card = (out / "README.md").read_text()
    assert "library_name: grootvl" in card and "model_ema" in card and hub.sha256sum(path) in card
    loaded = hub.load_pretrained_folder(GrootV, out)
    assert _same_weights(loaded, ema)

    calls = {}

    class _Repo:
        repo_id = "me/tiny"

    def fake_create_repo(self, repo_id, **kwargs):
        calls["create"] = (repo_id, kwargs)
        return _Repo()

    def fake_upload_folder(self, *, repo_id, folder_path, **kwargs):
        calls["upload"] = (repo_id, sorted(os.listdir(folder_path)), kwargs)
        return "https://huggingface.co/me/tiny/commit/abc"

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload_folder)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.OfflineError, match="offline"):
        hub.push_folder(out, "me/tiny")
    assert not calls
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert hub.push_folder(out, "me/tiny").endswith("/commit/abc")
    assert calls["create"][0] == "me/tiny" and calls["create"][1]["exist_ok"] is True
    assert calls["upload"][:2] == ("me/tiny", ["README.md", "config.json", "model.safetensors"])


def test_corrupt_hub_folder_is_reported(tmp_path, tiny_pair):
    out = tmp_path / "folder"
    tiny_pair[0].save_pretrained(out)
    (out / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes()[:100])
    with pytest.raises(hub.CheckpointError, match="model.safetensors"):
        hub.load_pretrained_folder(GrootV, out)
    (out / "config.json").unlink()
    with pytest.raises(hub.CheckpointError, match="config.json is missing"):
        hub.load_pretrained_folder(GrootV, out)


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
    dest = hub.gdrive_download(
        "FILEID", tmp_path / "dl" / "ck.pth", size=len(payload), sha256=digest, timeout=5
    )
    assert dest.read_bytes() == payload and calls == [("FILEID", (5, 5))]
    assert not (tmp_path / "dl" / "ck.pth.part").exists()
    # Present and verified: no second download.
    hub.gdrive_download("FILEID", dest, sha256=digest)
    assert len(calls) == 1
    with pytest.raises(hub.CheckpointError, match="sha256"):
        hub.gdrive_download("OTHER", tmp_path / "bad.pth", sha256="0" * 64)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(hub.OfflineError, match="offline"):
        hub.gdrive_download("FILEID", tmp_path / "never.pth")
    assert len(calls) == 2
