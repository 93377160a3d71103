"""The Tree-SSM token mixer of GrootV (reference-grootvl.md sections 1.1-1.2 and 2).

A selective state space layer (Mamba-style, ``d_state = 1``) whose recurrence runs over a
minimum spanning tree of the 4-connected pixel grid instead of a fixed scan order:

    u     = SiLU(DWConv3x3(x_half(in_proj(X))))                       # (B, D, H, W)
    tree  = BFS(MST(grid, exp(-cos(u_a, u_b))), root = pixel 0)
    Delta = softplus(W_dt W_x,dt u + b_dt);  Abar = exp(Delta * A);  x = Delta * B * u
    h     = TreeScan(x, Abar, tree)                                   # y_i = sum_j S(i, j) x_j
    out   = out_proj(out_norm(C * h_norm(h) + D * u) * SiLU(z_half(in_proj(X))))

Parameter names, shapes and initialisation follow the published ``Tree_SSM`` exactly (2.1) so
its checkpoints load 1:1; the scan path always runs in float32 (2.4, published quirk 6.1).
Published bugs fixed here rather than copied (section 6): ``h_norm`` can be switched off without
a NameError (6.7), and configurations the published code silently mis-computes (``d_state != 1``,
an even conv kernel) are rejected with a clear error (6.8).

Original code: EasonXiao-888/GrootVL (``GrootV/classification/models/tree_scanning.py``).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grootvl_core import ops

__all__ = ["SpanningTree", "TreeSSM", "build_grid_tree", "raster_chain"]


class SpanningTree(NamedTuple):
    """A spanning tree of an ``H x W`` pixel grid, per batch element.

    Attributes:
        edges: ``(B, V-1, 2)`` int32 MST edge rows (vertex ids ``r * W + c``).
        order: :class:`grootvl_core.ops.TreeOrder` from vertex 0 (the top-left pixel).
        height, width: the grid size; ``V = height * width``.
    """

    edges: Tensor
    order: ops.TreeOrder
    height: int
    width: int


def build_grid_tree(feature: Tensor) -> SpanningTree:
    """Maximum-similarity spanning tree of the pixel grid of ``feature`` (reference 1.1-1.5).

    Edge weights are ``exp(-cosine similarity)`` of the two endpoint feature vectors over all
    channels; the MST breaks ties by the lower edge index; BFS from vertex 0. Not differentiable.

    Args:
        feature: ``(B, D, H, W)`` floating tensor (GrootV passes ``u`` in float32).

    Returns:
        :class:`SpanningTree` on ``feature``'s device.
    """
    # grid edges, exp(-cos) weights, MST, BFS from pixel 0: one op (one native call on the CPU)
    tree_edges, order = ops.grid_spanning_tree(feature)
    return SpanningTree(tree_edges, order, feature.shape[2], feature.shape[3])


def raster_chain(batch: int, height: int, width: int, device=None) -> SpanningTree:
    """The row-major chain of an ``H x W`` grid as a tree rooted at the last pixel (``parent(v) =
    v + 1``), for the ``scan_order="raster"`` ablation: its subtree scan is a causal 1-D scan."""
    v = height * width
    edges = torch.stack([torch.arange(v - 1), torch.arange(1, v)], dim=1).to(torch.int32)
    return SpanningTree(edges.to(device).expand(batch, -1, -1), ops.chain_tree(batch, v, device), height, width)


# Called as capture(module, tree, abar) with abar (B, D, V) float32, detached; see tree_capture.py.
CaptureFn = Callable[["TreeSSM", SpanningTree, Tensor], None]


class TreeSSM(nn.Module):
    """Tree state space token mixer (published class ``Tree_SSM``, reference 2.1-2.4).

    Args:
        d_model: input/output channels ``C``.
        d_state: SSM state size ``N``; the published model (and this implementation) needs 1.
        ssm_ratio: expansion; ``D = int(ssm_ratio * C)`` SSM channels (2 in GrootV).
        dt_rank: rank ``R`` of the Delta projection, or ``"auto"`` for ``ceil(C / 16)`` (computed
            from ``d_model``, as published).
        d_conv: depthwise conv kernel size (odd; 3 in GrootV).
        conv_bias: bias in the depthwise conv (False in GrootV).
        bias: bias in ``in_proj`` / ``out_proj`` (False in GrootV).
        dropout: dropout after ``out_proj``.
        dt_min, dt_max, dt_init_floor: range of the initial ``Delta`` (inverse-softplus bias).
        dt_init: ``"random"`` (uniform ``+-dt_scale * R**-0.5``) or ``"constant"`` init of
            ``dt_projs_weight``.
        dt_scale: scale of that init.
        h_norm: LayerNorm the hidden state over channels before multiplying by ``C`` (True in
            GrootV; the published code crashes with it off, bug 6.7).
        scan_order: ``"tree"`` (GrootV: the feature MST, both passes) or ``"raster"`` (ablation:
            a plain unidirectional scan along the row-major chain of pixels, Mamba's recurrence
            ``h_t = Abar_t h_{t-1} + Delta_t B_t u_t``; same parameters, no tree built).

    Shapes: ``forward(x)`` takes and returns ``(B, H, W, C)`` channels-last tensors.
    """

    def __init__(
        self,
        d_model: int,
        d_state: int = 1,
        ssm_ratio: float = 2.0,
        dt_rank: int | str = "auto",
        d_conv: int = 3,
        conv_bias: bool = False,
        bias: bool = False,
        dropout: float = 0.0,
        dt_min: float = 0.001,
        dt_max: float = 0.1,
        dt_init: str = "random",
        dt_scale: float = 1.0,
        dt_init_floor: float = 1e-4,
        h_norm: bool = True,
        scan_order: str = "tree",
    ):
        super().__init__()
        if scan_order not in ("tree", "raster"):
            raise ValueError(f"TreeSSM: scan_order must be 'tree' or 'raster', got {scan_order!r}")
        if int(d_state) != 1:
            raise ValueError(
                f"TreeSSM: d_state must be 1 (the tree scan carries one state per "
                f"channel, reference 2.3), got {d_state}"
            )
        if int(d_conv) < 1 or int(d_conv) % 2 == 0:
            raise ValueError(f"TreeSSM: d_conv must be a positive odd kernel size, got {d_conv}")
        if dt_init not in ("random", "constant"):
            raise ValueError(f"TreeSSM: dt_init must be 'random' or 'constant', got {dt_init!r}")
        d_inner = int(ssm_ratio * d_model)
        rank = math.ceil(d_model / 16) if dt_rank == "auto" else int(dt_rank)
        if d_inner < 1 or rank < 1:
            raise ValueError(
                f"TreeSSM: need ssm_ratio * d_model >= 1 and dt_rank >= 1, got d_inner={d_inner}, dt_rank={rank}"
            )
        self.d_model, self.d_inner, self.d_state, self.dt_rank = d_model, d_inner, 1, rank
        self.scan_order = scan_order

        # NOTE: bare Parameters first, then submodules, so state_dict() order equals the
        # published one (reference 2.1 / Appendix A).
        # x_proj: Linear(D -> R + 2), stacked as (K=1, R+2, D); PyTorch's default Linear init.
        x_proj = torch.empty(rank + 2, d_inner)
        nn.init.kaiming_uniform_(x_proj, a=math.sqrt(5))
        self.x_proj_weight = nn.Parameter(x_proj.unsqueeze(0))  # (1, R+2, D)

        dt_std = rank**-0.5 * dt_scale
        dt_w = torch.empty(d_inner, rank)
        if dt_init == "random":
            nn.init.uniform_(dt_w, -dt_std, dt_std)
        else:
            nn.init.constant_(dt_w, dt_std)
        self.dt_projs_weight = nn.Parameter(dt_w.unsqueeze(0))  # (1, D, R)

        dt = torch.exp(torch.rand(d_inner) * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min)).clamp(
            min=dt_init_floor
        )
        inv_softplus_dt = dt + torch.log(-torch.expm1(-dt))
        self.dt_projs_bias = nn.Parameter(inv_softplus_dt.unsqueeze(0))  # (1, D)

        # S4D-real init with N = 1: A = -1 for every channel.
        self.A_logs = nn.Parameter(torch.zeros(d_inner, 1))  # (D, 1)
        self.Ds = nn.Parameter(torch.ones(d_inner))  # (D,)
        self.A_logs._no_weight_decay = True
        self.Ds._no_weight_decay = True

        self.out_norm = nn.LayerNorm(d_inner, eps=1e-5)
        self.h_norm = nn.LayerNorm(d_inner, eps=1e-5) if h_norm else None
        self.in_proj = nn.Linear(d_model, 2 * d_inner, bias=bias)
        self.act = nn.SiLU()
        self.conv2d = nn.Conv2d(
            d_inner, d_inner, kernel_size=d_conv, padding=(d_conv - 1) // 2, groups=d_inner, bias=conv_bias
        )
        self.out_proj = nn.Linear(d_inner, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

        # Set by grootvl_core.models.tree_capture while a capture is active; never saved.
        self._capture: CaptureFn | None = None

    def forward(self, x: Tensor, tree: SpanningTree | None = None, return_tree: bool = False):
        """Mix tokens over a spanning tree of the pixel grid (reference 2.2 steps 1-16).

        Args:
            x: ``(B, H, W, C)`` channels-last input (already normalised by the block).
            tree: reuse this tree instead of building one from ``u`` (``tree_per_stage``);
                it must come from the same grid size and batch.
            return_tree: also return the tree used.

        Returns:
            ``(B, H, W, C)``, or ``(output, tree)`` when ``return_tree``.
        """
        if x.dim() != 4 or x.shape[-1] != self.d_model:
            raise ValueError(f"TreeSSM: x must be (B, H, W, {self.d_model}) channels-last, got {tuple(x.shape)}")
        b, h, w, _ = x.shape
        # fmt: off
        if x.device.type == "cpu":
            # NOTE: two GEMMs on the weight's row halves (views): xs comes out contiguous, so the
            # depthwise conv below reads it without the copy a strided half of one (B, H, W, 2D)
            # output costs (1.1x faster in_proj + conv at GrootV-T sizes on 2 cores)
            weight, bias = self.in_proj.weight, self.in_proj.bias
            half = weight.shape[0] // 2
            xs = F.linear(x, weight[:half], None if bias is None else bias[:half])  # (B, H, W, D)
            z = F.linear(x, weight[half:], None if bias is None else bias[half:])   # (B, H, W, D)
        else:
            xs, z = self.in_proj(x).chunk(2, dim=-1)                 # (B, H, W, D) each
        # 3. the gate's SiLU is applied by ops.ssm_output, in its fused pass on the CPU
        # NOTE: the permuted view is NCHW in channels_last memory; oneDNN's depthwise conv runs
        # ~2x faster on it than on a contiguous copy, and u stays channels-innermost (cheap
        # cosine weights and (B, L, D) views below). With a SiLU, ops.depthwise_conv_silu runs
        # conv and activation in one CPU pass for inference (PyTorch's ops otherwise).
        if isinstance(self.act, nn.SiLU):
            u = ops.depthwise_conv_silu(xs, self.conv2d.weight, self.conv2d.bias).permute(0, 3, 1, 2)
        else:
            u = self.act(self.conv2d(xs.permute(0, 3, 1, 2)))        # 4. (B, D, H, W)
        # fmt: on
        if tree is not None and (tree.height != h or tree.width != w or tree.order.order.shape[0] != b):
            raise ValueError(
                f"TreeSSM: the shared tree is for a batch of "
                f"{tree.order.order.shape[0]} on a {tree.height}x{tree.width} grid, "
                f"but the input is a batch of {b} on {h}x{w}"
            )
        y, tree = self._scan(u, tree, z.reshape(b, h * w, -1))  # 13-16. (B, L, D)
        out = self.dropout(self.out_proj(y.view(b, h, w, -1)))  # 16.
        return (out, tree) if return_tree else out

    def _scan(self, u: Tensor, tree: SpanningTree | None, z: Tensor) -> tuple[Tensor, SpanningTree]:
        """Steps 5-16 of reference 2.2 (in float32 up to the gate); returns the gated
        ``out_norm(...) * act(z)`` as ``(B, L, D)`` in ``z``'s dtype (``z`` before the gate's
        activation)."""
        b, d, h, w = u.shape
        r = self.dt_rank
        # NOTE: everything up to the scan runs on (B, L, D) tensors with D innermost: u comes out of
        # the depthwise conv in channels_last memory, so this view is free, the projections are
        # plain GEMMs and every elementwise op below reads and writes contiguous memory (mixing
        # the (B, D, L) and (B, L, D) layouts made each op several times slower on the CPU).
        # fmt: off
        u_t = u.permute(0, 2, 3, 1).reshape(b, h * w, d)                        # (B, L, D)
        x_dbl = F.linear(u_t, self.x_proj_weight[0])                           # (B, L, R+2)
        dt_low, bs, cs = torch.split(x_dbl, [r, 1, 1], dim=2)
        dts = F.linear(dt_low, self.dt_projs_weight[0])                        # (B, L, D)
        # 5. the published code forces float32 here whatever the argument (quirk 6.1)
        u32 = u_t.float()
        bs, cs = bs.float(), cs.float()                                        # (B, L, 1)
        a_cont = -torch.exp(self.A_logs.float()).view(d)                       # 8.
        # 7. delta = softplus(dt + bias), Abar = exp(delta A), 9. x = delta B u: one fused CPU
        # pass for inference (ops.ssm_discretize), PyTorch's ops otherwise
        abar, xin = ops.ssm_discretize(dts.float(), self.dt_projs_bias.float().view(d), a_cont, bs, u32)
        # NOTE: Abar stays in VERTEX order; tree_scan takes it so (the published code gathers)
        # (B, D, L) views of (B, L, D) memory: the CPU scan reads them in place (other backends
        # get contiguous copies from tree_scan)
        abar, xin = abar.transpose(1, 2), xin.transpose(1, 2)                  # (B, D, L)
        # fmt: on
        if self.scan_order == "raster":
            # chain parent(v) = v + 1 rooted at the last pixel; edge (v, v+1) carries Abar_{v+1}
            tree = raster_chain(b, h, w, u.device)
            abar = torch.roll(abar, -1, dims=2)
            mode = "subtree"
        else:
            mode = "full"
            if tree is None:
                tree = build_grid_tree(u.float())  # 10.
        if self._capture is not None:
            self._capture(self, tree, abar.detach())
        hs = ops.tree_scan(xin, abar, tree.order, mode)  # 11-12. (B, D, L)
        hs = hs.transpose(1, 2)  # (B, L, D)
        # 13. h_norm, 14. * C + u * D, 15. out_norm, cast back, 16. gate: one fused CPU pass
        # for inference (ops.ssm_output), PyTorch's ops otherwise
        if isinstance(self.act, nn.SiLU):
            return ops.ssm_output(hs, u32, cs, self.Ds, self.h_norm, self.out_norm, z, silu_gate=True), tree
        return ops.ssm_output(hs, u32, cs, self.Ds, self.h_norm, self.out_norm, self.act(z)), tree

    def extra_repr(self) -> str:
        return (
            f"d_model={self.d_model}, d_inner={self.d_inner}, d_state={self.d_state}, "
            f"dt_rank={self.dt_rank}, scan_order={self.scan_order!r}"
        )
