"""Conversion of training checkpoints to Hub folders, upload, task-aware model cards, and `convert`
building the zoo entry's architecture (grootvl_core.weights.convert / model_card)."""

from __future__ import annotations

import json
import os

import pytest
import torch

from grootvl_core import cli, weights, zoo
from grootvl_core.models import GrootV, GrootVSegmenter, checkpoint_filter_fn
from grootvl_core.models.grootl import GrootL, grootl_nano

from .helpers import TINY, same_weights, write_published


@pytest.mark.parametrize(
    ("task", "cls_name"),
    [("classification", "GrootV"), ("segmentation", "GrootVSegmenter"), ("generation", "GrootL")],
)
def test_model_card_names_the_class_of_its_task(tmp_path, task, cls_name):
    from grootvl_core.weights import write_model_card

    card = write_model_card(tmp_path, {"task": task, "repo_id": "me/model"}).read_text()
    assert f'{cls_name}.from_pretrained("me/model")' in card
    assert f"from grootvl_core.models import {cls_name}\n" in card
    others = {"GrootV", "GrootVSegmenter", "GrootL"} - {cls_name}
    assert not any(f"{o}.from_pretrained" in card for o in others)


@torch.no_grad()
def test_converted_language_model_card_says_grootl(tmp_path, capsys):
    """Converting a GrootL checkpoint (e.g. grootl-130m) writes a card that loads it with GrootL."""
    torch.manual_seed(0)
    model = grootl_nano()
    path = tmp_path / "grootl.pth"
    torch.save({"model": model.state_dict()}, path)
    out = tmp_path / "out"
    assert cli.main(["convert", str(path), "--arch", "grootl_nano", "--out", str(out)]) == 0
    card = (out / "README.md").read_text()
    assert "pipeline_tag: text-generation" in card
    assert 'GrootL.from_pretrained("' in card and "GrootV.from_pretrained" not in card
    assert "tokenizer" in card  # a language model's usage snippet shows how to get ids
    loaded = GrootL.from_pretrained(out)
    ids = torch.randint(0, 256, (1, 5))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)


@torch.no_grad()
@pytest.mark.parametrize("arch", ["upernet_grootv_nano", "grootv-nano-scenes"])
def test_convert_builds_the_zoo_entrys_architecture(tmp_path, arch, capsys):
    """The bundled segmenter has 11 classes and depths 1-1-7-2, not the factory's 150 / 1-1-3-1."""
    torch.manual_seed(0)
    source = zoo.build_model("grootv-nano-scenes").eval()
    path = tmp_path / "ckpt_epoch_best.pth"
    torch.save({"model": source.state_dict(), "epoch": 3}, path)
    out = tmp_path / "out"
    assert cli.main(["convert", str(path), "--arch", arch, "--out", str(out)]) == 0, capsys.readouterr().err
    loaded = GrootVSegmenter.from_pretrained(out)
    sd, ref = loaded.state_dict(), source.state_dict()
    assert sd.keys() == ref.keys() and all(torch.equal(sd[k], ref[k]) for k in sd)
    card = (out / "README.md").read_text()
    assert 'GrootVSegmenter.from_pretrained("' in card and "pipeline_tag: image-segmentation" in card


def test_convert_round_trip_and_push(tmp_path, monkeypatch, tiny_pair):
    src, ema = tiny_pair
    path = write_published(tmp_path / "ckpt.pth", src, ema)
    out = weights.convert_checkpoint(
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
    assert "library_name: grootvl" in card and "model_ema" in card and weights.sha256sum(path) in card
    loaded = weights.load_pretrained_folder(GrootV, out)
    assert same_weights(loaded, ema)

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
    with pytest.raises(weights.OfflineError, match="offline"):
        weights.push_folder(out, "me/tiny")
    assert not calls
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert weights.push_folder(out, "me/tiny").endswith("/commit/abc")
    assert calls["create"][0] == "me/tiny" and calls["create"][1]["exist_ok"] is True
    assert calls["upload"][:2] == ("me/tiny", ["README.md", "config.json", "model.safetensors"])
