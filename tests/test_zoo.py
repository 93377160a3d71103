"""The zoo table (grootvl_core.zoo): entries resolvable, reported numbers, weight sources, offline."""

from __future__ import annotations

import hashlib

import pytest
import torch

from grootvl_core import hub, zoo
from grootvl_core.models import GrootV

TINY = dict(channels=16, depths=[1, 1, 1, 1], num_classes=10)

# Reference section 5 (README) and 3.1 (exact parameter counts).
REPORTED = {
    "grootv-t": (83.4, 29_958_600, "4.8G", "1OIiMBxk92WhPssRg0pv0U5y8ZBtHq2eQ"),
    "grootv-s": (84.2, 51_331_624, "8.5G", "1G6DdEI3JDSltfbmZmcqz79rxM1t01K_8"),
    "grootv-b": (84.8, 90_597_096, "15.1G", "1-8rwMVinj_fV9YMlzx6fGwdjxyLcjd3w"),
}


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Empty grootvl cache, empty HF cache, no bundled folders, offline."""
    monkeypatch.setenv("GROOTVL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("GROOTVL_CHECKPOINTS", str(tmp_path / "checkpoints"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("GROOTVL_HUB_ORG", raising=False)
    return tmp_path


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_every_entry_resolves(name, monkeypatch):
    monkeypatch.setenv("GROOTVL_HUB_ORG", "my-lab")  # bare mirror names resolve only with an organisation
    entry = zoo.get_entry(name)
    assert entry.name == name and entry.task in zoo.TASKS
    factory, filter_fn = zoo.resolve_architecture(entry.arch)
    assert callable(factory)
    if entry.task == "classification":
        assert filter_fn is not None and entry.preprocess.input_size > 0
    cls = zoo._model_class(entry)
    assert hasattr(cls, "from_pretrained") and hasattr(cls, "save_pretrained")
    sources = [entry.bundled, entry.hub_repo, entry.official]
    assert any(s is not None for s in sources), f"{name} names no weights"
    if entry.hub_repo:
        assert zoo.hub_repo_id(entry).count("/") == 1
    assert zoo.weights_source(entry) in zoo.OFFLINE_SOURCES + ("hub", "official", "none")


def test_reported_numbers_match_reference():
    assert [n for n in zoo.list_models("classification") if n in REPORTED] == ["grootv-t", "grootv-s", "grootv-b"]
    for name, (acc, params, flops, gdrive) in REPORTED.items():
        e = zoo.get_entry(name)
        assert e.metrics["imagenet-1k acc@1"] == acc
        assert (e.params, e.flops, e.official.gdrive_id) == (params, flops, gdrive)
        # reference 3.6: resize the shorter side to 224 (crop ratio 1.0), bicubic, ImageNet mean/std
        p = e.preprocess
        assert (p.input_size, p.resize, p.interpolation) == (224, 224, "bicubic")
        assert p.mean == (0.485, 0.456, 0.406) and p.std == (0.229, 0.224, 0.225)


@pytest.mark.slow
def test_entry_param_counts_match_built_models():
    for name, (_, params, _, _) in REPORTED.items():
        model = zoo.build_model(name)
        assert sum(p.numel() for p in model.parameters()) == params


def test_unknown_name_and_task_errors():
    with pytest.raises(ValueError, match="unknown model 'grootv-xl'.*grootv-t, grootv-s, grootv-b"):
        zoo.get_entry("grootv-xl")
    with pytest.raises(ValueError, match="task must be one of"):
        zoo.list_models("detection")
    with pytest.raises(ValueError, match="unknown architecture 'grootv_huge'"):
        zoo.resolve_architecture("grootv_huge")
    with pytest.raises(ValueError, match="already in the zoo"):
        zoo.register(zoo.get_entry("grootv-t"))


def test_hub_mirror_is_opt_in(monkeypatch):
    """No Hub organisation nobody here controls: a bare mirror name is used only with GROOTVL_HUB_ORG set."""
    monkeypatch.delenv("GROOTVL_HUB_ORG", raising=False)
    assert not hasattr(zoo, "DEFAULT_HUB_ORG")
    for name in ("grootv-t", "grootv-s", "grootv-b", "grootl-130m"):
        assert zoo.hub_repo_id(name) is None
        assert all(loc.kind not in ("hub", "hub-cache") for loc in zoo.weights_locations(name))
    assert zoo.hub_repo_id("mamba-130m") == "state-spaces/mamba-130m-hf"
    monkeypatch.setenv("GROOTVL_HUB_ORG", "my-lab")
    assert zoo.hub_repo_id("grootv-t") == "my-lab/grootv-tiny-in1k"
    assert [loc.kind for loc in zoo.weights_locations("grootv-t")][-2:] == ["hub", "official"]
    assert zoo.hub_repo_id("mamba-130m") == "state-spaces/mamba-130m-hf"


def test_table_names_only_sources_that_exist():
    """Every Hub id the table names is a real repo (full id); a full-id mirror of official weights pins a revision."""
    for entry in zoo.MODELS.values():
        if entry.hub_repo and "/" in entry.hub_repo and entry.official is not None:
            assert entry.hub_revision, entry.name
    mirror = zoo.ZooEntry(
        name="tiny-mirror",
        task="classification",
        arch="test_grootv",
        hub_repo="someone/mirror",
        official=zoo.OfficialCheckpoint(gdrive_id="X", filename="x.pth"),
    )
    with pytest.raises(ValueError, match="pin hub_revision"):
        zoo.register(mirror)
    assert "tiny-mirror" not in zoo.MODELS


def test_locate_weights_names_the_real_source(isolated):
    """The GrootV models come from the authors' Google Drive files, not 'the Hub'."""
    for name in ("grootv-t", "grootv-s", "grootv-b"):
        loc = zoo.locate_weights(name)
        assert loc.kind == "official" and not loc.offline and loc.official is zoo.get_entry(name).official
        text = loc.describe()
        assert "Google Drive" in text and "Hub" not in text
        assert loc.official.gdrive_id in loc.describe(detail=True)
    mamba = zoo.locate_weights("mamba-130m")
    assert mamba.kind == "hub" and "state-spaces/mamba-130m-hf" in mamba.describe()
    assert zoo.locate_weights(zoo.ZooEntry(name="x", task="classification", arch="test_grootv")).kind == "none"


def test_one_order_for_everything(isolated, monkeypatch):
    """weights_source, is_cached, available_offline and load_model all follow weights_locations."""
    torch.manual_seed(6)
    src = GrootV(**TINY).eval()
    src.save_pretrained(isolated / "checkpoints" / "tiny-both")
    src.save_pretrained(isolated / "home" / "models" / "tiny-both")
    entry = zoo.ZooEntry(
        name="tiny-both",
        task="classification",
        arch="test_grootv",
        kwargs=dict(TINY),
        bundled="tiny-both",
        official=zoo.OfficialCheckpoint(gdrive_id="X", filename="x.pth"),
    )
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    kinds = [loc.kind for loc in zoo.weights_locations("tiny-both")]
    assert kinds == ["bundled", "cache", "official"]
    assert [k for k in zoo.SOURCES if k in kinds] == kinds
    assert zoo.weights_source("tiny-both") == "bundled" and zoo.available_offline() == ["tiny-both"]
    assert zoo.OFFLINE_SOURCES == ("bundled", "cache", "hub-cache", "official-downloaded")


def test_nothing_cached_gives_clear_offline_error(isolated):
    assert zoo.available_offline() == []
    assert not zoo.is_cached("grootv-t") and zoo.weights_source("grootv-t") == "official"
    with pytest.raises(hub.OfflineError, match="HF_HUB_OFFLINE=1.*work offline now: none"):
        zoo.load_model("grootv-t")


def test_bundled_folder_loads_offline(isolated, monkeypatch):
    torch.manual_seed(3)
    src = GrootV(**TINY).eval()
    src.save_pretrained(isolated / "checkpoints" / "tiny-bundled")
    entry = zoo.ZooEntry(
        name="tiny-bundled",
        task="classification",
        arch="test_grootv",
        kwargs=dict(TINY),
        bundled="tiny-bundled",
    )
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)
    assert zoo.weights_source("tiny-bundled") == "bundled" and zoo.available_offline() == ["tiny-bundled"]
    model = zoo.load_model("tiny-bundled")
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), src.state_dict().values()))
    # The offline error for another model now names the bundled one.
    with pytest.raises(hub.OfflineError, match="work offline now: tiny-bundled"):
        zoo.load_model("grootv-s")


def test_official_checkpoint_is_converted_once(isolated, monkeypatch):
    """An official training checkpoint already in downloads/ is verified, converted to the cache, reused."""
    torch.manual_seed(4)
    src = GrootV(**TINY).eval()
    raw = isolated / "home" / "downloads" / "tiny_official.pth"
    raw.parent.mkdir(parents=True)
    torch.save({"model": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 1}, raw)
    digest = hashlib.sha256(raw.read_bytes()).hexdigest()
    official = zoo.OfficialCheckpoint(gdrive_id="IGNORED", filename="tiny_official.pth", sha256=digest)
    entry = zoo.ZooEntry(
        name="tiny-official", task="classification", arch="test_grootv", kwargs=dict(TINY), official=official
    )
    monkeypatch.setitem(zoo.MODELS, entry.name, entry)

    assert zoo.weights_source("tiny-official") == "official-downloaded" and zoo.is_cached("tiny-official")
    model = zoo.load_model("tiny-official")
    assert torch.equal(model.head.weight, src.head.weight)
    assert sorted(p.name for p in zoo.cache_dir("tiny-official").iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
    ]
    assert zoo.weights_source("tiny-official") == "cache"

    # A wrong digest is caught before conversion.
    bad = zoo.ZooEntry(
        name="tiny-bad",
        task="classification",
        arch="test_grootv",
        kwargs=dict(TINY),
        official=zoo.OfficialCheckpoint(gdrive_id="X", filename="tiny_official.pth", sha256="0" * 64),
    )
    monkeypatch.setitem(zoo.MODELS, bad.name, bad)
    with pytest.raises(hub.CheckpointError, match="sha256"):
        zoo.load_model("tiny-bad")


def test_load_local_weights_file_and_folder(tmp_path):
    torch.manual_seed(5)
    src = GrootV(**TINY).eval()
    entry = zoo.ZooEntry(name="tiny-local", task="classification", arch="test_grootv", kwargs=dict(TINY))
    src.save_pretrained(tmp_path / "folder")
    torch.save({"model": src.state_dict()}, tmp_path / "file.pth")
    for path in (tmp_path / "folder", tmp_path / "file.pth"):
        model = zoo.load_local_weights(entry, path)
        assert not model.training and torch.equal(model.head.bias, src.head.bias)
    wrong = zoo.ZooEntry(name="tiny-wrong", task="classification", arch="test_grootv", kwargs=dict(TINY, num_classes=3))
    with pytest.raises(hub.CheckpointError, match="head.weight"):
        zoo.load_local_weights(wrong, tmp_path / "file.pth")


def test_classifier_preprocessing_agrees_with_the_timm_cfg():
    """Each preprocessing number is stated once per model family: the ImageNet ones by timm, the
    Fashion-MNIST ones in grootvl_core.data.fashion_mnist; the zoo's Preprocess (read without
    importing timm) and the models' timm pretrained cfgs must say the same."""
    import timm
    from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

    import grootvl_core.models  # noqa: F401  (registers the timm architectures)
    from grootvl_core.data.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD

    default = zoo.Preprocess()
    assert (default.mean, default.std) == (tuple(IMAGENET_DEFAULT_MEAN), tuple(IMAGENET_DEFAULT_STD))
    checked = 0
    for name in zoo.list_models():
        entry = zoo.get_entry(name)
        if entry.task != "classification":
            continue
        cfg = timm.models.get_pretrained_cfg(entry.arch)
        pre = entry.preprocess
        assert (pre.mean, pre.std) == (tuple(cfg.mean), tuple(cfg.std)), name
        assert pre.interpolation == cfg.interpolation and pre.input_size == cfg.input_size[-1], name
        assert pre.resize == round(pre.input_size / cfg.crop_pct) and pre.grayscale == (cfg.input_size[0] == 1), name
        checked += 1
    assert checked >= 4
    assert zoo.get_entry("grootv-nano-fmnist").preprocess.mean == FASHION_MNIST_MEAN
    assert zoo.get_entry("grootv-nano-scenes").preprocess.std == FASHION_MNIST_STD
