"""GrootV TreeSSM's discretisation, ``delta = softplus(dt + bias)``, ``Abar = exp(delta * A)``,
``x = delta * B * u`` (reference 2.2 steps 7-9): one fused pass per pixel in the native CPU kernel
for inference, PyTorch's ops (:func:`grootvl_core.ops.reference.ssm_discretize`, the oracle) when
autograd needs the graph, on other devices, for other dtypes, or without a native build."""

from __future__ import annotations

from torch import Tensor

from . import reference
from .backend import fused_cpu_eligible

__all__ = ["ssm_discretize"]


def ssm_discretize(dt: Tensor, bias: Tensor, a: Tensor, b: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
    """``(exp(delta * a), delta * b * u)`` with ``delta = softplus(dt + bias)``.

    Args:
        dt: ``(B, L, D)`` float32 step sizes before the bias (``dt_proj`` of the low-rank ``dt``).
        bias: ``(D,)`` step bias.
        a: ``(D,)`` continuous ``A`` (negative: ``-exp(A_logs)``).
        b: ``(B, L, 1)`` float32 per-pixel ``B``.
        u: ``(B, L, D)`` float32 SSM input.

    Returns:
        ``(abar, x)``, each ``(B, L, D)`` float32.
    """
    tensors = (dt, bias, a, b, u)
    impl = fused_cpu_eligible(*tensors) if dt.dim() == 3 else None
    if impl is not None:
        return impl.ssm_discretize(dt.contiguous(), bias.contiguous(), a.contiguous(), b, u.contiguous())
    return reference.ssm_discretize(dt, bias, a, b, u)
