"""Tree scan vs raster scan from one pixel: the paper's claim made visible (reference 1.6).

A GrootV block propagates each pixel's state along the minimum spanning tree it built from the
input; the ablation ``scan_order="raster"`` (``TreeSSM``) propagates it along the row-major
chain of pixels instead, with the same transition weights ``Abar``. For a recorded block,
:func:`raster_affinity_from` gives the path products from a pixel along that chain (the chain
:func:`~grootvl_core.models.tree_ssm.raster_chain` builds, whose edge ``(v, v + 1)`` carries
``Abar[v + 1]`` exactly as the raster scan applies it), so it can be shown next to
:func:`~grootvl_core.models.affinity_from` along the block's own tree on one colour scale, and
:func:`compare_scans` says in one line what differs.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from grootvl_core.models import TreeRecord, affinity_from
from grootvl_core.models.tree_ssm import raster_chain

__all__ = ["LOG_FLOOR", "REACH_THRESHOLD", "ScanComparison", "compare_scans", "raster_affinity_from", "raster_record"]

REACH_THRESHOLD = 0.01  # a pixel counts as "reached" with an affinity of at least this
LOG_FLOOR = -6.0  # the shared colour scale starts at 1e-6 at the lowest (smaller values: its darkest colour)


def raster_record(record: TreeRecord) -> TreeRecord:
    """The record's block with its tree replaced by the row-major raster chain: the chain
    ``raster_chain`` builds (``parent(v) = v + 1``, root at the last pixel) and the same transition
    weights, shifted as the raster scan shifts them (the edge ``(v, v + 1)`` carries
    ``Abar[v + 1]``, so vertex ``v`` holds ``Abar[v + 1]``)."""
    if not isinstance(record, TreeRecord):
        raise TypeError(f"raster_record: record must be a TreeRecord, got {type(record).__name__}")
    chain = raster_chain(1, record.height, record.width)
    order = type(chain.order)(*(t[0] for t in chain.order))
    return replace(
        record, tree_edges=chain.edges[0].to(torch.int64), tree=order, weights=torch.roll(record.weights, -1, dims=-1)
    )


def raster_affinity_from(record: TreeRecord, pixel_index: int) -> np.ndarray:
    """``(height, width)`` path products from ``pixel_index`` along the raster chain, with the
    block's transition weights (what :func:`~grootvl_core.models.affinity_from` gives along the
    block's tree). The raster scan itself is causal: a pixel's output draws on the part of this
    map before it in row-major order; the part after it is where its own input travels."""
    return affinity_from(raster_record(record), pixel_index)


@dataclass
class ScanComparison:
    """Affinities from one pixel along the block's tree and along the raster chain.

    Attributes:
        tree, raster: ``(height, width)`` float64 path products (1 at the pixel).
        log_range: ``(lo, hi)`` of ``log10`` shared by both maps (for one colour scale): the
            smallest and largest positive value of both, at least one decade, ``lo >= LOG_FLOOR``.
        reached_tree, reached_raster: pixels (other than the source) with affinity >= the threshold.
        similarity_tree, similarity_raster: affinity-weighted mean colour distance (0..1, RGB) of
            the other pixels to the source pixel: lower means the reach follows what the pixel looks
            like. ``nan`` without an image or with nothing reached.
        reading: the one-line summary.
    """

    tree: np.ndarray
    raster: np.ndarray
    log_range: tuple[float, float]
    reached_tree: int
    reached_raster: int
    similarity_tree: float
    similarity_raster: float
    reading: str


def _colour_distance(image: np.ndarray | None, grid: tuple[int, int], pixel: int) -> np.ndarray | None:
    """``(h, w)`` Euclidean RGB distance (scaled to 0..1) of every grid cell to the source cell,
    on the image area-averaged to the grid."""
    if image is None:
        return None
    import cv2

    from .image import as_rgb_uint8

    h, w = grid
    small = cv2.resize(as_rgb_uint8(image), (w, h), interpolation=cv2.INTER_AREA).astype(np.float64) / 255.0
    src = small.reshape(-1, 3)[pixel]
    return np.linalg.norm(small - src, axis=2) / np.sqrt(3.0)


def _weighted_distance(affinity: np.ndarray, distance: np.ndarray | None, pixel: int) -> float:
    if distance is None:
        return float("nan")
    a = affinity.reshape(-1).copy()
    a[pixel] = 0.0
    total = a.sum()
    return float((a * distance.reshape(-1)).sum() / total) if total > 0 else float("nan")


def compare_scans(
    record: TreeRecord, pixel_index: int, image=None, threshold: float = REACH_THRESHOLD
) -> ScanComparison:
    """Both affinities from ``pixel_index`` and a one-line reading of what differs.

    Args:
        record: a :class:`~grootvl_core.models.TreeRecord` from ``capture_trees``.
        pixel_index: source vertex ``r * width + c``.
        image: the image the model saw (any form ``as_rgb_uint8`` takes), for the colour-distance
            part of the reading; None leaves it out.
        threshold: affinity from which a pixel counts as reached.

    Returns:
        :class:`ScanComparison`.
    """
    if not 0.0 < float(threshold) < 1.0:
        raise ValueError(f"compare_scans: threshold must lie in (0, 1), got {threshold}")
    tree = affinity_from(record, pixel_index)
    raster = raster_affinity_from(record, pixel_index)
    both = np.concatenate([tree.ravel(), raster.ravel()])
    positive = both[both > 0]
    hi = float(np.log10(positive.max())) if positive.size else 0.0
    lo = float(np.log10(positive.min())) if positive.size else LOG_FLOOR
    # at least one decade (a one-pixel grid, or equal maps, still gets a valid range), at most down
    # to LOG_FLOOR: the chain's products underflow fast, and a 1e-30 floor would wash out the tree's
    lo = max(min(lo, hi - 1.0), min(LOG_FLOOR, hi - 1.0))
    n_tree = int((tree >= threshold).sum()) - 1
    n_raster = int((raster >= threshold).sum()) - 1
    distance = _colour_distance(image, (record.height, record.width), int(pixel_index))
    sim_tree = _weighted_distance(tree, distance, int(pixel_index))
    sim_raster = _weighted_distance(raster, distance, int(pixel_index))
    total = record.height * record.width - 1
    r, c = divmod(int(pixel_index), record.width)
    reading = (
        f"From pixel ({r}, {c}): the tree reaches {n_tree} of {total} pixels with affinity >= {threshold:g}, "
        f"the raster chain {n_raster}"
    )
    if np.isfinite(sim_tree) and np.isfinite(sim_raster):
        closer = "closer to" if sim_tree < sim_raster else "no closer to"
        reading += (
            f"; what the tree reaches is {closer} the pixel's colour than what the chain reaches "
            f"(affinity-weighted colour distance {sim_tree:.2f} vs {sim_raster:.2f})."
        )
    else:
        reading += "."
    return ScanComparison(tree, raster, (lo, hi), n_tree, n_raster, sim_tree, sim_raster, reading)
