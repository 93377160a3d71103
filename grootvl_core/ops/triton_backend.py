"""The ``triton`` backend: the op family on GPU tensors with no toolchain (design.md "Op API").

Same interface and semantics as :mod:`.reference` (its docstring lists the functions):

- ``grid_cosine_weights``, ``scan_*``: Triton kernels (:mod:`.triton_kernels`), compiled at run time
  by Triton for the card at hand (NVIDIA or AMD); the layout changes between vertex and sorted space
  are PyTorch gathers/scatters on the device.
- ``mst``, ``bfs``: :mod:`.parallel_tree` (fixed-round Boruvka and Euler tours in tensor ops),
  which gives the reference's rows and BFS order exactly.

Nothing here synchronises with the host. float32 and float64 compute in their own dtype;
float16/bfloat16 inputs are read in that dtype, computed in float32 and written back in it (the
full scan's saved ``u`` stays float32, as every backend keeps it). The kernel-calling functions are
registered as ``torch.library.triton_op`` s (``grootvl::triton_*``), so ``torch.compile`` sees the
kernels (interpreted kernels: opaque custom ops with fake implementations).

With ``TRITON_INTERPRET=1`` set before Triton is first imported, the kernels also run on CPU tensors
in Triton's interpreter: how CI executes every kernel without a GPU (:func:`interpreted`).
"""

from __future__ import annotations

import contextlib

import torch
import triton
from torch import Tensor
from torch.library import triton_op, wrap_triton

from . import parallel_tree
from . import triton_kernels as K

__all__ = [
    "NAME",
    "interpreted",
    "grid_cosine_weights",
    "mst",
    "bfs",
    "scan_full_fwd",
    "scan_full_bwd",
    "scan_full_infer",
    "scan_subtree_fwd",
    "scan_subtree_bwd",
]

NAME = "triton"
_HALF = (torch.float16, torch.bfloat16)


def interpreted() -> bool:
    """Whether the kernels run in Triton's CPU interpreter: ``TRITON_INTERPRET=1`` was set when
    they were defined (Triton reads it in ``@triton.jit``)."""
    from triton.runtime.interpreter import InterpretedFunction

    return isinstance(K.accumulate_up, InterpretedFunction)


def _op(name: str, fake):
    """Register ``fn`` as the op ``grootvl::<name>``: a ``triton_op`` (its kernels visible to
    ``torch.compile``), or, when the kernels are interpreted (which ``torch.compile`` cannot
    trace), an opaque ``custom_op`` with ``fake`` as its fake implementation."""

    def register(fn):
        if not interpreted():
            return triton_op(f"grootvl::{name}", fn, mutates_args=())
        op = torch.library.custom_op(f"grootvl::{name}", fn, mutates_args=())
        op.register_fake(fake)
        return op

    return register


def _like_x(x, *args):
    return torch.empty_like(x)


def _like_grads(g, a, *args):
    return torch.empty_like(g), torch.empty_like(a)


def _compute(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _block_d(d: int) -> int:
    # at least one element per thread of the single warp (no replicated lanes), at most 4
    return max(32, min(128, triton.next_power_of_2(max(d, 1))))


def _on(device: torch.device):
    """Launch on ``device``'s GPU (Triton launches on the current one)."""
    return torch.cuda.device(device) if device.type == "cuda" else contextlib.nullcontext()


def _safe(order: Tensor, parent: Tensor) -> tuple[Tensor, Tensor]:
    """Indices clamped into ``[0, V)``: a forged table (the public API checks only shapes, and a
    check here would need the host) then gives wrong numbers, never an out-of-bounds access, which
    on a GPU would end the process's CUDA context."""
    v = order.shape[1]
    return order.clamp(0, max(v - 1, 0)), parent.clamp(0, max(v - 1, 0))


def _sorted(t: Tensor, order: Tensor, dtype: torch.dtype) -> Tensor:
    """``(B, D, V)`` vertex space -> a fresh contiguous ``(B, V, D)`` sorted-space buffer."""
    b, d, v = t.shape
    s = t.transpose(1, 2).gather(1, order[:, :, None].expand(b, v, d))
    return s if s.dtype == dtype else s.to(dtype)


def _vertex(s: Tensor, order: Tensor, like: Tensor, dtype: torch.dtype) -> Tensor:
    """``(B, V, D)`` sorted space -> ``(B, D, V)`` vertex space with ``like``'s memory layout."""
    b, v, d = s.shape
    out = torch.empty_like(like, dtype=dtype)
    out.transpose(1, 2).scatter_(1, order[:, :, None].expand(b, v, d), s.to(dtype))
    return out


def _grid(s: Tensor) -> tuple[int, int]:
    return (s.shape[0], triton.cdiv(s.shape[2], _block_d(s.shape[2])))


def _up(s: Tensor, e: Tensor, parent: Tensor) -> None:
    """Pass 1 in place on ``s``."""
    if s.numel():
        wrap_triton(K.accumulate_up)[_grid(s)](
            s, e, parent, s.shape[1], s.shape[2], BLOCK_D=_block_d(s.shape[2]), num_warps=1, num_stages=1
        )


def _down(
    s: Tensor,
    e: Tensor,
    parent: Tensor,
    mode: int,
    ge: Tensor | None = None,
    ux: Tensor | None = None,
    yx: Tensor | None = None,
) -> None:
    """Pass 2 in place on ``s`` (and the edge gradient into ``ge``), see :mod:`.triton_kernels`."""
    if s.numel():
        wrap_triton(K.propagate_down)[_grid(s)](
            s,
            e,
            parent,
            s if ge is None else ge,
            s if ux is None else ux,
            s if yx is None else yx,
            s.shape[1],
            s.shape[2],
            MODE=mode,
            BLOCK_D=_block_d(s.shape[2]),
            num_warps=1,
            num_stages=1,
        )


# ----------------------------------------------------------------------------------------------
# The interface (reference.py's signatures)
# ----------------------------------------------------------------------------------------------


@_op(
    "triton_grid_cosine_weights",
    lambda f: f.new_empty(
        (f.shape[0], (f.shape[2] - 1) * f.shape[3] + f.shape[2] * (f.shape[3] - 1)), dtype=torch.float32
    ),
)
def grid_cosine_weights(feature: Tensor) -> Tensor:
    b, d, h, w = feature.shape
    f = feature.float().contiguous()
    out = torch.empty(b, (h - 1) * w + h * (w - 1), dtype=torch.float32, device=f.device)
    if out.numel():
        block = 128
        with _on(f.device):
            wrap_triton(K.grid_cosine)[(b, triton.cdiv(h * w, block))](f, out, d, h, w, BLOCK_P=block)
    return out


@_op("triton_scan_full_fwd", lambda x, *args: (torch.empty_like(x), torch.empty_like(x, dtype=_compute(x.dtype))))
def scan_full_fwd(x: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor) -> tuple[Tensor, Tensor]:
    work = _compute(x.dtype)
    order, parent = _safe(order, parent)
    s, e = _sorted(x, order, work), _sorted(a, order, work)
    with _on(x.device):
        _up(s, e, parent)
        u = torch.empty_like(x, dtype=work).copy_(s.transpose(1, 2))
        _down(s, e, parent, K.FULL)
    return _vertex(s, order, x, x.dtype), u


@_op("triton_scan_full_infer", _like_x)
def scan_full_infer(x: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor) -> Tensor:
    work = _compute(x.dtype)
    order, parent = _safe(order, parent)
    s, e = _sorted(x, order, work), _sorted(a, order, work)
    with _on(x.device):
        _up(s, e, parent)
        _down(s, e, parent, K.FULL)
    return _vertex(s, order, x, x.dtype)


@_op("triton_scan_full_bwd", _like_grads)
def scan_full_bwd(
    g: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor, y: Tensor, u: Tensor
) -> tuple[Tensor, Tensor]:
    work = _compute(g.dtype)
    order, parent = _safe(order, parent)
    if u.dtype != work:
        raise RuntimeError(f"scan_full_bwd: u must be {work} (the forward's saved pass-1 aggregate), got {u.dtype}")
    s, e = _sorted(g, order, work), _sorted(a, order, work)
    ux = u.transpose(1, 2).contiguous()
    yx = _sorted(y, order, work)
    ge = torch.empty_like(s)
    with _on(g.device):
        _up(s, e, parent)
        _down(s, e, parent, K.FULL_GRAD, ge, ux, yx)
    return _vertex(s, order, g, g.dtype), _vertex(ge, order, a, a.dtype)


@_op("triton_scan_subtree_fwd", _like_x)
def scan_subtree_fwd(x: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor) -> Tensor:
    work = _compute(x.dtype)
    order, parent = _safe(order, parent)
    s, e = _sorted(x, order, work), _sorted(a, order, work)
    with _on(x.device):
        _up(s, e, parent)
    return _vertex(s, order, x, x.dtype)


@_op("triton_scan_subtree_bwd", _like_grads)
def scan_subtree_bwd(
    g: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    work = _compute(g.dtype)
    order, parent = _safe(order, parent)
    s, e = _sorted(g, order, work), _sorted(a, order, work)
    us = _sorted(y, order, work)
    ge = torch.empty_like(s)
    with _on(g.device):
        _down(s, e, parent, K.PREFIX, ge, us)
    return _vertex(s, order, g, g.dtype), _vertex(ge, order, a, a.dtype)


def mst(edges: Tensor, weights: Tensor, num_vertices: int) -> tuple[Tensor, Tensor]:
    return parallel_tree.mst(edges, weights, num_vertices)


def bfs(tree: Tensor, root: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    return parallel_tree.bfs(tree, root)
