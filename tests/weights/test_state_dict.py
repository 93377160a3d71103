"""Reading published checkpoints and strict loading with named key differences
(grootvl_core.weights.state_dict)."""

from __future__ import annotations

import pickle
import sys

import pytest
import torch

from grootvl_core import weights
from grootvl_core.models import GrootV, checkpoint_filter_fn

from .helpers import TINY, same_weights, write_published


def test_published_checkpoint_loads_model_and_ema(tmp_path, tiny_pair):
    src, ema = tiny_pair
    path = write_published(tmp_path / "ckpt_epoch_best.pth", src, ema)
    # torch's weights-only loader alone refuses the pickled config class: the fallback is needed.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)

    ckpt = weights.read_checkpoint(path)
    assert not any(m.startswith("grootvl_test_fake_yacs") for m in sys.modules)  # nothing was imported
    cfg = ckpt["config"]
    assert isinstance(cfg, weights.PickledObjectStub) and cfg.pickled_class == "grootvl_test_fake_yacs.config.CfgNode"
    assert cfg["MODEL"]["NAME"] == "grootv_t_1k_224" and cfg["TRAIN"]["EPOCHS"] == 300
    assert cfg.pickled_state == {"__immutable__": False}
    assert ckpt["epoch"] == 299

    model = weights.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    assert same_weights(model, src) and not same_weights(model, ema)
    model_ema = weights.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn, use_ema=True)
    assert same_weights(model_ema, ema)


def test_module_prefixed_bare_state_dict_loads(tmp_path, tiny_pair):
    src, _ = tiny_pair
    path = tmp_path / "ddp.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in src.state_dict().items()}}, path)
    model = weights.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    assert same_weights(model, src)


def test_missing_ema_is_named(tmp_path, tiny_pair):
    path = tmp_path / "plain.pth"
    torch.save({"model": tiny_pair[0].state_dict()}, path)
    with pytest.raises(weights.CheckpointError, match="no 'model_ema'"):
        weights.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn, use_ema=True)


def test_wrong_and_missing_keys_are_named(tmp_path, tiny_pair):
    sd = dict(tiny_pair[0].state_dict())
    sd["levels.0.blocks.0.TreeSSM.A_log"] = sd.pop("levels.0.blocks.0.TreeSSM.A_logs")  # renamed key
    del sd["head.bias"]
    path = tmp_path / "bad.pth"
    torch.save({"model": sd}, path)
    with pytest.raises(weights.CheckpointError) as err:
        weights.load_weights(GrootV(**TINY), path, filter_fn=checkpoint_filter_fn)
    msg = str(err.value)
    assert "bad.pth" in msg
    assert "missing keys (2)" in msg and "levels.0.blocks.0.TreeSSM.A_logs" in msg and "head.bias" in msg
    assert "unexpected keys (1)" in msg and "levels.0.blocks.0.TreeSSM.A_log" in msg


def test_shape_mismatch_is_named(tmp_path, tiny_pair):
    path = tmp_path / "ten_classes.safetensors"
    from safetensors.torch import save_file

    save_file(tiny_pair[0].state_dict(), str(path))
    with pytest.raises(weights.CheckpointError) as err:
        weights.load_weights(GrootV(**{**TINY, "num_classes": 5}), path, filter_fn=checkpoint_filter_fn)
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
    with pytest.raises(weights.CheckpointError, match=f"cut{suffix}.*(truncated|corrupt)"):
        weights.load_weights(GrootV(**TINY), cut, filter_fn=checkpoint_filter_fn)
    empty = tmp_path / f"empty{suffix}"
    empty.write_bytes(b"")
    with pytest.raises(weights.CheckpointError, match="empty"):
        weights.read_checkpoint(empty)
    with pytest.raises(weights.CheckpointError, match="not found"):
        weights.read_checkpoint(tmp_path / "nope.pth")


def test_corrupt_hub_folder_is_reported(tmp_path, tiny_pair):
    out = tmp_path / "folder"
    tiny_pair[0].save_pretrained(out)
    (out / "model.safetensors").write_bytes((out / "model.safetensors").read_bytes()[:100])
    with pytest.raises(weights.CheckpointError, match="model.safetensors"):
        weights.load_pretrained_folder(GrootV, out)
    (out / "config.json").unlink()
    with pytest.raises(weights.CheckpointError, match="config.json is missing"):
        weights.load_pretrained_folder(GrootV, out)
