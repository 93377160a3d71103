"""``train.run``: the table of task recipes and the one path over it (issue 21).

No training here: the train functions, the reference outputs and ``write_bundle`` are replaced by
fakes, so what each task hands to ``write_bundle`` (the model card's title, summary and data, the
metrics, the command...) can be compared with ``run_cards.json``, which was captured from the code
before it became a table (three copy-pasted branches). Rewrite that file only when a card's wording
is meant to change: ``GROOTVL_REGEN_RUN_CARDS=1 pytest tests/train/test_run.py``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from grootvl_core.train import fashion_mnist as train_fmnist
from grootvl_core.train import fortunes as train_fortunes
from grootvl_core.train import run
from grootvl_core.train import scenes as train_scenes

CARDS = Path(__file__).with_name("run_cards.json")
FAKE_TOKENIZER = "fake-tokenizer"


class FakeModel:
    """Just what ``run_training`` and the cards read: parameters, ``config.tree_scale``, ``cpu()``."""

    def __init__(self, tree_scale=1.0):
        self.config = SimpleNamespace(tree_scale=tree_scale)
        self._params = [torch.zeros(300, 41), torch.zeros(7)]  # 12,307 parameters
        self.moved_to_cpu = False

    def parameters(self):
        return iter(self._params)

    def cpu(self):
        self.moved_to_cpu = True
        return self


def _fake_result(task):
    metrics = {
        "classify": {"top1": 0.9123, "top5": 0.9981, "loss": 0.25},
        "segment": {"mIoU": 0.5, "pixel_acc": 0.875, "iou/Bag": float("nan"), "scenes": 4},
        "lm": {"bits_per_byte": 2.125, "raw/bits_per_byte": 2.25},
    }[task]
    return {"step": 3, "train_seconds": 61.5, "final_metrics": metrics}


@pytest.fixture
def fakes(monkeypatch):
    """Replace training, reference outputs and ``write_bundle``; returns what they saw."""
    seen = {"recipes": [], "bundles": []}

    def fake_classifier(out, recipe, resume=False, progress=True, device="cpu"):
        seen["recipes"].append(recipe)
        return FakeModel(), _fake_result("classify")

    def fake_segmenter(out, recipe, resume=False, progress=True, device="cpu"):
        seen["recipes"].append(recipe)
        return FakeModel(), _fake_result("segment")

    def fake_lm(out, recipe, resume=False, progress=True, device="cpu"):
        seen["recipes"].append(recipe)
        return FakeModel(0.0 if recipe.arm == "plain" else 1.0), FAKE_TOKENIZER, _fake_result("lm")

    def fake_write_bundle(model, folder, **kwargs):
        assert isinstance(model, FakeModel) and model.moved_to_cpu
        seen["bundles"].append((Path(folder), kwargs))
        return Path(folder)

    monkeypatch.setattr(train_fmnist, "train_classifier", fake_classifier)
    monkeypatch.setattr(train_scenes, "train_segmenter", fake_segmenter)
    monkeypatch.setattr(train_fortunes, "train_lm", fake_lm)
    monkeypatch.setattr(
        run, "classifier_reference_outputs", lambda model, input_size: {"fake": "classify", "input_size": input_size}
    )
    monkeypatch.setattr(run, "segmenter_reference_outputs", lambda model, size: {"fake": "segment", "size": size})
    monkeypatch.setattr(
        run, "lm_reference_outputs", lambda model, tokenizer: {"fake": "lm", "tokenizer": tokenizer == FAKE_TOKENIZER}
    )
    monkeypatch.setattr(run, "write_bundle", fake_write_bundle)
    return seen


def _cases():
    """``(case id, run_training kwargs)`` over each task x arm x start x augment x weight average."""
    cases = []
    starts = {
        "classify": {"scratch": {}, "init_from": {"init_from": "runs/clf-start/model"}},
        "segment": {
            "scratch": {},
            "init_from": {"init_from": "runs/seg-start/model"},
            "backbone_init": {"backbone_init": "runs/clf-scene/model"},
            "both": {"init_from": "runs/seg-start/model", "backbone_init": "runs/clf-scene/model"},
        },
        "lm": {"scratch": {}},
    }
    augments = {"classify": {"shift": {}, "scene": {"augment": "scene", "input_size": 48}}}
    arms = {"classify": ("tree", "raster"), "segment": ("tree", "raster"), "lm": ("tree", "chain", "plain")}
    for task in ("classify", "segment", "lm"):
        for arm in arms[task]:
            for start, start_overrides in starts[task].items():
                for augment, augment_overrides in augments.get(task, {"-": {}}).items():
                    for ema in ("off", "on"):
                        kwargs = {"arm": arm, "argv": ["train", task, "--arm", arm]}
                        if ema == "on":  # with the other loop overrides too
                            kwargs.update(ema_decay=0.999, steps=3, lr=1e-4, batch_size=4, seed=7)
                        overrides = {**start_overrides, **augment_overrides}
                        if overrides:
                            kwargs["recipe_overrides"] = overrides
                        cases.append((f"{task}/{arm}/{start}/{augment}/ema-{ema}", task, kwargs))
    return cases


def _jsonable(value):
    return json.loads(json.dumps(value, default=str))


def _capture(fakes, tmp_path):
    captured = {}
    for case_id, task, kwargs in _cases():
        out = tmp_path / case_id.replace("/", "_")
        result = run.run_training(task, out, progress=False, device="cpu", **kwargs)
        folder, bundle = fakes["bundles"][-1]
        assert folder == out / "model"
        bundle = dict(bundle)
        if "tokenizer" in bundle:
            assert bundle["tokenizer"] == FAKE_TOKENIZER
        bundle["device"] = str(bundle["device"])
        bundle["metrics"] = list(bundle["metrics"].items())  # in order: the card's table follows it
        recipe = fakes["recipes"][-1]
        captured[case_id] = _jsonable({"write_bundle": bundle, "recipe": dataclasses.asdict(recipe), "result": result})
        assert json.loads((out / "result.json").read_text()) == captured[case_id]["result"]
    return captured


def test_every_task_writes_the_captured_cards(fakes, tmp_path):
    """Title, summary, data, metrics (segment: NaN dropped), command, reference outputs, tokenizer (lm
    only), the recipe trained and the result: exactly as the copy-pasted branches produced them."""
    captured = _capture(fakes, tmp_path)
    if os.environ.get("GROOTVL_REGEN_RUN_CARDS"):
        CARDS.write_text(json.dumps(captured, indent=1, sort_keys=True, ensure_ascii=False) + "\n")
    expected = json.loads(CARDS.read_text())
    assert sorted(captured) == sorted(expected)
    for case_id, got in captured.items():
        assert got == expected[case_id], case_id
    # the captured matrix does cover each wording of the cards
    summaries = [c["write_bundle"]["summary"] for c in expected.values()]
    for phrase in (
        "from scratch",
        "from the classifier in `",
        "inside a segmentation scene",
        "so the demo classifies offline",
        "Fine-tuned from the trained segmenter",
        "The backbone started from the trained classifier",
        "Trained from scratch (backbone included)",
        "exponential moving average (decay 0.999",
        "tree_scale 0.0",
        "normalised with mean 0.2860 / std 0.3530",
    ):
        assert any(phrase in s for s in summaries), phrase
    assert not any(
        "exponential moving average" in c["write_bundle"]["summary"]
        for k, c in expected.items()
        if k.endswith("ema-off")
    )


def test_cards_are_built_from_the_recipe():
    from grootvl_core.data.fashion_mnist import (
        FASHION_MNIST_CLASSES,
        FASHION_MNIST_MEAN,
        FASHION_MNIST_STD,
    )
    from grootvl_core.train import cards
    from grootvl_core.train.fortunes import LMRecipe

    recipe = train_fmnist.ClassifierRecipe(input_size=64)
    card = cards.classifier_card(recipe, FakeModel(), "raster")
    assert set(card) == {"title", "summary", "data"}
    assert "12,307-parameter GrootV (raster scan)" in card["summary"] and "resized to 64x64" in card["summary"]
    assert f"mean {FASHION_MNIST_MEAN[0]:.4f} / std {FASHION_MNIST_STD[0]:.4f}" in card["summary"]
    assert ", ".join(FASHION_MNIST_CLASSES) in card["summary"]
    seg = cards.segmenter_card(train_scenes.SegmenterRecipe(size=32, eval_scenes=9), FakeModel(), "tree")
    assert "32x32" in seg["summary"] and "(9, seed 1234)" in seg["data"]
    lm = cards.lm_card(LMRecipe(arm="chain"), FakeModel(), "chain")
    assert "arm 'chain'" in lm["summary"] and lm["title"] == "GrootL-nano, byte-level, fortunes"
    assert cards._averaged_note(SimpleNamespace(ema_decay=0.0)) == ""
    assert "decay 0.5 per step" in cards._averaged_note(SimpleNamespace(ema_decay=0.5))


def test_the_table_of_tasks():
    assert run.TASKS == ("classify", "segment", "lm") == tuple(run.RECIPES)
    for name, task in run.RECIPES.items():
        assert task.name == name
        with pytest.raises(dataclasses.FrozenInstanceError):
            task.name = "other"
    assert run.RECIPES["lm"].arms == ("tree", "chain", "plain")
    assert run.RECIPES["classify"].arms == run.RECIPES["segment"].arms == ("tree", "raster")
    assert type(run.RECIPES["lm"].make_recipe("plain")).__name__ == "LMRecipe"
    assert run.RECIPES["lm"].make_recipe("plain").arm == "plain"
    assert type(run.RECIPES["segment"].make_recipe("tree")).__name__ == "SegmenterRecipe"


def test_bad_task_or_arm_is_refused_before_writing(tmp_path):
    out = tmp_path / "never"
    with pytest.raises(
        ValueError, match=re.escape("train: task must be one of ('classify', 'segment', 'lm'), got 'detect'")
    ):
        run.run_training("detect", out)
    with pytest.raises(
        ValueError, match=re.escape("train lm: --arm must be one of ('tree', 'chain', 'plain'), got 'raster'")
    ):
        run.run_training("lm", out, arm="raster")
    for task in ("classify", "segment"):
        with pytest.raises(
            ValueError, match=re.escape(f"train {task}: --arm must be one of ('tree', 'raster'), got 'plain'")
        ):
            run.run_training(task, out, arm="plain")
    assert not out.exists()


def test_unknown_recipe_field_is_refused(fakes, tmp_path):
    with pytest.raises(ValueError, match=re.escape("train: unknown recipe field 'bogus' for ClassifierRecipe")):
        run.run_training("classify", tmp_path / "c", progress=False, recipe_overrides={"bogus": 1})
    with pytest.raises(ValueError, match=re.escape("train: unknown recipe field 'size' for LMRecipe")):
        run.run_training("lm", tmp_path / "l", progress=False, recipe_overrides={"size": 1})
    assert not fakes["recipes"] and not fakes["bundles"]


@pytest.mark.parametrize("task", ["classify", "segment", "lm"])
def test_overrides_reach_the_recipe(fakes, tmp_path, task):
    default = run.RECIPES[task].make_recipe("tree")
    run.run_training(task, tmp_path / "default", progress=False)
    kept = fakes["recipes"][-1]
    assert kept.train == dataclasses.replace(default.train, seed=0) and kept.batch_size == default.batch_size
    assert "scan_order" not in kept.model

    arm = "plain" if task == "lm" else "raster"
    model_key = "hidden_size" if task == "lm" else "channels"
    run.run_training(
        task,
        tmp_path / "set",
        steps=5,
        seed=3,
        lr=1e-4,
        ema_decay=0.9,
        batch_size=2,
        arm=arm,
        progress=False,
        recipe_overrides={"model": {model_key: 8}},
    )
    recipe = fakes["recipes"][-1]
    assert (recipe.train.steps, recipe.train.seed, recipe.train.lr, recipe.train.ema_decay) == (5, 3, 1e-4, 0.9)
    assert recipe.batch_size == 2
    assert recipe.train.warmup_steps == default.train.warmup_steps
    assert recipe.model == {**default.model, model_key: 8, **({"scan_order": arm} if task != "lm" else {})}
    if task == "lm":
        assert recipe.arm == "plain"
    folder, bundle = fakes["bundles"][-1]
    assert ("tokenizer" in bundle) == (task == "lm")


def test_bundle_copy(fakes, monkeypatch, tmp_path):
    def write_something(model, folder, **kwargs):
        folder.mkdir(parents=True)
        (folder / "README.md").write_text(kwargs["title"])

    monkeypatch.setattr(run, "write_bundle", write_something)
    (tmp_path / "ckpt" / "fortunes").mkdir(parents=True)
    (tmp_path / "ckpt" / "fortunes" / "stale").write_text("x")
    run.run_training("lm", tmp_path / "out", progress=False, bundle="fortunes", checkpoints_root=tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt" / "fortunes").iterdir()) == ["README.md"]
    assert json.loads((tmp_path / "out" / "result.json").read_text())["command"]


def test_importing_run_imports_no_recipe_module():
    code = (
        "import sys, grootvl_core.train.run as r; "
        "print([m for m in ('grootvl_core.train.fashion_mnist', 'grootvl_core.train.scenes', "
        "'grootvl_core.train.fortunes', 'grootvl_core.generation') if m in sys.modules])"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.stdout.strip() == "[]"
