"""The tree scan: a linear-time two-pass dynamic program over a spanning tree (reference 1.6-1.9).

``tree_scan(x, a, tree, mode)`` with ``S(i, j)`` the product of ``a`` over the tree path i..j:

- ``mode="full"``:    ``y_i = sum over all j of S(i, j) x_j``            (GrootV, vision)
- ``mode="subtree"``: ``y_i = sum over j in subtree(i) of S(i, j) x_j``  (GrootL, language)

Registered as torch custom ops (``grootvl::tree_scan_full`` / ``grootvl::tree_scan_subtree`` and
their backward ops) with autograd, so ``torch.compile`` traces through it. The backend (native
CPU, CUDA, or the pure-PyTorch reference) is chosen per device by :mod:`.backend`.
"""

from __future__ import annotations

import torch
from torch import Tensor

from . import reference
from .backend import eager_native, implementation
from .reference import tree_scan_ref
from .spanning_tree import TreeOrder

__all__ = ["tree_scan", "tree_scan_ref"]

_MODES = ("full", "subtree")


# ----------------------------------------------------------------------------------------------
# Custom ops
# ----------------------------------------------------------------------------------------------


def kernel_layout(t: Tensor) -> Tensor:
    """``t`` in a memory layout the backend reads: contiguous, or, on the CPU, also "channels-last"
    (a ``(B, D, V)`` view of a contiguous ``(B, V, D)`` tensor, as GrootV computes its inputs; the
    native CPU kernels read and write it directly, and the output takes ``x``'s layout)."""
    if t.is_contiguous():
        return t
    b, d, v = t.shape
    if t.device.type == "cpu" and (b == 1 or t.stride(0) == d * v) and t.stride(1) == 1 and t.stride(2) == d:
        return t
    return t.contiguous()


# float16 / bfloat16 scans compute in float32. The CUDA kernels read and write those dtypes
# themselves (float32 working copies, made inside their layout change); every other backend gets
# float32 copies here. Either way the full scan's saved pass-1 aggregate ``u`` is float32.
_HALF = (torch.float16, torch.bfloat16)


def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """The dtype a scan of ``dtype`` values computes in: float64 or float32."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def _backend_for(t: Tensor):
    """``(module, cast)``: the backend for ``t``'s device, and whether ``t``'s dtype must be cast
    to float32 before it (float16/bfloat16 anywhere but the native CUDA kernels)."""
    mod = implementation(t.device)
    return mod, t.dtype in _HALF and not (t.device.type == "cuda" and mod is not reference)


@torch.library.custom_op("grootvl::tree_scan_full", mutates_args=())
def _full_fwd(x: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor) -> tuple[Tensor, Tensor]:
    mod, cast = _backend_for(x)
    if cast:
        y, u = mod.scan_full_fwd(x.float(), a.float(), order, parent, depth)
        return y.to(x.dtype), u
    return mod.scan_full_fwd(x, a, order, parent, depth)


@_full_fwd.register_fake
def _(x, a, order, parent, depth):
    return torch.empty_like(x), torch.empty_like(x, dtype=compute_dtype(x.dtype))


@torch.library.custom_op("grootvl::tree_scan_full_backward", mutates_args=())
def _full_bwd(
    g: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor, y: Tensor, u: Tensor
) -> tuple[Tensor, Tensor]:
    mod, cast = _backend_for(g)
    if cast:
        gx, ga = mod.scan_full_bwd(g.float(), a.float(), order, parent, depth, y.float(), u)
        return gx.to(g.dtype), ga.to(a.dtype)
    return mod.scan_full_bwd(g, a, order, parent, depth, y, u)


@_full_bwd.register_fake
def _(g, a, order, parent, depth, y, u):
    return torch.empty_like(g), torch.empty_like(a)


def _full_setup(ctx, inputs, output):
    _, a, order, parent, depth = inputs
    y, u = output
    ctx.mark_non_differentiable(u)
    ctx.save_for_backward(a, order, parent, depth, y, u)


def _full_backward(ctx, grad_y, grad_u):
    a, order, parent, depth, y, u = ctx.saved_tensors
    if grad_y is None:
        return None, None, None, None, None
    gx, ga = _full_bwd(kernel_layout(grad_y), a, order, parent, depth, y, u)
    return gx, ga, None, None, None


torch.library.register_autograd("grootvl::tree_scan_full", _full_backward, setup_context=_full_setup)


@torch.library.custom_op("grootvl::tree_scan_subtree", mutates_args=())
def _subtree_fwd(x: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor) -> Tensor:
    mod, cast = _backend_for(x)
    if cast:
        return mod.scan_subtree_fwd(x.float(), a.float(), order, parent, depth).to(x.dtype)
    return mod.scan_subtree_fwd(x, a, order, parent, depth)


@_subtree_fwd.register_fake
def _(x, a, order, parent, depth):
    return torch.empty_like(x)


@torch.library.custom_op("grootvl::tree_scan_subtree_backward", mutates_args=())
def _subtree_bwd(
    g: Tensor, a: Tensor, order: Tensor, parent: Tensor, depth: Tensor, y: Tensor
) -> tuple[Tensor, Tensor]:
    mod, cast = _backend_for(g)
    if cast:
        gx, ga = mod.scan_subtree_bwd(g.float(), a.float(), order, parent, depth, y.float())
        return gx.to(g.dtype), ga.to(a.dtype)
    return mod.scan_subtree_bwd(g, a, order, parent, depth, y)


@_subtree_bwd.register_fake
def _(g, a, order, parent, depth, y):
    return torch.empty_like(g), torch.empty_like(a)


def _subtree_setup(ctx, inputs, output):
    _, a, order, parent, depth = inputs
    ctx.save_for_backward(a, order, parent, depth, output)


def _subtree_backward(ctx, grad_y):
    a, order, parent, depth, y = ctx.saved_tensors
    gx, ga = _subtree_bwd(kernel_layout(grad_y), a, order, parent, depth, y)
    return gx, ga, None, None, None


torch.library.register_autograd("grootvl::tree_scan_subtree", _subtree_backward, setup_context=_subtree_setup)


# ----------------------------------------------------------------------------------------------
# Public API
# ----------------------------------------------------------------------------------------------


def _check(x, a, tree, mode) -> None:
    fn = "tree_scan"
    if mode not in _MODES:
        raise ValueError(f"{fn}: mode must be 'full' or 'subtree', got {mode!r}")
    for name, t in (("x", x), ("a", a)):
        if not isinstance(t, Tensor):
            raise TypeError(f"{fn}: {name} must be a torch.Tensor, got {type(t).__name__}")
        if not t.is_floating_point():
            raise TypeError(
                f"{fn}: {name} must be floating point (float32/64, or float16/bfloat16 "
                f"computed in float32), got {t.dtype}"
            )
        if t.dim() != 3:
            raise ValueError(f"{fn}: {name} must be (B, D, V), got {tuple(t.shape)}")
    if x.shape != a.shape:
        raise ValueError(f"{fn}: x and a must have the same shape (B, D, V), got {tuple(x.shape)} and {tuple(a.shape)}")
    if x.dtype != a.dtype:
        raise TypeError(f"{fn}: x and a must have the same dtype, got {x.dtype} and {a.dtype}")
    if not isinstance(tree, TreeOrder):
        if isinstance(tree, tuple) and len(tree) == 3:
            tree = TreeOrder(*tree)
        else:
            raise TypeError(f"{fn}: tree must be a TreeOrder from grootvl_core.ops.bfs, got {type(tree).__name__}")
    b, _, v = x.shape
    for name in TreeOrder._fields:
        t = getattr(tree, name)
        if t.shape != (b, v):
            raise ValueError(f"{fn}: tree.{name} must be (B, V) = ({b}, {v}) to match x, got {tuple(t.shape)}")
        if t.device != x.device:
            raise ValueError(f"{fn}: tree.{name} is on {t.device} but x on {x.device}; move them to one device")
    if a.device != x.device:
        raise ValueError(f"{fn}: x is on {x.device} but a on {a.device}; move them to one device")


def tree_scan(x: Tensor, a: Tensor, tree: TreeOrder, mode: str = "full") -> Tensor:
    """Aggregate ``x`` over a tree with per-channel edge transition weights ``a``.

    Args:
        x: ``(B, D, V)`` values in vertex order.
        a: ``(B, D, V)`` in vertex order; ``a[b, d, v]`` is the weight of the edge between vertex
            ``v`` and its parent (taken from the child endpoint; the root's value is ignored).
        tree: :class:`TreeOrder` from :func:`bfs`, shared by all ``D`` channels.
        mode: ``"full"`` (both passes) or ``"subtree"`` (leaf-to-root only).

    Returns:
        ``(B, D, V)`` in vertex order, dtype of ``x``. float16/bfloat16 are computed in float32
        (on CUDA inside the kernels, which read and write the half-precision tensors directly).
        Differentiable in ``x`` and ``a``; inputs are never mutated. On the CPU, an ``x`` that is a
        ``(B, D, V)`` view of a contiguous ``(B, V, D)`` tensor is read in place and the output
        comes in that layout too (so ``y.transpose(1, 2)`` is contiguous).
    """
    _check(x, a, tree, mode)
    tree = TreeOrder(*tree)
    dtype = x.dtype
    # float16/bfloat16 go to CUDA as they are (the kernels convert while changing layout); every
    # other dtype and device computes in float32/float64 copies
    compute = dtype if dtype in _HALF and x.device.type == "cuda" else compute_dtype(dtype)
    xc, ac = kernel_layout(x.to(compute)), kernel_layout(a.to(compute))
    order, parent, depth = (t.to(torch.int64).contiguous() for t in tree)
    native = eager_native(xc, ac, order, parent, depth)
    if native is not None:  # eager inference: the kernel itself, without the custom-op dispatch
        if mode == "full":
            if xc.device.type == "cpu" or getattr(native, "NAME", None) == "triton":  # y only, no u kept
                return native.scan_full_infer(xc, ac, order, parent, depth).to(dtype)
            return native.scan_full_fwd(xc, ac, order, parent, depth)[0].to(dtype)
        return native.scan_subtree_fwd(xc, ac, order, parent, depth).to(dtype)
    if mode == "full":
        # NOTE: through the op packet (torch.ops.grootvl.*): calls of the CustomOpDef or of the
        # OpOverload can go missing from torch.profiler traces (torch 2.14), the packet's never do
        y, _ = torch.ops.grootvl.tree_scan_full(xc, ac, order, parent, depth)
    else:
        y = torch.ops.grootvl.tree_scan_subtree(xc, ac, order, parent, depth)
    return y.to(dtype)
