"""The tree explorer's pure parts: tree vs raster-chain affinities, the tree's JSON export, the
effective receptive field, the shared colour scale of heat maps."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch
from torch import nn

from grootvl_core import ops
from grootvl_core.models import GrootV, affinity_from, capture_trees
from grootvl_core.models.tree_ssm import raster_chain
from grootvl_core.viz import (
    compare_scans,
    effective_receptive_fields,
    overlay_heatmap,
    raster_affinity_from,
    tree_to_dict,
    tree_to_json,
    vertex_depths,
)
from grootvl_core.viz.erf import area_ratio, erf_display


@pytest.fixture(scope="module")
def record():
    torch.manual_seed(0)
    model = GrootV(channels=16, depths=(1, 1, 2, 1), num_classes=10, drop_path_rate=0.0).eval()
    with torch.no_grad(), capture_trees(model) as records:
        model(torch.randn(1, 3, 24, 32))
    rec = records[0]  # stage 1: a 6x8 grid
    assert (rec.height, rec.width) == (6, 8)
    # weights spread like a trained model's (a fresh one's are all about 0.98)
    return dataclasses.replace(rec, weights=torch.rand(48, generator=torch.Generator().manual_seed(1)) * 0.6 + 0.35)


def test_raster_affinity_is_what_the_raster_scan_applies(record):
    # the raster scan (TreeSSM scan_order="raster") runs tree_scan in subtree mode on the chain with
    # Abar shifted by one: the output at pixel i from a unit input at pixel j <= i is the chain's
    # path product between them
    v = record.height * record.width
    chain = raster_chain(1, record.height, record.width)
    a = torch.roll(record.weights.double(), -1)[None, None]  # (1, 1, V)
    for j in (0, 5, 17, v - 1):
        x = torch.zeros(1, 1, v, dtype=torch.float64)
        x[0, 0, j] = 1.0
        y = ops.tree_scan(x, a, chain.order, mode="subtree")[0, 0].numpy()
        for p in (j, min(j + 1, v - 1), v - 1):
            assert raster_affinity_from(record, p).reshape(-1)[j] == pytest.approx(y[p], rel=1e-9)
    # and the chain is symmetric in its two directions: a product of the weights between the pixels
    w = record.weights.double().numpy()
    heat = raster_affinity_from(record, 20).reshape(-1)
    for j in (3, 20, 31, v - 1):
        lo, hi = min(j, 20), max(j, 20)
        assert heat[j] == pytest.approx(np.prod(w[lo + 1 : hi + 1]), rel=1e-9)


def test_compare_scans_shares_one_scale_and_reads_the_difference(record):
    p = 2 * record.width + 3
    image = np.random.default_rng(0).integers(0, 255, (24, 32, 3), dtype=np.uint8)
    result = compare_scans(record, p, image=image, threshold=0.05)
    np.testing.assert_allclose(result.tree, affinity_from(record, p))
    np.testing.assert_allclose(result.raster, raster_affinity_from(record, p))
    lo, hi = result.log_range
    both = np.concatenate([result.tree.ravel(), result.raster.ravel()])
    assert lo == pytest.approx(max(min(np.log10(both[both > 0].min()), -1.0), -6.0)) and hi == pytest.approx(0.0)
    assert -6.0 <= lo < -1.0  # these weights: more than the one decade every scale shows at least
    assert result.reached_tree == int((result.tree >= 0.05).sum()) - 1
    assert result.reached_raster == int((result.raster >= 0.05).sum()) - 1
    assert f"the tree reaches {result.reached_tree} of 47" in result.reading
    assert f"the raster chain {result.reached_raster}" in result.reading
    assert np.isfinite(result.similarity_tree) and "colour distance" in result.reading
    assert "colour" not in compare_scans(record, p).reading  # no image: no colour part
    with pytest.raises(ValueError, match="threshold"):
        compare_scans(record, p, threshold=1.0)


def test_tree_follows_the_image_where_the_raster_chain_cannot():
    """A pixel-grid MST over two flat halves keeps each half together; from a pixel of the left
    half, the tree's reach stays in colours like its own, the raster chain's crosses the border on
    every row."""
    from grootvl_core.models import TreeRecord

    h, w = 6, 8
    img = np.zeros((h, w, 3), np.float32)
    img[:, w // 2 :] = 1.0
    feat = torch.from_numpy(img).permute(2, 0, 1)[None] + 0.01 * torch.arange(h * w).reshape(1, 1, h, w)
    edges, order = ops.grid_spanning_tree(feat)
    rec = TreeRecord(
        stage=0,
        block=0,
        image=0,
        height=h,
        width=w,
        tree_edges=edges[0].to(torch.int64),
        tree=ops.TreeOrder(*(t[0] for t in order)),
        weights=torch.full((h * w,), 0.5),
        channels="mean",
        module_name="test",
    )
    result = compare_scans(rec, 2 * w + 1, image=(img * 255).astype(np.uint8))
    assert result.similarity_tree < result.similarity_raster
    assert "closer to the pixel's colour" in result.reading


def test_tree_json_has_grid_edges_depth_and_weights(record):
    data = json.loads(tree_to_json(record))
    v = record.height * record.width
    assert data["grid"] == {"height": 6, "width": 8} and data["num_vertices"] == v
    assert data["edges"] == record.tree_edges.tolist() and len(data["edges"]) == v - 1
    assert data["depth"] == vertex_depths(record.tree_edges.numpy(), v, 0).tolist()
    assert data["root"] == 0 and data["parent"][0] == -1
    w = record.weights.double().numpy()
    per_edge = data["transition_weights"]["per_edge"]
    for (s, t), we in zip(data["edges"], per_edge):
        child = s if data["parent"][s] == t else t
        assert data["parent"][child] in (s, t) and data["depth"][child] == data["depth"][data["parent"][child]] + 1
        assert we == pytest.approx(w[child], rel=1e-5)
    per_vertex = data["transition_weights"]["per_vertex"]
    assert per_vertex[0] is None and per_vertex[1] == pytest.approx(w[1], rel=1e-5)
    assert tree_to_dict(record)["max_depth"] == max(data["depth"])


class _ConvBackbone(nn.Module):
    """One 3x3 convolution as a one-stage backbone: its ERF is known exactly."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1, bias=False)

    def forward_intermediates(self, x, intermediates_only=True):
        return [self.conv(x)]


def test_erf_of_a_convolution_is_its_kernel_window():
    torch.manual_seed(0)
    net = _ConvBackbone().eval()
    with torch.no_grad():
        kernel = torch.arange(9, dtype=torch.float32).reshape(3, 3) - 2.0
        net.conv.weight.copy_(torch.stack([kernel, -kernel.abs()])[:, None])
    # inputs in [1, 2]: channel 0's centre output is > 0, channel 1's < 0 (cut by the output ReLU)
    images = torch.rand(3, 1, 9, 9) + 1.0
    (stage,) = effective_receptive_fields(net, images)
    expected = torch.relu(kernel).double().numpy()  # the input-gradient's ReLU
    assert stage.grid == (9, 9)
    np.testing.assert_allclose(stage.contribution[3:6, 3:6], expected, rtol=1e-6)
    outside = stage.contribution.copy()
    outside[3:6, 3:6] = 0
    assert not outside.any()
    assert stage.display.max() == pytest.approx(1.0)
    assert stage.area[0.99] == pytest.approx((3 / 9) ** 2)


def test_erf_grows_with_depth_on_a_grootv():
    torch.manual_seed(0)
    model = GrootV(channels=16, depths=(1, 1, 1, 1), num_classes=10, drop_path_rate=0.0).eval()
    stages = effective_receptive_fields(model, torch.randn(2, 3, 32, 32))
    assert [s.stage for s in stages] == [0, 1, 2, 3]
    assert [s.grid for s in stages] == [(8, 8), (4, 4), (2, 2), (1, 1)]
    assert all(s.contribution.shape == (32, 32) and (s.contribution >= 0).all() for s in stages)
    assert all(p.grad is None for p in model.parameters())  # gradients for the input only
    # batched or one by one: each image's gradient is its own
    images = torch.randn(3, 3, 32, 32)
    batched = effective_receptive_fields(model, images, batch_size=3)
    alone = effective_receptive_fields(model, images, batch_size=1)
    for b, a in zip(batched, alone):
        np.testing.assert_allclose(b.contribution, a.contribution, rtol=1e-4, atol=1e-9)
    with pytest.raises(ValueError, match="stage 7"):
        effective_receptive_fields(model, torch.randn(1, 3, 32, 32), stages=[7])
    with pytest.raises(TypeError, match="forward_intermediates"):
        effective_receptive_fields(nn.Linear(2, 2), torch.randn(1, 3, 32, 32))


def test_area_ratio_and_display():
    flat = np.ones((9, 9))
    assert area_ratio(flat, 0.5) == pytest.approx(49 / 81)  # 5x5 = 25 < 40.5 < 49 = 7x7
    assert area_ratio(np.zeros((4, 4)), 0.5) == 1.0
    assert erf_display(np.zeros((3, 3))).max() == 0.0
    with pytest.raises(ValueError, match="share"):
        area_ratio(flat, 1.5)


def test_heatmap_value_range_puts_maps_on_one_scale():
    image = np.zeros((8, 8, 3), np.uint8)
    weak = np.full((4, 4), 1e-3)
    weak[0, 0] = 1.0
    strong = np.full((4, 4), 1e-1)
    strong[0, 0] = 1.0
    own = overlay_heatmap(image, strong, size=8)
    shared_strong = overlay_heatmap(image, strong, size=8, value_range=(-3.0, 0.0))
    shared_weak = overlay_heatmap(image, weak, size=8, value_range=(-3.0, 0.0))
    assert not np.array_equal(own, shared_strong)  # alone, 0.1 is the bottom of its own scale
    assert np.array_equal(own[6, 6], overlay_heatmap(image, weak, size=8)[6, 6])  # both minima: same colour
    assert not np.array_equal(shared_strong[6, 6], shared_weak[6, 6])  # on one scale they differ
    with pytest.raises(ValueError, match="value_range"):
        overlay_heatmap(image, strong, value_range=(0.0, 0.0))
