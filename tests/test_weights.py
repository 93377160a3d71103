"""grootvl_core.weights: task-aware model cards and conversion that builds the zoo entry's architecture."""

from __future__ import annotations

import pytest
import torch

from grootvl_core import cli, zoo
from grootvl_core.models import GrootVSegmenter
from grootvl_core.models.grootl import GrootL, grootl_nano


@pytest.mark.parametrize(
    ("task", "cls_name"),
    [("classification", "GrootV"), ("segmentation", "GrootVSegmenter"), ("generation", "GrootL")],
)
def test_model_card_names_the_class_of_its_task(tmp_path, task, cls_name):
    from grootvl_core.hub import write_model_card

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
