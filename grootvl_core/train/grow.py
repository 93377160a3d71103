"""Start a trained model's deeper sibling without changing what it computes (depth growth).

A GrootV layer is residual: ``x + TreeSSM(norm1(x))`` then ``x + mlp(norm2(x))``. A layer whose
two branch outputs (``TreeSSM.out_proj`` and ``mlp.fc2``) are zero is the identity, so a model
with more layers per stage starts as exactly the trained one when the trained layers keep their
weights and every added layer (appended at the end of its stage, before the stage's norm) gets
zero branch outputs; its other weights keep their fresh initialisation, so gradients reach them
from the first step (Net2DeeperNet, Chen et al. 2016, for pre-norm residual blocks). This buys
capacity for fine-tuning without retraining what was learnt.
"""

from __future__ import annotations

import re

import torch
from torch import nn

__all__ = ["deepen_from", "load_start_weights"]

# "<prefix>levels.<stage>.blocks.<layer>.<rest>", the layers of GrootV stages (backbone or not)
_LAYER_KEY = re.compile(r"^(?P<layer>(?:.*\.)?levels\.\d+\.blocks\.\d+)\.")
# the residual branches' last projections: zeroed in added layers (weights and biases)
_BRANCH_OUTPUTS = ("TreeSSM.out_proj.", "mlp.fc2.")


def deepen_from(model: nn.Module, source: nn.Module) -> list[str]:
    """Load ``source``'s weights into ``model``, a copy of it with extra layers at stage ends.

    Args:
        model: the deeper model (e.g. a GrootV or GrootVSegmenter with larger ``depths``), freshly
            built; modified in place.
        source: the trained model it grows from: same layer types, widths, heads and classes.

    Returns:
        The added layers' module names (e.g. ``backbone.levels.2.blocks.3``), in order.

    Raises:
        ValueError: ``source`` is not a shallower version of ``model``: it has weights ``model``
            lacks, a weight of another shape, or ``model`` has extra weights outside added layers.
    """
    target, weights = model.state_dict(), source.state_dict()
    extra_in_source = sorted(set(weights) - set(target))
    wrong = sorted(k for k in weights.keys() & target.keys() if weights[k].shape != target[k].shape)
    added = sorted(set(target) - set(weights))
    outside = [k for k in added if not _LAYER_KEY.match(k)]
    if extra_in_source or wrong or outside:
        raise ValueError(
            "deepen_from: the source model does not fit: it is not a shallower version of this one (weights only in "
            "the source: "
            f"{extra_in_source[:3]}, other shapes: {wrong[:3]}, new weights outside added layers: {outside[:3]}); "
            "grow only `depths`, keeping channels, heads and classes"
        )
    layers = sorted(
        {_LAYER_KEY.match(k).group("layer") for k in added},
        key=lambda name: [int(t) if t.isdigit() else t for t in name.split(".")],
    )
    # a layer is either wholly in the source or wholly added (no partial layers)
    partial = [name for name in layers if any(k.startswith(name + ".") for k in weights)]
    if partial:
        raise ValueError(f"deepen_from: layers {partial[:3]} exist in the source with other parameters")
    state = dict(target)
    state.update(weights)
    for name in layers:  # state_dict tensors are detached: no autograd to keep out
        for key in state:
            if key.startswith(name + ".") and key[len(name) + 1 :].startswith(_BRANCH_OUTPUTS):
                state[key] = torch.zeros_like(state[key])
    model.load_state_dict(state, strict=True)
    return layers


def load_start_weights(model: nn.Module, source: nn.Module, where: str) -> list[str]:
    """Start ``model`` from ``source``: all weights when the architectures match, else through
    :func:`deepen_from` (``model`` is ``source`` with more layers). Returns the added layers.

    Raises:
        ValueError: neither applies; the message names ``where`` (the folder it came from).
    """
    if model.state_dict().keys() == source.state_dict().keys():
        try:
            model.load_state_dict(source.state_dict(), strict=True)
        except RuntimeError as e:
            raise ValueError(
                f"init_from {where}: its model does not fit this recipe's ({e}); fine-tune with "
                "the same architecture, or a deeper one (larger depths)"
            ) from None
        return []
    try:
        return deepen_from(model, source)
    except ValueError as e:
        raise ValueError(f"init_from {where}: {e}") from None
