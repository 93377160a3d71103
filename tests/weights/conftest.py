"""Fixtures of the weights tests."""

from __future__ import annotations

import pytest
import torch

from grootvl_core.models import GrootV

from .helpers import TINY


@pytest.fixture(scope="module")
def tiny_pair():
    """Two tiny GrootV models with different random weights (``model`` and ``model_ema``)."""
    torch.manual_seed(1)
    a = GrootV(**TINY).eval()
    torch.manual_seed(2)
    b = GrootV(**TINY).eval()
    return a, b
