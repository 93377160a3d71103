"""GrootV TreeSSM's depthwise conv and SiLU, ``silu(DWConv_kxk(x) + bias)`` (reference 2.2 step
4): one native pass over channels-last pixels on the CPU for inference; PyTorch's conv and SiLU
(:func:`grootvl_core.ops.reference.depthwise_conv_silu`, the oracle) when autograd needs the
graph, under ``torch.compile``, on other devices, for other dtypes, or without a native build."""

from __future__ import annotations

from torch import Tensor

from . import reference
from .backend import fused_cpu_eligible

__all__ = ["depthwise_conv_silu"]


def depthwise_conv_silu(x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
    """``silu(conv2d(x, weight, bias, padding=k // 2, groups=C))`` for channels-last ``x``.

    Args:
        x: ``(B, H, W, C)``.
        weight: ``(C, 1, k, k)`` depthwise kernel, ``k`` odd.
        bias: ``(C,)`` or None.

    Returns:
        ``(B, H, W, C)`` contiguous on the fused path (``.permute(0, 3, 1, 2)`` gives the
        ``(B, C, H, W)`` view in channels-last memory that PyTorch's conv would return).
    """
    if (
        x.dim() != 4
        or weight.dim() != 4
        or weight.shape[0] != x.shape[-1]
        or weight.shape[1] != 1
        or weight.shape[2] != weight.shape[3]
        or weight.shape[2] % 2 == 0
    ):
        raise ValueError(
            f"depthwise_conv_silu: need x (B, H, W, C) and weight (C, 1, k, k) with odd k, got "
            f"{tuple(x.shape)} and {tuple(weight.shape)}"
        )
    tensors = (x, weight) if bias is None else (x, weight, bias)
    impl = fused_cpu_eligible(*tensors)
    if impl is not None:
        return impl.depthwise_conv_silu(
            x.contiguous(), weight.contiguous(), None if bias is None else bias.contiguous()
        )
    return reference.depthwise_conv_silu(x, weight, bias)
