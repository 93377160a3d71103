"""capture_token_trees: the trees and reach values GrootL's forward pass used (reference 4.3)."""

import numpy as np
import pytest
import torch

from grootvl_core.models import GrootL, GrootLConfig, capture_token_trees
from grootvl_core.models.grootl_tree import feature_tree
from grootvl_core.models.token_tree_capture import mean_path_products_to_root, path_products_to_root
from grootvl_core.ops import bfs
from grootvl_core.ops.reference import tree_scan_ref


def _tiny(tree_scale=0.3):
    torch.manual_seed(0)
    cfg = GrootLConfig(
        vocab_size=50, hidden_size=16, num_hidden_layers=2, state_size=4, expand=2, tree_scale=tree_scale
    )
    return GrootL(cfg).eval()


def test_records_per_layer_and_sample_and_outputs_unchanged():
    model = _tiny()
    ids = torch.randint(0, 50, (2, 9))
    ref = model(ids).logits
    with capture_token_trees(model) as records:
        out = model(ids).logits
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    assert [(r.layer, r.sample) for r in records] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for r in records:
        assert r.length == 9 and r.context_length == 9
        assert r.parent[-1] == -1 and (r.parent[:-1] >= 0).all()
        assert r.edges.shape == (8, 2)
        assert r.reach[-1] == pytest.approx(1.0) and r.reach_chain[-1] == pytest.approx(1.0)
        assert ((r.reach > 0) & (r.reach <= 1)).all()
        # the chain's reach falls monotonically with distance from the last token
        assert (np.diff(r.reach_chain) >= 0).all()
    # hooks are removed afterwards
    assert all(m._capture is None for m in model.modules() if hasattr(m, "_capture"))


def test_edges_are_a_tree_rooted_at_the_last_token_within_the_band():
    model = _tiny()
    ids = torch.randint(0, 50, (1, 12))
    with capture_token_trees(model) as records:
        model(ids)
    for r in records:
        order = bfs(torch.from_numpy(r.edges)[None], root=11).order[0]
        assert sorted(order.tolist()) == list(range(12))  # connected, spanning
        assert (np.abs(r.edges[:, 0] - r.edges[:, 1]) <= 3).all()  # band of 3 over the context


def test_plain_mamba_and_short_prompts_report_the_chain():
    for model, length in ((_tiny(0.0), 7), (_tiny(), 2)):
        with capture_token_trees(model) as records:
            model(torch.randint(0, 50, (1, length)))
        assert all(r.is_chain for r in records)
        for r in records:
            np.testing.assert_allclose(r.reach, r.reach_chain)


def test_reach_is_what_the_subtree_scan_applies():
    """reach[j] per channel = the coefficient of x_j in the root's subtree-scan output."""
    torch.manual_seed(1)
    b, c, length = 2, 5, 10
    feat = torch.randn(b, c, length)
    tree = feature_tree(feat, [length, 6], band=3)
    weight = torch.rand(b, c, length) * 0.9 + 0.05
    prods = path_products_to_root(tree, weight)
    for j in range(length):
        x = torch.zeros(b, c, length, dtype=torch.float64)
        x[:, :, j] = 1.0
        y = tree_scan_ref(x, weight.double(), tree, mode="subtree")
        torch.testing.assert_close(prods[:, :, j], y[:, :, length - 1])


@pytest.mark.parametrize("length", [1, 2, 3, 10, 257])
def test_mean_path_products_match_the_per_channel_products(length):
    """The capture's channel mean (pointer jumping, a few channels at a time) equals the mean of the
    per-channel products, for any tree shape, batch member and channel chunking."""
    torch.manual_seed(2)
    feat = torch.randn(2, 6, length)
    tree = feature_tree(feat, [length, max(0, length - 2)], band=3)
    weight = torch.rand(2, 70, length) * 0.9 + 0.05
    want = path_products_to_root(tree, weight).mean(dim=1)
    for chunk in (1, 16, 256):
        got = mean_path_products_to_root(tree, weight, chunk_channels=chunk)
        assert got.dtype == torch.float64 and got.shape == (2, length)
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-15)


def test_no_mixer_is_an_error():
    with pytest.raises(ValueError, match="no GrootL mixer"):
        with capture_token_trees(torch.nn.Linear(2, 2)):
            pass
