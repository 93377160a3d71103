"""A few training steps of each bundled-model recipe, end to end: data, loop, checkpoints, resume,
evaluation, the bundle folder and its reference outputs (issue 5)."""

from __future__ import annotations

import json

import pytest
import torch

from grootvl_core.data import fashion_mnist, fortunes
from grootvl_core.models import GrootVSegmenter
from grootvl_core.train.loop import TrainConfig, resolve_device, to_device, train
from grootvl_core.train.run import rows_to_mask, run_training

needs_fmnist = pytest.mark.skipif(
    not (fashion_mnist.default_root() / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed (scripts/setup.sh)",
)
needs_fortunes = pytest.mark.skipif(
    not fortunes.default_root().is_dir(), reason="Debian package fortunes not installed (scripts/setup.sh)"
)

TINY_VISION = {"channels": 8, "depths": [1, 1, 1, 1]}


def _check_bundle(out, task):
    model_dir = out / "model"
    for name in ("config.json", "model.safetensors", "README.md", "metrics.json", "reference_outputs.json"):
        assert (model_dir / name).is_file(), name
    assert (out / "command.txt").read_text().strip()
    card = (model_dir / "README.md").read_text()
    assert "## How it was trained" in card and "## Evaluation" in card
    result = json.loads((out / "result.json").read_text())
    assert result["step"] >= 1 and result["final_metrics"]
    return json.loads((model_dir / "reference_outputs.json").read_text()), result


@needs_fmnist
@pytest.mark.parametrize("arm", ["tree", "raster"])
def test_classifier_recipe_smoke(tmp_path, arm):
    run_training(
        "classify",
        tmp_path,
        steps=2,
        batch_size=8,
        arm=arm,
        progress=False,
        argv=["train", "classify"],
        recipe_overrides={"model": TINY_VISION, "eval_subset": 50, "input_size": 28},
    )
    refs, result = _check_bundle(tmp_path, "classify")
    assert 0.0 <= result["final_metrics"]["top1"] <= 1.0
    assert len(refs["predicted"]) == 8 and all(0 <= p < 10 for p in refs["predicted"])
    from grootvl_core.models import GrootV

    model = GrootV.from_pretrained(tmp_path / "model")
    assert model.num_classes == 10 and model.in_chans == 1 and model.scan_order == arm


@needs_fmnist
def test_segmenter_recipe_smoke(tmp_path):
    run_training(
        "segment",
        tmp_path,
        steps=2,
        batch_size=2,
        progress=False,
        argv=["train", "segment"],
        recipe_overrides={
            "model": dict(TINY_VISION, decoder_channels=16, aux_channels=8),
            "eval_scenes": 4,
            "periodic_eval_scenes": 2,
            "size": 64,
        },
    )
    refs, result = _check_bundle(tmp_path, "segment")
    assert 0.0 <= result["final_metrics"]["mIoU"] <= 1.0
    masks = [rows_to_mask(m) for m in refs["predicted_masks"]]
    assert masks[0].shape == (64, 64) and masks[0].max() <= 10


@needs_fortunes
def test_lm_recipe_smoke_and_arms(tmp_path):
    tiny = {"model": {"hidden_size": 16, "num_hidden_layers": 1, "state_size": 4}, "seq_len": 48, "eval_cookies": 8}
    for arm in ("tree", "chain", "plain"):
        out = tmp_path / arm
        run_training(
            "lm", out, steps=2, batch_size=4, arm=arm, progress=False, argv=["train", "lm"], recipe_overrides=tiny
        )
        refs, result = _check_bundle(out, "lm")
        assert result["final_metrics"]["bits_per_byte"] > 0
        assert len(refs["continuations"]) == 3
        assert (out / "model" / "tokenizer_config.json").is_file()
    with pytest.raises(ValueError, match="--arm"):
        run_training("lm", tmp_path / "bad", arm="raster", recipe_overrides=tiny)


def test_device_resolution_and_batch_moves():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    batch = (torch.ones(2), {"ids": torch.zeros(1, dtype=torch.long), "n": 3}, [torch.ones(1)], None)
    moved = to_device(batch, torch.device("cpu"))
    assert type(moved) is tuple and moved[1]["n"] == 3 and moved[3] is None and isinstance(moved[2], list)
    assert torch.equal(moved[1]["ids"], batch[1]["ids"]) and moved[1]["ids"].dtype == torch.long
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            resolve_device("cuda")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal where torch sees no GPU")
def test_cli_train_refuses_a_missing_gpu_before_writing(capsys, tmp_path):
    from grootvl_core.cli import main

    out = tmp_path / "never"
    assert main(["train", "lm", "--out", str(out), "--device", "cuda"]) == 1
    assert "no CUDA GPU" in capsys.readouterr().err
    assert not out.exists()


@needs_fmnist
@needs_fortunes
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_recipes_train_on_the_gpu(tmp_path):
    """Each recipe trains on CUDA (with the weight average), evaluates there, and writes a CPU model whose
    card names the GPU; the written weights are the averaged ones."""
    from safetensors.torch import load_file

    cases = {
        "classify": {"model": TINY_VISION, "eval_subset": 50, "input_size": 28},
        "segment": {
            "model": dict(TINY_VISION, decoder_channels=16, aux_channels=8),
            "eval_scenes": 4,
            "periodic_eval_scenes": 2,
            "size": 64,
        },
        "lm": {"model": {"hidden_size": 16, "num_hidden_layers": 1, "state_size": 4}, "seq_len": 48, "eval_cookies": 8},
    }
    for task, overrides in cases.items():
        out = tmp_path / task
        result = run_training(
            task,
            out,
            steps=3,
            batch_size=4,
            device="cuda",
            ema_decay=0.5,
            progress=False,
            argv=["train", task],
            recipe_overrides=overrides,
        )
        _check_bundle(out, task)
        assert all(v == v for v in result["final_metrics"].values() if isinstance(v, float)), "no NaN metrics"
        assert torch.cuda.get_device_name(0) in json.loads((out / "model" / "metrics.json").read_text())["machine"]
        shipped = load_file(out / "model" / "model.safetensors")
        averaged = torch.load(out / "last.pt", map_location="cpu", weights_only=False)["model_ema"]
        for k, v in shipped.items():
            torch.testing.assert_close(v, averaged[k].to(v.dtype))


def _make_linear():
    torch.manual_seed(0)
    return torch.nn.Linear(4, 1)


def _linear_batches(step):
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(step))
    return x, x.sum(1, keepdim=True)


def _mse(m, batch):
    x, y = batch
    return ((m(x) - y) ** 2).mean()


def _stopping_after(steps, loss_fn):
    """``loss_fn`` that raises KeyboardInterrupt (like Ctrl-C) once ``steps`` steps have run."""
    calls = {"n": 0}

    def stopping_loss(m, batch):
        calls["n"] += 1
        if calls["n"] > steps:
            raise KeyboardInterrupt
        return loss_fn(m, batch)

    return stopping_loss


def test_loop_resumes_exactly_where_it_stopped(tmp_path):
    """Training 6 steps in one go equals 3 steps, a stop, and a resume for the remaining 3."""
    make, batches, loss_fn = _make_linear, _linear_batches, _mse
    cfg = TrainConfig(steps=6, lr=0.05, warmup_steps=2, eval_every=0, checkpoint_every=3)
    full = make()
    train(full, batches, loss_fn, cfg, tmp_path / "full", progress=False)

    part = make()
    half = TrainConfig(**cfg.__dict__)
    # stop after 3 steps, then resume for the rest
    with pytest.raises(KeyboardInterrupt):
        train(part, batches, _stopping_after(3, loss_fn), half, tmp_path / "part", progress=False)
    resumed = make()
    train(resumed, batches, loss_fn, half, tmp_path / "part", resume=True, progress=False)
    for a, b in zip(full.parameters(), resumed.parameters()):
        torch.testing.assert_close(a, b)


def test_loop_weight_average_is_evaluated_returned_and_resumed(tmp_path):
    """ema_decay: the returned model is the running average of the weights (checked against a hand-made
    one), the periodic evaluation scores it (and the raw weights as raw/...), and a stopped run resumes
    to the same average."""
    decay = 0.8
    make, batches, loss_fn = _make_linear, _linear_batches, _mse

    def evaluate(m):
        return {"w0": float(m.weight[0, 0])}

    # the raw trajectory, by the same loop without the average
    raw_cfg = TrainConfig(steps=6, lr=0.05, warmup_steps=2, eval_every=0, checkpoint_every=0)
    expected = {k: v.detach().clone() for k, v in make().state_dict().items()}
    # a raw run recording the weights after each step (seen before step n+1's loss, and at the end)
    seen = []
    raw = make()

    def recording_loss(m, batch):
        seen.append({k: v.detach().clone() for k, v in m.state_dict().items()})
        return loss_fn(m, batch)

    train(raw, batches, recording_loss, raw_cfg, tmp_path / "raw", progress=False)
    after = seen[1:] + [{k: v.detach().clone() for k, v in raw.state_dict().items()}]
    for weights in after:
        expected = {k: decay * expected[k] + (1 - decay) * weights[k] for k in expected}

    cfg = TrainConfig(**{**raw_cfg.__dict__, "ema_decay": decay, "eval_every": 3, "checkpoint_every": 3})
    averaged = make()
    result = train(averaged, batches, loss_fn, cfg, tmp_path / "ema", evaluate=evaluate, progress=False)
    for k, v in averaged.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    assert not torch.allclose(averaged.weight, raw.weight), "the average differs from the last weights"
    last = result["history"][-1]
    assert last["w0"] == pytest.approx(float(expected["weight"][0, 0]))
    assert last["raw/w0"] == pytest.approx(raw.weight[0, 0].item())
    state = torch.load(tmp_path / "ema" / "last.pt", weights_only=False)
    torch.testing.assert_close(state["model"]["weight"], raw.weight.detach())
    torch.testing.assert_close(state["model_ema"]["weight"], expected["weight"])

    with pytest.raises(KeyboardInterrupt):
        train(make(), batches, _stopping_after(3, loss_fn), cfg, tmp_path / "part", progress=False)
    resumed = make()
    train(resumed, batches, loss_fn, cfg, tmp_path / "part", resume=True, progress=False)
    for k, v in resumed.state_dict().items():
        torch.testing.assert_close(v, expected[k])
    with pytest.raises(ValueError, match="ema_decay must be in"):
        TrainConfig(ema_decay=1.0)


def test_loop_stops_cleanly_on_divergence(tmp_path):
    model = torch.nn.Linear(2, 1)

    def batches(step):
        return torch.ones(1)

    with pytest.raises(FloatingPointError, match="lower the learning rate"):
        train(
            model,
            batches,
            lambda m, b: torch.tensor(float("nan")),
            TrainConfig(steps=3, warmup_steps=1),
            tmp_path,
            progress=False,
        )
    assert (tmp_path / "last.pt").is_file()


def test_cli_train_rejects_bad_arguments(capsys, tmp_path):
    from grootvl_core.cli import main

    out = tmp_path / "never"
    assert main(["train", "lm", "--out", str(out), "--steps", "0"]) == 1
    assert "--steps must be >= 1" in capsys.readouterr().err
    assert main(["train", "classify", "--out", str(out), "--arm", "plain"]) == 1
    assert "--arm" in capsys.readouterr().err
    assert not out.exists(), "a rejected command leaves nothing behind"


def test_segmenter_backbone_starts_from_a_trained_classifier(tmp_path):
    from grootvl_core.models import GrootV, GrootVSegmenter
    from grootvl_core.train.scenes import init_backbone

    torch.manual_seed(0)
    classifier = GrootV(channels=8, depths=[1, 1, 1, 1], num_classes=10, in_chans=1)
    classifier.save_pretrained(tmp_path / "clf")
    seg = GrootVSegmenter(
        channels=8,
        depths=[1, 1, 1, 1],
        num_classes=3,
        class_names=["a", "b", "c"],
        palette=[[0, 0, 0]] * 3,
        in_chans=1,
        decoder_channels=16,
        aux_channels=8,
    )
    n = init_backbone(seg, tmp_path / "clf")
    source = classifier.state_dict()
    assert n == len(seg.backbone.state_dict())
    for k, v in seg.backbone.state_dict().items():
        torch.testing.assert_close(v, source[k])
    other = GrootVSegmenter(
        channels=8,
        depths=[1, 1, 2, 1],
        num_classes=3,
        class_names=["a", "b", "c"],
        palette=[[0, 0, 0]] * 3,
        in_chans=1,
        decoder_channels=16,
        aux_channels=8,
    )
    with pytest.raises(ValueError, match="does not fit"):
        init_backbone(other, tmp_path / "clf")


@needs_fmnist
def test_classifier_scene_pretraining_smoke(tmp_path, capsys):
    """--augment scene --input-size 48 --init-from: fine-tunes a classifier on garments as they
    look inside scenes, starting from another classifier's weights."""
    from grootvl_core.cli import main
    from grootvl_core.models import GrootV

    torch.manual_seed(0)
    start = GrootV(**TINY_VISION, num_classes=10, in_chans=1)
    start.save_pretrained(tmp_path / "start")
    out = tmp_path / "run"
    # the recipe's own model (channels 32) does not fit the tiny start: a clear error, no training
    assert (
        main(
            [
                "train",
                "classify",
                "--out",
                str(out),
                "--steps",
                "1",
                "--batch-size",
                "4",
                "--augment",
                "scene",
                "--input-size",
                "48",
                "--init-from",
                str(tmp_path / "start"),
            ]
        )
        == 1
    )
    assert "does not fit" in capsys.readouterr().err and not (out / "last.pt").exists()
    run_training(
        "classify",
        out,
        steps=2,
        batch_size=4,
        progress=False,
        argv=["train", "classify"],
        recipe_overrides={
            "model": TINY_VISION,
            "eval_subset": 20,
            "input_size": 48,
            "augment": "scene",
            "init_from": str(tmp_path / "start"),
        },
    )
    refs, result = _check_bundle(out, "classify")
    assert result["recipe"]["augment"] == "scene" and result["recipe"]["input_size"] == 48
    assert "segmentation scene" in (out / "model" / "README.md").read_text()
    assert GrootV.from_pretrained(out / "model").num_classes == 10


def test_cli_train_classify_only_options(capsys, tmp_path):
    from grootvl_core.cli import main

    out = tmp_path / "never"
    assert main(["train", "segment", "--out", str(out), "--augment", "scene"]) == 1
    assert "classify task only" in capsys.readouterr().err
    assert main(["train", "classify", "--out", str(out), "--input-size", "8"]) == 1
    assert "--input-size must be >= 16" in capsys.readouterr().err
    assert main(["train", "classify", "--out", str(out), "--init-from", str(tmp_path)]) == 1
    assert "no config.json" in capsys.readouterr().err
    assert main(["train", "lm", "--out", str(out), "--init-from", str(tmp_path)]) == 1
    assert "classify and segment tasks only" in capsys.readouterr().err
    assert (
        main(["train", "segment", "--out", str(out), "--init-from", str(tmp_path), "--init-backbone", str(tmp_path)])
        == 1
    )
    assert "exclude each other" in capsys.readouterr().err
    assert main(["train", "segment", "--out", str(out), "--lr", "0"]) == 1
    assert "--lr must be > 0" in capsys.readouterr().err
    assert not out.exists()


def test_cli_depths_reach_the_recipe(monkeypatch, capsys, tmp_path):
    """--depths becomes the recipe's model depths (beside --init-from), --ema-decay the loop's; bad values are
    refused."""
    from grootvl_core.cli import main
    from grootvl_core.train import run

    seen = {}

    def fake_run_training(task, out, **kwargs):
        seen.update(kwargs["recipe_overrides"] or {}, ema_decay=kwargs["ema_decay"])
        return {"final_metrics": {"mIoU": 0.5}, "train_seconds": 1.0}

    monkeypatch.setattr(run, "run_training", fake_run_training)
    GrootVSegmenter(
        **TINY_VISION,
        num_classes=3,
        class_names=["a", "b", "c"],
        palette=[[0, 0, 0]] * 3,
        decoder_channels=16,
        aux_channels=8,
    ).save_pretrained(tmp_path / "start")
    assert (
        main(
            [
                "train",
                "segment",
                "--out",
                str(tmp_path / "run"),
                "--depths",
                "1,1,7,2",
                "--init-from",
                str(tmp_path / "start"),
            ]
        )
        == 0
    )
    assert seen == {"model": {"depths": [1, 1, 7, 2]}, "init_from": str(tmp_path / "start"), "ema_decay": None}
    assert main(["train", "segment", "--out", str(tmp_path / "run"), "--ema-decay", "0.999"]) == 0
    assert seen["ema_decay"] == 0.999
    out = tmp_path / "never"
    for bad in ("1,1,7", "1,1,0,2", "a,b,c,d"):
        assert main(["train", "classify", "--out", str(out), "--depths", bad]) == 1
        assert "--depths must be four positive integers" in capsys.readouterr().err
    assert main(["train", "lm", "--out", str(out), "--depths", "1,1,1,1"]) == 1
    assert "classify and segment tasks only" in capsys.readouterr().err
    for bad in ("1", "-0.5"):
        assert main(["train", "segment", "--out", str(out), "--ema-decay", bad]) == 1
        assert "--ema-decay must be in [0, 1)" in capsys.readouterr().err


@needs_fmnist
def test_segmenter_grows_from_a_shallower_one(tmp_path):
    """init_from a trained segmenter with larger depths: the run starts from it, added layers as
    identities, and ships the deeper model."""
    start = GrootVSegmenter(
        **dict(TINY_VISION, decoder_channels=16, aux_channels=8),
        num_classes=11,
        class_names=[str(i) for i in range(11)],
        palette=[[0, 0, 0]] * 11,
        in_chans=1,
    )
    start.save_pretrained(tmp_path / "start")
    out = tmp_path / "run"
    run_training(
        "segment",
        out,
        steps=1,
        batch_size=2,
        progress=False,
        argv=["train", "segment"],
        recipe_overrides={
            "model": dict(TINY_VISION, depths=[1, 1, 2, 2], decoder_channels=16, aux_channels=8),
            "eval_scenes": 2,
            "periodic_eval_scenes": 2,
            "size": 64,
            "init_from": str(tmp_path / "start"),
        },
    )
    _check_bundle(out, "segment")
    grown = GrootVSegmenter.from_pretrained(out / "model")
    assert list(grown.backbone.depths) == [1, 1, 2, 2]
    # the layers it shared with the start moved by one small step only
    torch.testing.assert_close(
        grown.backbone.levels[0].blocks[0].mlp.fc1.weight,
        start.backbone.levels[0].blocks[0].mlp.fc1.weight,
        atol=0.05,
        rtol=0,
    )
