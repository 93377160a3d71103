"""Checkpoint files for the weights tests, written as the published code writes them (reference 3.5):
a dict with ``model``, ``model_ema``, ``optimizer``, ``epoch`` and a pickled config object whose class
lives in a module the loader cannot import; and a Hugging Face cache laid out by hand."""

from __future__ import annotations

import sys
import types

import torch

TINY = dict(channels=16, depths=[1, 1, 1, 1], num_classes=10)


def fake_cfg_module(name: str):
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


def write_published(path, model, ema, cfg_module="grootvl_test_fake_yacs.config"):
    """torch.save a training checkpoint laid out as reference 3.5, with an un-importable config class."""
    mod = fake_cfg_module(cfg_module)
    parent_name, _, child = cfg_module.rpartition(".")
    parent = types.ModuleType(parent_name)
    setattr(parent, child, mod)
    sys.modules[parent_name], sys.modules[cfg_module] = parent, mod
    try:
        cfg = mod.CfgNode(MODEL=mod.CfgNode(TYPE="grootv", NAME="grootv_t_1k_224"), TRAIN=mod.CfgNode(EPOCHS=300))
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


def same_weights(model, reference) -> bool:
    sd, ref = model.state_dict(), reference.state_dict()
    return sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in sd)


def lay_out_hf_cache(cache, repo_id, folder, revision="0123456789abcdef0123456789abcdef01234567"):
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
