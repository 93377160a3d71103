"""Depth growth (train.grow): a deeper model started from a trained one computes the same function,
and every added layer still learns."""

from __future__ import annotations

import pytest
import torch

from grootvl_core.models import GrootV, GrootVSegmenter
from grootvl_core.train.grow import deepen_from, load_start_weights

TINY = dict(channels=8, in_chans=1, drop_path_rate=0.1)
SEG = dict(
    TINY, num_classes=3, class_names=["a", "b", "c"], palette=[[0, 0, 0]] * 3, decoder_channels=16, aux_channels=8
)


def _trained_like(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Every weight random (a fresh model zero-inits biases; a trained one has none zero)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(0.2 * torch.randn(p.shape, generator=gen))
    return model.eval()


@pytest.mark.parametrize("depths", [[1, 1, 1, 1], [2, 1, 3, 2], [1, 3, 1, 1]])
def test_deepened_classifier_computes_the_same(depths):
    source = _trained_like(GrootV(**TINY, depths=[1, 1, 1, 1], num_classes=5))
    model = GrootV(**TINY, depths=depths, num_classes=5).eval()
    added = deepen_from(model, source)
    expected = [f"levels.{s}.blocks.{k}" for s, d in enumerate(depths) for k in range(1, d)]
    assert added == expected
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(x), source(x))
    state = model.state_dict()
    for name in added:
        assert not state[f"{name}.TreeSSM.out_proj.weight"].any()
        assert not state[f"{name}.mlp.fc2.weight"].any() and not state[f"{name}.mlp.fc2.bias"].any()
        # the rest of an added layer keeps its fresh initialisation, so it can learn
        assert state[f"{name}.mlp.fc1.weight"].abs().sum() > 0
        assert state[f"{name}.TreeSSM.in_proj.weight"].abs().sum() > 0
    for key, value in source.state_dict().items():
        assert torch.equal(state[key], value), key


def test_deepened_segmenter_computes_the_same_and_added_layers_learn():
    source = _trained_like(GrootVSegmenter(**SEG, depths=[1, 1, 1, 1]))
    model = GrootVSegmenter(**SEG, depths=[1, 1, 3, 2]).eval()
    added = load_start_weights(model, source, "somewhere")
    assert added == ["backbone.levels.2.blocks.1", "backbone.levels.2.blocks.2", "backbone.levels.3.blocks.1"]
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x, return_aux=True), source(x, return_aux=True), rtol=0, atol=0)
    model.train()
    logits, aux = model(x, return_aux=True)
    (logits.square().mean() + aux.square().mean()).backward()
    for name in added:
        layer = model.get_submodule(name)
        assert layer.TreeSSM.out_proj.weight.grad.abs().sum() > 0
        assert layer.mlp.fc2.weight.grad.abs().sum() > 0


def test_same_architecture_loads_everything():
    source = _trained_like(GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=4))
    model = GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=4)
    assert load_start_weights(model, source, "here") == []
    for key, value in source.state_dict().items():
        assert torch.equal(model.state_dict()[key], value)


def test_what_cannot_grow_says_so():
    source = GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=4)
    shallower = GrootV(**TINY, depths=[1, 1, 1, 1], num_classes=4)
    with pytest.raises(ValueError, match="init_from here: deepen_from: the source model does not fit"):
        load_start_weights(shallower, source, "here")  # the source is the deeper one
    with pytest.raises(ValueError, match="other shapes"):
        deepen_from(GrootV(**TINY, depths=[1, 2, 2, 1], num_classes=7), source)  # other classes
    with pytest.raises(ValueError, match="other shapes"):
        deepen_from(GrootV(**dict(TINY, channels=16), depths=[1, 2, 2, 1], num_classes=4), source)
    with pytest.raises(ValueError, match="exist in the source with other parameters"):
        deepen_from(GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=4, layer_scale=1e-6), source)
    with pytest.raises(ValueError, match="new weights outside added layers"):  # a head the source lacks
        deepen_from(
            GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=4), GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=0)
        )
    with pytest.raises(ValueError, match="does not fit"):  # same keys, other shapes
        load_start_weights(GrootV(**TINY, depths=[1, 2, 1, 1], num_classes=6), source, "here")
