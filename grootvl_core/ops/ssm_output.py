"""GrootV TreeSSM's output step, ``out_norm(h_norm(h) * c + u * Ds) * silu(z)`` (reference 2.2
steps 3, 13-16): one fused pass per pixel in the native CPU kernel for inference, PyTorch's ops
(:func:`grootvl_core.ops.reference.ssm_output`, the oracle) when autograd needs the graph, on other
devices, for other dtypes, or without a native build."""

from __future__ import annotations

from torch import Tensor, nn

from . import reference
from .backend import fused_cpu_eligible

__all__ = ["ssm_output"]


def ssm_output(
    h: Tensor,
    u: Tensor,
    c: Tensor,
    ds: Tensor,
    h_norm: nn.LayerNorm | None,
    out_norm: nn.LayerNorm,
    z: Tensor,
    *,
    silu_gate: bool = False,
) -> Tensor:
    """``out_norm(h_norm(h) * c + u * ds) * g`` with ``g = silu(z)`` if ``silu_gate`` else ``z``.

    Args:
        h: ``(B, L, D)`` float32 scan output (``h_norm`` is applied to it unless None).
        u: ``(B, L, D)`` float32 SSM input (the skip term ``u * ds``).
        c: ``(B, L, 1)`` float32 per-pixel ``C``.
        ds: ``(D,)`` skip weights.
        h_norm, out_norm: the LayerNorms over ``D`` (computed in float32).
        z: ``(B, L, D)`` gate (before the SiLU when ``silu_gate``); the result has its dtype.
        silu_gate: apply SiLU to ``z`` here (fused into the same pass on the CPU).

    Returns:
        ``(B, L, D)``.
    """
    hw = hb = None
    if h_norm is not None:
        hw, hb = h_norm.weight.float(), h_norm.bias.float()
    ow, ob, dsf = out_norm.weight.float(), out_norm.bias.float(), ds.float()
    h_eps = h_norm.eps if h_norm is not None else 0.0
    tensors = [h, u, c, dsf, ow, ob, z] + ([hw, hb] if hw is not None else [])
    impl = fused_cpu_eligible(*tensors)
    if impl is not None:
        return impl.ssm_output(
            h.contiguous(),
            u.contiguous(),
            c,
            dsf.contiguous(),
            hw,
            hb,
            h_eps,
            ow.contiguous(),
            ob.contiguous(),
            out_norm.eps,
            z if z.stride(-1) == 1 else z.contiguous(),
            silu_gate,
        )
    return reference.ssm_output(h, u, c, dsf, hw, hb, h_eps, ow, ob, out_norm.eps, z, silu_gate)
