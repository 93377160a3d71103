""" "Fashion-MNIST scenes": a small, real-data segmentation task generated deterministically.

Each scene pastes 2 to 5 Fashion-MNIST garments (scale and position jitter, overlaps allowed, later
garments on top) onto a textured, noisy background. The per-pixel label is 0 for background and
``1 + class`` for a garment's silhouette (its pixels brighter than a threshold, with enclosed holes
filled and a 3x3 closing: dark patterns inside a garment belong to it), so there are 11 classes
(:data:`SCENE_CLASSES`). Scene ``i`` of a split depends only on ``(seed, split, i)``, and
scenes of a split use garments of that Fashion-MNIST split only: training scenes come from the
official training images, evaluation scenes from the test images.
"""

from __future__ import annotations

import numpy as np
import torch

from .fashion_mnist import FASHION_MNIST_CLASSES, load_fashion_mnist

__all__ = ["SCENE_CLASSES", "SCENE_PALETTE", "make_scene", "make_garment_view", "FashionScenes"]

SCENE_CLASSES = ("background",) + FASHION_MNIST_CLASSES
SCENE_PALETTE = (
    (0, 0, 0),
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
)
_SPLIT_ID = {"train": 0, "test": 1}
_SILHOUETTE_THRESHOLD = 16


def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    import cv2

    coarse = rng.uniform(0, 1, (6, 6)).astype(np.float32)
    smooth = cv2.resize(coarse, (size, size), interpolation=cv2.INTER_CUBIC)
    level = rng.uniform(10, 60)
    contrast = rng.uniform(10, 50)
    noise = rng.normal(0, rng.uniform(3, 12), (size, size))
    return np.clip(level + contrast * smooth + noise, 0, 255)


def silhouette(item: np.ndarray) -> np.ndarray:
    """Boolean garment region of a grey item: pixels above the threshold, closed with a 3x3 kernel,
    with every hole not connected to the item's border filled."""
    import cv2

    sil = (item > _SILHOUETTE_THRESHOLD).astype(np.uint8)
    sil = cv2.morphologyEx(sil, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    _, comp = cv2.connectedComponents(1 - sil, connectivity=4)
    outside = np.unique(np.concatenate([comp[0], comp[-1], comp[:, 0], comp[:, -1]]))
    holes = (sil == 0) & ~np.isin(comp, outside)
    return (sil == 1) | holes


def make_scene(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    size: int = 96,
    min_items: int = 2,
    max_items: int = 5,
):
    """Compose one scene from a pool of garments.

    Args:
        images: ``(N, 28, 28)`` uint8 pool (one Fashion-MNIST split).
        labels: ``(N,)`` classes ``0..9`` of the pool.
        rng: the scene's random generator.
        size: canvas side in pixels.

    Returns:
        ``image`` uint8 ``(size, size)``, ``mask`` uint8 ``(size, size)`` (0 background, 1..10
        garments), and ``items``: the pool indices pasted, bottom to top.
    """
    import cv2

    if not 1 <= min_items <= max_items:
        raise ValueError(f"make_scene: need 1 <= min_items <= max_items, got {min_items}, {max_items}")
    canvas = _background(rng, size)
    mask = np.zeros((size, size), dtype=np.uint8)
    items = rng.integers(0, len(images), int(rng.integers(min_items, max_items + 1))).tolist()
    for idx in items:
        side = int(round(28 * rng.uniform(0.9, min(2.0, size / 28))))
        item = cv2.resize(images[idx], (side, side), interpolation=cv2.INTER_LINEAR)
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        sil = silhouette(item)
        region = canvas[top : top + side, left : left + side]
        region[sil] = item[sil]
        mask[top : top + side, left : left + side][sil] = labels[idx] + 1
    return np.round(canvas).astype(np.uint8), mask, items


def _paste(canvas: np.ndarray, item: np.ndarray, top: int, left: int) -> np.ndarray:
    """Paste ``item``'s silhouette onto ``canvas`` at ``(top, left)`` (clipped to the canvas);
    returns the pasted region as a boolean canvas-sized mask."""
    h, w = canvas.shape
    side = item.shape[0]
    y0, x0, y1, x1 = max(top, 0), max(left, 0), min(top + side, h), min(left + side, w)
    out = np.zeros((h, w), dtype=bool)
    if y1 <= y0 or x1 <= x0:
        return out
    sil = silhouette(item)[y0 - top : y1 - top, x0 - left : x1 - left]
    canvas[y0:y1, x0:x1][sil] = item[y0 - top : y1 - top, x0 - left : x1 - left][sil]
    out[y0:y1, x0:x1] = sil
    return out


def make_garment_view(
    images: np.ndarray,
    idx: int,
    rng: np.random.Generator,
    size: int = 48,
    max_others: int = 2,
    min_visible: float = 0.5,
) -> np.ndarray:
    """One garment as it looks inside a scene, for classifier pretraining: pool item ``idx`` at a
    scene's scale jitter (0.9x to 2x, capped by ``size``), centred (up to a quarter of the free
    space off) on a ``size``-pixel canvas with the scenes' textured background, and up to
    ``max_others`` other pool garments
    behind or partly over it (an occluder is dropped when it would hide more than
    ``1 - min_visible`` of the garment). The label is the garment's class.

    Returns:
        uint8 ``(size, size)``.
    """
    import cv2

    canvas = _background(rng, size)
    side = int(round(28 * rng.uniform(0.9, min(2.0, size / 28))))
    item = cv2.resize(images[idx], (side, side), interpolation=cv2.INTER_LINEAR)
    slack = size - side
    top, left = (slack // 2 + int(v) for v in rng.integers(-(slack // 4), slack // 4 + 1, 2))
    others = rng.integers(0, len(images), int(rng.integers(0, max_others + 1))).tolist()
    above = []
    for other in others:  # garments behind the target first
        o_side = int(round(28 * rng.uniform(0.9, min(2.0, size / 28))))
        o_item = cv2.resize(images[other], (o_side, o_side), interpolation=cv2.INTER_LINEAR)
        o_top, o_left = (int(v) for v in rng.integers(-o_side // 2, size - o_side // 2, 2))
        if rng.random() < 0.5:
            _paste(canvas, o_item, o_top, o_left)
        else:
            above.append((o_item, o_top, o_left))
    target = _paste(canvas, item, top, left)
    visible = target.copy()
    area = max(int(target.sum()), 1)
    for o_item, o_top, o_left in above:
        trial = canvas.copy()
        covered = _paste(trial, o_item, o_top, o_left)
        if (visible & ~covered).sum() >= min_visible * area:
            canvas, visible = trial, visible & ~covered
    return np.round(canvas).astype(np.uint8)


class FashionScenes(torch.utils.data.Dataset):
    """``num_scenes`` deterministic scenes of one split: ``(image float (1, S, S) in [0, 1],
    mask int64 (S, S))``.

    Args:
        split: ``"train"`` (garments from Fashion-MNIST train) or ``"test"`` (from its test split).
        num_scenes: dataset length.
        size: canvas side (default 96).
        seed: base seed; scene ``i`` uses ``numpy.random.default_rng((seed, split_id, i))``.
        root: Fashion-MNIST folder (default Debian's).
    """

    def __init__(self, split: str, num_scenes: int, size: int = 96, seed: int = 0, root=None):
        if split not in _SPLIT_ID:
            raise ValueError(f"FashionScenes: split must be 'train' or 'test', got {split!r}")
        if num_scenes < 1:
            raise ValueError(f"FashionScenes: num_scenes must be >= 1, got {num_scenes}")
        self.split, self.num_scenes, self.size, self.seed = split, int(num_scenes), int(size), int(seed)
        self.images, self.labels = load_fashion_mnist(split, root)

    def __len__(self) -> int:
        return self.num_scenes

    def scene(self, idx: int):
        """``(image uint8, mask uint8, items)`` of scene ``idx`` (see :func:`make_scene`)."""
        if not 0 <= idx < self.num_scenes:
            raise IndexError(f"scene index {idx} out of range [0, {self.num_scenes})")
        rng = np.random.default_rng((self.seed, _SPLIT_ID[self.split], int(idx)))
        return make_scene(self.images, self.labels, rng, self.size)

    def __getitem__(self, idx: int):
        image, mask, _ = self.scene(idx)
        return (torch.from_numpy(image.astype(np.float32) / 255.0)[None], torch.from_numpy(mask.astype(np.int64)))
