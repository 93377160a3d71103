"""The Triton kernels of the ``triton`` backend (imported only when that backend is asked for).

Scans work in sorted space on ``(B, V, D)`` buffers (position-major, channels contiguous), one
program per ``(batch element, block of BLOCK_D channels)``, walking the positions in order (any
parent-before-child order works, as in the reference). A step reads rows that earlier steps wrote;
every memory op of a walk has the same channel-to-thread layout, and a barrier ends each step
anyway, so no step can see a row before the previous steps' stores to it, whatever layout the
compiler picks. Launched with one warp, ``BLOCK_D >= 32`` (no element replicated across threads)
and ``num_stages=1`` (no software pipelining that would hoist a step's loads above the previous
step's stores).

- :func:`accumulate_up`: pass 1, leaf to root, in place: ``U[p(i)] += e_i U[i]`` for i = V-1..1.
- :func:`propagate_down`: pass 2, root to leaf, in place, for i = 1..V-1; three modes:
  ``FULL``: ``Y_i = (1 - e_i^2) Y_i + e_i Y_p(i)`` (``Y`` holds ``U`` on entry);
  ``FULL_GRAD``: the same on ``g``'s pass 1, plus the edge gradient (reference 1.7)
  ``ge_i = Ug_i (Yx_p - e_i Ux_i) + Ux_i (Yg_p - e_i Ug_i)``;
  ``PREFIX``: ``G_i += e_i G_p(i)`` and ``ge_i = G_p(i) U_i`` (the subtree scan's backward, 1.9).
- :func:`grid_cosine`: ``exp(-cos)`` of every 4-neighbour pair of a ``(B, D, H, W)`` map.

Arithmetic runs in the buffers' dtype (float32, or float64).
"""

from __future__ import annotations

import triton
import triton.language as tl

# pass-2 modes: ints for the launcher, constexprs for the kernels (a jitted function reads only
# constexpr globals)
FULL, FULL_GRAD, PREFIX = 0, 1, 2
_FULL, _FULL_GRAD, _PREFIX = tl.constexpr(FULL), tl.constexpr(FULL_GRAD), tl.constexpr(PREFIX)


@triton.jit
def accumulate_up(u_ptr, e_ptr, parent_ptr, V, D, BLOCK_D: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = cols < D
    base = b * V * D
    for k in range(1, V):
        i = V - k
        p = tl.load(parent_ptr + b * V + i)
        row = base + i * D + cols
        prow = base + p * D + cols
        ui = tl.load(u_ptr + row, mask=mask, other=0.0)
        ei = tl.load(e_ptr + row, mask=mask, other=0.0)
        up = tl.load(u_ptr + prow, mask=mask, other=0.0)
        tl.store(u_ptr + prow, up + ei * ui, mask=mask)
        tl.debug_barrier()


@triton.jit
def propagate_down(y_ptr, e_ptr, parent_ptr, ge_ptr, ux_ptr, yx_ptr, V, D, MODE: tl.constexpr, BLOCK_D: tl.constexpr):
    b = tl.program_id(0).to(tl.int64)
    cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    mask = cols < D
    base = b * V * D
    if MODE != _FULL:  # the root's edge gradient
        tl.store(ge_ptr + base + cols, tl.zeros([BLOCK_D], dtype=ge_ptr.dtype.element_ty), mask=mask)
    for i in range(1, V):
        p = tl.load(parent_ptr + b * V + i)
        row = base + i * D + cols
        prow = base + p * D + cols
        yi = tl.load(y_ptr + row, mask=mask, other=0.0)
        ei = tl.load(e_ptr + row, mask=mask, other=0.0)
        yp = tl.load(y_ptr + prow, mask=mask, other=0.0)
        if MODE == _PREFIX:
            tl.store(y_ptr + row, yi + ei * yp, mask=mask)
            ux = tl.load(ux_ptr + row, mask=mask, other=0.0)
            tl.store(ge_ptr + row, yp * ux, mask=mask)
        else:
            tl.store(y_ptr + row, (1.0 - ei * ei) * yi + ei * yp, mask=mask)
            if MODE == _FULL_GRAD:
                ux = tl.load(ux_ptr + row, mask=mask, other=0.0)
                yxp = tl.load(yx_ptr + prow, mask=mask, other=0.0)
                tl.store(ge_ptr + row, yi * (yxp - ei * ux) + ux * (yp - ei * yi), mask=mask)
        tl.debug_barrier()


@triton.jit
def grid_cosine(f_ptr, out_ptr, D, H, W, BLOCK_P: tl.constexpr):
    """One program per (batch element, block of pixels); weights of the vertical edge below and
    the horizontal edge right of each pixel, in ``grid_edges`` order."""
    b = tl.program_id(0).to(tl.int64)
    p = tl.program_id(1) * BLOCK_P + tl.arange(0, BLOCK_P)
    hw = H * W
    inside = p < hw
    r = p // W
    c = p % W
    has_down = inside & (r < H - 1)
    has_right = inside & (c < W - 1)
    n0 = tl.zeros([BLOCK_P], dtype=tl.float32)
    n_down = tl.zeros([BLOCK_P], dtype=tl.float32)
    n_right = tl.zeros([BLOCK_P], dtype=tl.float32)
    dot_down = tl.zeros([BLOCK_P], dtype=tl.float32)
    dot_right = tl.zeros([BLOCK_P], dtype=tl.float32)
    base = b * D * hw
    for d in range(0, D):
        plane = f_ptr + base + d * hw
        x = tl.load(plane + p, mask=inside, other=0.0)
        xd = tl.load(plane + p + W, mask=has_down, other=0.0)
        xr = tl.load(plane + p + 1, mask=has_right, other=0.0)
        n0 += x * x
        n_down += xd * xd
        n_right += xr * xr
        dot_down += x * xd
        dot_right += x * xr
    eps = 1e-8
    norm0 = tl.maximum(tl.sqrt_rn(n0), eps)
    cos_down = tl.div_rn(dot_down, norm0 * tl.maximum(tl.sqrt_rn(n_down), eps))
    cos_right = tl.div_rn(dot_right, norm0 * tl.maximum(tl.sqrt_rn(n_right), eps))
    n_vertical = (H - 1) * W
    out = out_ptr + b * (n_vertical + H * (W - 1))
    tl.store(out + p, tl.exp(-cos_down), mask=has_down)
    tl.store(out + n_vertical + r * (W - 1) + c, tl.exp(-cos_right), mask=has_right)
