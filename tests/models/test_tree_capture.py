"""Tree capture during a forward pass and tree-path affinities (grootvl_core.models.tree_capture)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from grootvl_core import ops
from grootvl_core.models import GrootV, TreeRecord, affinity_from, capture_trees


def _model(**kwargs) -> GrootV:
    args = dict(channels=16, depths=(1, 1, 2, 1), num_classes=10, drop_path_rate=0.0)
    return GrootV(**dict(args, **kwargs)).eval()


def _brute_force_affinity(record: TreeRecord, p: int) -> np.ndarray:
    """Path products by walking both endpoints up to their lowest common ancestor."""
    order, parent_pos = record.tree.order.tolist(), record.tree.parent.tolist()
    par = {order[k]: order[parent_pos[k]] for k in range(1, len(order))}
    w = record.weights.double().reshape(-1, len(order)).numpy()

    def up(v):
        path = [v]
        while v in par:
            v = par[v]
            path.append(v)
        return path

    out = np.zeros(len(order))
    pp = up(p)
    for j in range(len(order)):
        pj = up(j)
        common = set(pp) & set(pj)
        children = [v for v in pp if v not in common] + [v for v in pj if v not in common]
        out[j] = np.prod(w[:, children], axis=1).mean() if children else 1.0
    return out.reshape(record.height, record.width)


def test_one_record_per_block_with_grid_sizes():
    m = _model()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        plain = m(x)
        with capture_trees(m) as records:
            captured = m(x)
    torch.testing.assert_close(captured, plain)  # capturing does not change the result
    assert [(r.stage, r.block) for r in records] == [(0, 0), (1, 0), (2, 0), (2, 1), (3, 0)]
    assert [(r.height, r.width) for r in records] == [(16, 16), (8, 8), (4, 4), (4, 4), (2, 2)]
    for r in records:
        v = r.height * r.width
        assert r.tree_edges.shape == (v - 1, 2) and r.tree_edges.device.type == "cpu"
        assert r.tree.order.shape == (v,) and int(r.tree.order[0]) == 0
        assert r.weights.shape == (v,) and not r.weights.requires_grad
        assert bool(((r.weights > 0) & (r.weights <= 1)).all())
        assert r.module_name == f"levels.{r.stage}.blocks.{r.block}.TreeSSM"
        # the BFS order is a traversal of exactly the captured edges
        order, parent = r.tree.order.tolist(), r.tree.parent.tolist()
        bfs_edges = {frozenset((order[k], order[parent[k]])) for k in range(1, v)}
        assert bfs_edges == {frozenset(e) for e in r.tree_edges.tolist()}
    assert all(m_._capture is None for m_ in m.modules() if hasattr(m_, "_capture"))


def test_records_per_image_and_all_channels():
    m = _model()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad(), capture_trees(m, channels="all") as full:
        m(x)
    with torch.no_grad(), capture_trees(m, channels="mean") as mean:
        m(x)
    assert len(full) == len(mean) == 2 * 5
    assert [r.image for r in full[:2]] == [0, 1]
    first = full[0]
    assert first.weights.shape == (32, 8 * 8) and first.channels == "all"  # D = 2C = 32
    for a, b in zip(full, mean):
        torch.testing.assert_close(a.weights.mean(0), b.weights)
        assert torch.equal(a.tree_edges, b.tree_edges)
    # the two images get their own trees
    assert not torch.equal(full[0].tree_edges, full[1].tree_edges)


def test_capture_with_shared_stage_trees():
    m = _model(tree_per_stage=True)
    with torch.no_grad(), capture_trees(m) as records:
        m(torch.randn(1, 3, 32, 32))
    stage2 = [r for r in records if r.stage == 2]
    assert len(stage2) == 2 and torch.equal(stage2[0].tree_edges, stage2[1].tree_edges)
    assert not torch.equal(stage2[0].weights, stage2[1].weights)


def _random_record(h: int, w: int, d: int, channels: str) -> TreeRecord:
    feat = torch.randn(1, 4, h, w)
    edges = ops.minimum_spanning_tree(ops.grid_edges(h, w), ops.cosine_edge_weights(feat), h * w)
    tree = ops.bfs(edges)
    weights = torch.rand(d, h * w) * 0.9 + 0.05
    if channels == "mean":
        weights = weights.mean(0)
    return TreeRecord(
        stage=0,
        block=0,
        image=0,
        height=h,
        width=w,
        tree_edges=edges[0].long(),
        tree=ops.TreeOrder(*(t[0] for t in tree)),
        weights=weights,
        channels=channels,
        module_name="x",
    )


@pytest.mark.parametrize("channels", ["mean", "all"])
def test_affinity_equals_brute_force_path_product(channels):
    record = _random_record(4, 5, 3, channels)
    for p in (0, 7, 19):
        got = affinity_from(record, p)
        assert got.shape == (4, 5) and got.flat[p] == 1.0
        np.testing.assert_allclose(got, _brute_force_affinity(record, p), rtol=1e-12)


def test_affinity_of_a_captured_record_is_symmetric():
    m = _model()
    with torch.no_grad(), capture_trees(m, channels="all") as records:
        m(torch.randn(1, 3, 32, 32))
    r = records[0]  # 8x8
    a, b = 5, 42
    assert affinity_from(r, a).flat[b] == pytest.approx(affinity_from(r, b).flat[a], rel=1e-12)


def test_errors():
    with pytest.raises(ValueError, match="no TreeSSM"):
        with capture_trees(nn.Linear(2, 2)):
            pass
    with pytest.raises(ValueError, match="channels"):
        with capture_trees(_model(), channels="max"):
            pass
    with pytest.raises(ValueError, match="pixel_index"):
        affinity_from(_random_record(3, 3, 2, "mean"), 9)
    with pytest.raises(TypeError, match="TreeRecord"):
        affinity_from({"weights": None}, 0)
