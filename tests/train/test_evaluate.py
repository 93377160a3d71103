"""Top-1 / top-5 evaluation (grootvl_core.train.evaluate): exact counts, no duplicated images under DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from grootvl_core import cli, zoo
from grootvl_core.classify import ImageTransform
from grootvl_core.train.evaluate import ShardSampler, evaluate, evaluate_folder

PRE = zoo.Preprocess(input_size=32, resize=32)
COLORS = {"a_red": (220, 20, 20), "b_green": (20, 220, 20), "c_blue": (20, 20, 220)}


class MeanColor(torch.nn.Module):
    """Logits = per-channel image mean: red / green / blue images go to classes 0 / 1 / 2."""

    num_classes = 3

    def __init__(self):
        super().__init__()
        self.dummy = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        return x.mean(dim=(2, 3)) + self.dummy


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """7 images in 3 class folders (3 + 2 + 2); one blue image sits in the red folder (a miss)."""
    root = tmp_path_factory.mktemp("val")
    layout = {
        "a_red": ["a_red", "a_red", "c_blue"],
        "b_green": ["b_green", "b_green"],
        "c_blue": ["c_blue", "c_blue"],
    }
    rng = np.random.default_rng(0)
    for cls, colors in layout.items():
        (root / cls).mkdir()
        for i, color in enumerate(colors):
            img = np.clip(np.array(COLORS[color]) + rng.integers(-10, 10, (40, 48, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / cls / f"{i}.png")
    return root


@pytest.mark.parametrize("length,world", [(7, 2), (7, 3), (2, 4), (0, 2), (50000, 8)])
def test_shard_sampler_covers_each_index_once(length, world):
    shards = [list(ShardSampler(length, r, world)) for r in range(world)]
    assert sorted(i for s in shards for i in s) == list(range(length))
    assert [len(ShardSampler(length, r, world)) for r in range(world)] == [len(s) for s in shards]
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


def test_shard_sampler_rejects_bad_rank():
    with pytest.raises(ValueError, match="rank"):
        ShardSampler(7, 2, 2)


def test_exact_counts_single_process(folder):
    res = evaluate_folder(MeanColor(), folder, ImageTransform(PRE), batch_size=3, workers=0, progress=False)
    assert (res.correct1, res.correct5, res.total) == (6, 7, 7)
    assert res.top1 == pytest.approx(600 / 7) and res.top5 == 100.0


def test_imagenet_root_with_val_is_accepted(folder, tmp_path):
    (tmp_path / "imagenet").mkdir()
    (tmp_path / "imagenet" / "val").symlink_to(folder, target_is_directory=True)
    res = evaluate_folder(MeanColor(), tmp_path / "imagenet", ImageTransform(PRE), workers=0, progress=False)
    assert (res.correct1, res.total) == (6, 7)


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        evaluate_folder(MeanColor(), tmp_path / "nope", ImageTransform(PRE), workers=0)
    (tmp_path / "empty" / "cls").mkdir(parents=True)
    with pytest.raises(ValueError, match="no images"):
        evaluate_folder(MeanColor(), tmp_path / "empty", ImageTransform(PRE), workers=0)
    with pytest.raises(ValueError, match="batch_size"):
        evaluate(MeanColor(), [], batch_size=0)


def test_cli_evaluate_single_process(folder, tmp_path, monkeypatch, capsys):
    from grootvl_core.models import GrootV

    torch.manual_seed(0)
    GrootV(channels=16, depths=[1, 1, 1, 1], num_classes=3).save_pretrained(tmp_path / "w")
    entry = zoo.ZooEntry(name="tiny-eval", task="classification", arch="test_grootv", preprocess=PRE)
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    rc = cli.main(
        [
            "evaluate",
            "--model",
            "tiny-eval",
            "--weights",
            str(tmp_path / "w"),
            "--data",
            str(folder),
            "--batch-size",
            "4",
            "--workers",
            "0",
            "--no-progress",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0 and "images 7  processes 1" in out and "/7)" in out


_SCRIPT = textwrap.dedent("""
    import json, os, sys
    import torch
    sys.path.insert(0, {testdir!r})
    from test_evaluate import MeanColor, PRE
    from grootvl_core import cli, zoo
    from grootvl_core.classify import ImageTransform
    from grootvl_core.train.evaluate import evaluate, init_distributed
    from torchvision.datasets import ImageFolder

    class Recording(ImageFolder):
        seen = []
        def __getitem__(self, i):
            self.seen.append(i)
            return super().__getitem__(i)

    rank, world, device = init_distributed("cpu")
    assert torch.distributed.get_backend() == "gloo"
    ds = Recording({data!r}, transform=ImageTransform(PRE))
    res = evaluate(MeanColor(), ds, batch_size=3, workers=0, device=device, progress=rank == 0)
    with open(os.path.join({out!r}, f"rank{{rank}}.json"), "w") as f:
        json.dump(dict(seen=Recording.seen, world=world, counts=[res.correct1, res.correct5, res.total]), f)
    zoo.register(zoo.ZooEntry(name="tiny-eval", task="classification", arch="test_grootv", preprocess=PRE))
    sys.exit(cli.main(["evaluate", "--model", "tiny-eval", "--weights", {weights!r}, "--data", {data!r},
                       "--batch-size", "2", "--workers", "0", "--device", "cpu"]))
""")


@pytest.mark.slow
def test_torchrun_two_processes_count_every_image_once(folder, tmp_path, capsys):
    from grootvl_core.models import GrootV

    torch.manual_seed(0)
    GrootV(channels=16, depths=[1, 1, 1, 1], num_classes=3).save_pretrained(tmp_path / "w")
    script = tmp_path / "run_eval.py"
    script.write_text(
        _SCRIPT.format(
            testdir=os.path.dirname(__file__),
            data=str(folder),
            out=str(tmp_path),
            weights=str(tmp_path / "w"),
        )
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "GROOTVL_OPS": "reference", "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-4000:]

    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]
    assert [r["world"] for r in ranks] == [2, 2]
    assert sorted(ranks[0]["seen"]) == [0, 2, 4, 6] and sorted(ranks[1]["seen"]) == [
        1,
        3,
        5,
    ]  # 4 + 3, no padding
    assert ranks[0]["counts"] == ranks[1]["counts"] == [6, 7, 7]  # all-reduced, exact

    # The CLI under torchrun prints once (rank 0) and agrees with a single-process run.
    assert res.stdout.count("top-1") == 1 and "images 7  processes 2" in res.stdout
    entry = zoo.ZooEntry(name="tiny-eval", task="classification", arch="test_grootv", preprocess=PRE)
    model = zoo.load_local_weights(entry, tmp_path / "w")
    single = evaluate_folder(model, folder, ImageTransform(PRE), batch_size=7, workers=0, progress=False)
    assert f"top-1 {single.top1:.3f}%  ({single.correct1}/7)" in res.stdout
    assert f"top-5 {single.top5:.3f}%  ({single.correct5}/7)" in res.stdout
