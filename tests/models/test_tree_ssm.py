"""TreeSSM (grootvl_core.models.tree_ssm): its fused native inference path equals its autograd path."""

from __future__ import annotations

import torch


def test_tree_ssm_inference_path_equals_training_path(use_native):
    """TreeSSM under no_grad (fused native output step) equals the autograd path (PyTorch ops)."""
    from grootvl_core.models.tree_ssm import TreeSSM

    torch.manual_seed(0)
    for h_norm in (True, False):
        m = TreeSSM(d_model=24, h_norm=h_norm).eval()
        with torch.no_grad():  # non-trivial norms
            m.out_norm.weight.normal_()
            m.out_norm.bias.normal_()
        x = torch.randn(2, 9, 11, 24)
        trained = m(x)  # grad enabled: reference ops
        with torch.no_grad():
            fused = m(x)
        with torch.inference_mode():
            fused_im = m(x)
        torch.testing.assert_close(fused, trained.detach(), rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(fused_im, fused)


def test_treessm_conv_step_with_and_without_autograd(use_native):
    """TreeSSM's conv + SiLU: the fused inference path and the autograd path agree."""
    from grootvl_core.models.tree_ssm import TreeSSM

    torch.manual_seed(0)
    m = TreeSSM(d_model=12, d_state=1, ssm_ratio=2.0, conv_bias=True).eval()
    x = torch.randn(2, 5, 6, 12)
    with torch.no_grad():
        fused = m(x)
    torch.testing.assert_close(fused, m(x), rtol=1e-4, atol=1e-5)
