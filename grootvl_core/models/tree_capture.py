"""Record the spanning trees a GrootV forward pass builds, for visualisation (reference 1.1, 1.6).

    with capture_trees(model, channels="mean") as records:
        logits = model(images)
    rec = records[0]                    # stage 0, block 0, image 0
    heat = affinity_from(rec, pixel_index=rec.width * 10 + 12)   # (H, W)

Every :class:`~grootvl_core.models.tree_ssm.TreeSSM` in the model reports, during the ordinary
forward pass (no second pass), the tree it used and its per-vertex transition weights
``Abar = exp(Delta * A)``; the records hold detached CPU copies. The tree scan's output at pixel
``i`` is ``sum_j S(i, j) x_j`` with ``S(i, j)`` the product of ``Abar`` over the tree path
``i .. j`` (each edge weighted by its child endpoint, reference 1.6), so ``affinity_from`` maps how
strongly one pixel's state reaches every other pixel.
"""

from __future__ import annotations

import contextlib
import re
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from grootvl_core.ops import TreeOrder

from .tree_ssm import SpanningTree, TreeSSM

__all__ = ["TreeRecord", "affinity_from", "capture_trees"]

_NAME = re.compile(r"levels\.(\d+)\.blocks\.(\d+)\.")


@dataclass
class TreeRecord:
    """The tree one Tree-SSM block used for one image.

    Attributes:
        stage, block: position of the block in the model (``levels.{stage}.blocks.{block}``;
            ``-1, k`` for a TreeSSM outside that layout, ``k`` counting in call order).
        image: index of the image in the batch.
        height, width: the block's feature-map grid; ``V = height * width``; vertex
            ``v = r * width + c``.
        tree_edges: ``(V-1, 2)`` int64 MST edges (vertex ids).
        tree: :class:`~grootvl_core.ops.TreeOrder` with ``(V,)`` tensors (BFS from vertex 0).
        weights: ``exp(Delta * A)`` in vertex order: ``(V,)`` mean over channels, or ``(D, V)``
            when captured with ``channels="all"``. ``weights[..., v]`` is the weight of the edge
            between ``v`` and its parent (the root's entry is unused).
        channels: ``"mean"`` or ``"all"``, how ``weights`` was captured.
        module_name: the TreeSSM's qualified name in the model.
    """

    stage: int
    block: int
    image: int
    height: int
    width: int
    tree_edges: Tensor
    tree: TreeOrder
    weights: Tensor
    channels: str
    module_name: str


@contextlib.contextmanager
def capture_trees(model: nn.Module, channels: str = "mean") -> Iterator[list[TreeRecord]]:
    """Collect a :class:`TreeRecord` per (image, TreeSSM call) while the block is active.

    Args:
        model: any module containing :class:`TreeSSM` layers (GrootV, the UperNet segmenter).
        channels: ``"mean"`` to store ``Abar`` averaged over channels ``(V,)``; ``"all"`` for
            every channel ``(D, V)`` (memory: ``D * V`` floats per block and image).

    Yields:
        The list the records are appended to, in call order (stage, then block, then image).
    """
    if channels not in ("mean", "all"):
        raise ValueError(f"capture_trees: channels must be 'mean' or 'all', got {channels!r}")
    modules = [(name, m) for name, m in model.named_modules() if isinstance(m, TreeSSM)]
    if not modules:
        raise ValueError(f"capture_trees: {type(model).__name__} contains no TreeSSM layer")
    records: list[TreeRecord] = []
    fallback = {id(m): k for k, (_, m) in enumerate(modules)}
    names = {id(m): name for name, m in modules}

    def hook(module: TreeSSM, tree: SpanningTree, abar: Tensor) -> None:
        name = names[id(module)]
        found = _NAME.search(name + ".")
        if found:
            stage, block = int(found.group(1)), int(found.group(2))
        else:
            stage, block = -1, fallback[id(module)]
        w = abar.float().mean(dim=1) if channels == "mean" else abar.float()  # (B, V) | (B, D, V)
        w = w.cpu()
        edges = tree.edges.detach().to("cpu", torch.int64)
        order = TreeOrder(*(t.detach().cpu() for t in tree.order))
        for i in range(abar.shape[0]):
            records.append(
                TreeRecord(
                    stage=stage,
                    block=block,
                    image=i,
                    height=tree.height,
                    width=tree.width,
                    tree_edges=edges[i],
                    tree=TreeOrder(*(t[i] for t in order)),
                    weights=w[i],
                    channels=channels,
                    module_name=name,
                )
            )

    previous = [m._capture for _, m in modules]
    for _, m in modules:
        m._capture = hook
    try:
        yield records
    finally:
        for (_, m), prev in zip(modules, previous):
            m._capture = prev


def affinity_from(record: TreeRecord, pixel_index: int) -> np.ndarray:
    """How strongly pixel ``pixel_index`` is connected to every pixel through the tree.

    ``out[j] = S(p, j)``, the product of the transition weights over the tree path from ``p`` to
    ``j`` (``S(p, p) = 1``), each edge weighted by its child endpoint as in the scan. With
    ``channels="all"`` records this is the channel mean of the per-channel path products (what
    the scan applies on average); with ``channels="mean"`` records it is the path product of the
    channel-mean weights (a cheaper approximation, exact when the weights are equal across
    channels). Computed in ``O(V)`` (``O(D * V)`` for all channels) by one
    walk of the tree outward from ``p``.

    Args:
        record: a :class:`TreeRecord` from :func:`capture_trees`.
        pixel_index: vertex id ``r * width + c`` of the source pixel.

    Returns:
        ``(height, width)`` float64 array with values in ``[0, 1]`` for trained/initial weights
        (``exp(Delta * A)`` with ``A < 0``), 1 at the source pixel.
    """
    if not isinstance(record, TreeRecord):
        raise TypeError(f"affinity_from: record must be a TreeRecord, got {type(record).__name__}")
    v = record.height * record.width
    p = int(pixel_index)
    if not 0 <= p < v:
        raise ValueError(
            f"affinity_from: pixel_index must lie in [0, {v}) for a "
            f"{record.height}x{record.width} grid, got {pixel_index}"
        )
    order = record.tree.order.numpy()
    parent_pos = record.tree.parent.numpy()
    parent = np.full(v, -1, dtype=np.int64)  # parent VERTEX of each vertex; -1 for the root
    parent[order[1:]] = order[parent_pos[1:]]
    weights = record.weights.double().numpy()
    w = weights.reshape(-1, v)  # (D or 1, V)

    neighbours: list[list[int]] = [[] for _ in range(v)]
    for child in order[1:]:
        neighbours[child].append(int(parent[child]))
        neighbours[int(parent[child])].append(int(child))
    prod = np.zeros((w.shape[0], v))
    prod[:, p] = 1.0
    seen = np.zeros(v, dtype=bool)
    seen[p] = True
    queue = deque([p])
    while queue:
        cur = queue.popleft()
        for nxt in neighbours[cur]:
            if seen[nxt]:
                continue
            seen[nxt] = True
            # the edge (cur, nxt) carries the weight of whichever endpoint is the child
            edge_child = nxt if parent[nxt] == cur else cur
            prod[:, nxt] = prod[:, cur] * w[:, edge_child]
            queue.append(nxt)
    return prod.mean(axis=0).reshape(record.height, record.width)
