"""Readers of the Debian-installed data and the deterministic scene generator (issue 5)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from grootvl_core.data import fashion_mnist, fortunes, scenes

needs_fmnist = pytest.mark.skipif(
    not (fashion_mnist.default_root() / "t10k-labels-idx1-ubyte.gz").exists(),
    reason="Debian package dataset-fashion-mnist not installed",
)
needs_fortunes = pytest.mark.skipif(
    not fortunes.default_root().is_dir(), reason="Debian package fortunes not installed"
)


def _write_idx(path: Path, arr: np.ndarray, magic: int, compress: bool = True):
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    if compress:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.fixture
def tiny_fmnist(tmp_path):
    rng = np.random.default_rng(0)
    for split, n in (("train", 12), ("t10k", 6)):
        imgs = rng.integers(0, 256, (n, 28, 28))
        # make each split recognisable: train images have even pixel (0, 0), test odd
        imgs[:, 0, 0] = (imgs[:, 0, 0] // 2) * 2 + (split == "t10k")
        _write_idx(tmp_path / f"{split}-images-idx3-ubyte", imgs, 0x803)
        _write_idx(tmp_path / f"{split}-labels-idx1-ubyte", np.arange(n) % 10, 0x801, compress=False)
    return tmp_path


def test_reads_idx_files_gz_and_plain(tiny_fmnist):
    x, y = fashion_mnist.load_fashion_mnist("train", tiny_fmnist)
    assert x.shape == (12, 28, 28) and x.dtype == np.uint8
    assert y.tolist() == [i % 10 for i in range(12)] and y.dtype == np.int64


def test_missing_data_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setenv("GROOTVL_FASHION_MNIST", str(tmp_path / "nope"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load_fashion_mnist("train")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        fashion_mnist.load_fashion_mnist("train", tmp_path)  # folder exists, files do not
    with pytest.raises(ValueError, match="'train' or 'test'"):
        fashion_mnist.load_fashion_mnist("val", tmp_path)
    with pytest.raises(FileNotFoundError, match="apt-get install fortunes"):
        fortunes.load_cookies(tmp_path / "nope")


def test_truncated_idx_is_a_clear_error(tiny_fmnist):
    path = tiny_fmnist / "train-labels-idx1-ubyte"
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="truncated"):
        fashion_mnist.load_fashion_mnist("train", tiny_fmnist)


def test_scenes_are_deterministic_and_never_mix_splits(tiny_fmnist):
    a = scenes.FashionScenes("train", 20, size=64, seed=3, root=tiny_fmnist)
    b = scenes.FashionScenes("train", 20, size=64, seed=3, root=tiny_fmnist)
    c = scenes.FashionScenes("train", 20, size=64, seed=4, root=tiny_fmnist)
    t = scenes.FashionScenes("test", 20, size=64, seed=3, root=tiny_fmnist)
    same = [
        np.array_equal(a.scene(i)[0], b.scene(i)[0]) and np.array_equal(a.scene(i)[1], b.scene(i)[1]) for i in range(20)
    ]
    assert all(same)
    assert any(not np.array_equal(a.scene(i)[0], c.scene(i)[0]) for i in range(20))
    # the pools are the splits' own images
    assert (a.images[:, 0, 0] % 2 == 0).all() and (t.images[:, 0, 0] % 2 == 1).all()
    for i in range(20):
        image, mask, items = t.scene(i)
        assert 2 <= len(items) <= 5 and all(0 <= k < len(t.images) for k in items)
        assert image.shape == mask.shape == (64, 64) and mask.max() <= 10
        present = set(np.unique(mask).tolist()) - {0}
        assert present <= {int(t.labels[k]) + 1 for k in items}
    img, mask = a[0]
    assert img.shape == (1, 64, 64) and mask.shape == (64, 64) and float(img.max()) <= 1.0


@needs_fmnist
def test_real_fashion_mnist_official_split():
    x, y = fashion_mnist.load_fashion_mnist("test")
    assert x.shape == (10000, 28, 28)
    assert np.bincount(y).tolist() == [1000] * 10
    assert len(fashion_mnist.FASHION_MNIST_CLASSES) == 10 and len(scenes.SCENE_CLASSES) == 11


@needs_fortunes
def test_fortunes_split_is_deterministic_and_disjoint():
    cookies = fortunes.load_cookies()
    assert len(cookies) > 1000 and all(c and "\n%\n" not in c for c in cookies)
    train, val = fortunes.split_cookies(cookies)
    assert set(train).isdisjoint(val)
    assert 0.02 < len(val) / len(cookies) < 0.08
    t2, v2 = fortunes.split_cookies(list(reversed(cookies)))
    assert set(t2) == set(train) and set(v2) == set(val), "the split does not depend on order"


def test_silhouette_fills_enclosed_dark_patterns_but_not_the_outside():
    from grootvl_core.data.scenes import silhouette

    item = np.zeros((28, 28), np.uint8)
    item[4:24, 4:24] = 200  # a garment ...
    item[10:16, 10:16] = 0  # ... with a dark pattern inside
    sil = silhouette(item)
    assert sil[4:24, 4:24].all()  # the pattern belongs to the garment
    assert not sil[:3].any() and not sil[:, :3].any() and not sil[25:].any()


def test_garment_view_is_deterministic_and_keeps_its_garment_visible():
    """make_garment_view (classifier pretraining for the segmenter): same rng, same view; the
    garment sits near the centre at a scene's scale and occluders leave at least half of it."""
    rng = np.random.default_rng(0)
    pool = np.zeros((6, 28, 28), dtype=np.uint8)
    pool[:, 4:24, 6:22] = 200  # a bright 20x16 block per item
    pool[0, 4:24, 6:22] = 255  # item 0 brighter than every occluder
    views = [scenes.make_garment_view(pool, 0, np.random.default_rng(7), size=56) for _ in range(2)]
    assert views[0].shape == (56, 56) and views[0].dtype == np.uint8
    np.testing.assert_array_equal(views[0], views[1])
    for seed in range(30):
        view = scenes.make_garment_view(pool, 0, np.random.default_rng((seed, 1)), size=56, max_others=3)
        target = view == 255
        assert target.any()
        ys, xs = np.nonzero(target)
        # its box (20 x 16 at scale 1) is visible at least in part, around the centre
        assert abs((ys.min() + ys.max()) / 2 - 27.5) < 20 and abs((xs.min() + xs.max()) / 2 - 27.5) < 20
    with pytest.raises(IndexError):
        scenes.make_garment_view(pool, 6, rng)
