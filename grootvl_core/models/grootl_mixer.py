"""GrootL's blocks: RMSNorm, the tree-scanning Mamba mixer (reference 4.3), the residual block, the backbone.

Module and parameter names are those of ``transformers``' ``MambaMixer`` / ``MambaBlock`` /
``MambaModel``, so ``state_dict`` keys equal ``MambaForCausalLM``'s (reference 4.1).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grootvl_core.ops import tree_scan

from .grootl_config import _ACTIVATIONS, GrootLCache, GrootLConfig
from .grootl_tree import chain_tree, feature_tree

__all__ = ["GrootLBackbone", "GrootLBlock", "GrootLMixer", "RMSNorm"]


class RMSNorm(nn.Module):
    """RMSNorm computed in float32, as ``MambaRMSNorm`` (weight only, key ``weight``)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        x = x.float()
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * x.to(dtype)


class GrootLMixer(nn.Module):
    """Mamba selective-SSM mixer with GrootL's tree scanning (reference 4.3).

    Parameters (keys as ``MambaMixer``): ``A_log (D, N)``, ``D (D,)``, ``conv1d`` (depthwise,
    ``(D, 1, K)``), ``in_proj (2D, H)``, ``x_proj (R + 2N, D)``, ``dt_proj (D, R)`` + bias,
    ``out_proj (H, D)``.

    Args:
        config: :class:`GrootLConfig`.
        layer_idx: index of this layer (selects its cache slots).
    """

    def __init__(self, config: GrootLConfig, layer_idx: int) -> None:
        super().__init__()
        h, d, n = config.hidden_size, config.intermediate_size, config.state_size
        r, k = config.time_step_rank, config.conv_kernel
        self.layer_idx = layer_idx
        self.hidden_size, self.intermediate_size, self.state_size = h, d, n
        self.time_step_rank, self.conv_kernel = r, k
        self.tree_scale = float(config.tree_scale)
        self.tree_band = int(config.tree_band)
        self.act = _ACTIVATIONS[config.hidden_act]
        self.conv1d = nn.Conv1d(d, d, kernel_size=k, groups=d, padding=k - 1, bias=config.use_conv_bias)
        self.in_proj = nn.Linear(h, 2 * d, bias=config.use_bias)
        self.x_proj = nn.Linear(d, r + 2 * n, bias=False)
        self.dt_proj = nn.Linear(r, d, bias=True)
        a = torch.arange(1, n + 1, dtype=torch.float32)[None, :].expand(d, -1).contiguous()
        self.A_log = nn.Parameter(torch.log(a))
        self.D = nn.Parameter(torch.ones(d))
        self.out_proj = nn.Linear(d, h, bias=config.use_bias)
        # Set by grootvl_core.models.token_tree_capture while a capture is active; never saved.
        # Called as capture(mixer, tree, weight, context_lengths) with the feature tree (tree 2;
        # the chain when tree_scale = 0 or every context is <= 2 tokens) and the vertex-order
        # transition weights (B, D * N, L), detached.
        self._capture = None

    def _ssm_inputs(self, u: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``u (B, L, D)`` -> ``delta (B, L, D)``, ``Bm``, ``Cm`` ``(B, L, N)``, ``A (D, N)`` fp32."""
        params = self.x_proj(u)  # [B, L, R + 2N]
        dt, bm, cm = torch.split(params, [self.time_step_rank, self.state_size, self.state_size], dim=-1)
        delta = F.softplus(self.dt_proj(dt))  # [B, L, D]
        a = -torch.exp(self.A_log.float())  # [D, N]
        return delta, bm, cm, a

    # fmt: off
    def forward(self, hidden_states: Tensor, context_lengths: list[int],
                cache: GrootLCache | None = None) -> Tensor:
        """Full-sequence forward (training, scoring, prefill).

        Args:
            hidden_states: ``(B, L, H)``.
            context_lengths: ``B`` ints in ``[0, L]`` (see module docstring).
            cache: if given, its conv state, ``h1`` and ``h2`` for this layer are set to the states
                after the last token (prefill).

        Returns:
            ``(B, L, H)``.
        """
        batch, length, _ = hidden_states.shape
        d, n = self.intermediate_size, self.state_size
        dtype = hidden_states.dtype
        # 1. Gated projection
        projected = self.in_proj(hidden_states).transpose(1, 2)             # [B, 2D, L]
        x, gate = projected.chunk(2, dim=1)                                   # [B, D, L] each
        if cache is not None:
            # NOTE: a negative pad crops: the last K inputs, left-padded with zeros when L < K.
            cache.conv_states[self.layer_idx].copy_(F.pad(x, (self.conv_kernel - length, 0)))
        # 2. Causal depthwise conv
        u = self.act(self.conv1d(x)[..., :length])                            # [B, D, L]
        # 3. Input-dependent SSM parameters
        delta, bm, cm, a = self._ssm_inputs(u.transpose(1, 2))                # [B, L, D], [B, L, N]
        delta = delta.transpose(1, 2).float()                                 # [B, D, L]
        # 4. Discretisation (float32): Bbar u = delta B u, Abar = exp(A delta)
        delta_u = delta * u.float()                                           # [B, D, L]
        bm_t = bm.float().transpose(1, 2)                                     # [B, N, L]
        bbar_u = delta_u[:, :, None, :] * bm_t[:, None]                       # [B, D, N, L]
        # 5. Channels d*N + n; vertex-order edge weights a[t] = Abar[t + 1] (root L-1 ignored),
        #    computed from the shifted delta (cheaper than rolling Abar itself)
        feature = bbar_u.reshape(batch, d * n, length)                        # [B, DN, L]
        delta_next = delta.roll(-1, dims=-1)                                  # [B, D, L]
        weight = torch.exp(a[None, :, :, None] * delta_next[:, :, None, :])   # [B, D, N, L]
        weight = weight.reshape(batch, d * n, length)                         # [B, DN, L]
        # 6. Tree 1: the chain (exactly Mamba's recurrence)
        h1 = tree_scan(feature, weight, chain_tree(batch, length, feature.device), mode="subtree")
        h, h2 = h1, h1
        tree = None
        # 7. Tree 2: MST of the band graph over each sample's context (skipped when tree_scale = 0)
        if self.tree_scale != 0.0:
            if any(p > 2 for p in context_lengths):
                tree = feature_tree(feature, context_lengths, self.tree_band,
                                    factors=(delta_u, bm_t))                  # Bbar u = delta u (x) B
                h2 = tree_scan(feature, weight, tree, mode="subtree")         # [B, DN, L]
            h = torch.add(h1, h2, alpha=self.tree_scale)
        if self._capture is not None:
            self._capture(self, tree if tree is not None else chain_tree(batch, length, feature.device),
                          weight.detach(), list(context_lengths))
        if cache is not None:
            cache.ssm_states[self.layer_idx].copy_(h1[..., -1].view(batch, d, n))
            if self.tree_scale != 0.0:
                cache.tree_states[self.layer_idx].copy_(h2[..., -1].view(batch, d, n))
        # 8. Read-out with C, skip connection D, gate, output projection
        h = h.to(dtype).view(batch, d, n, length)
        y = (h * cm.transpose(1, 2)[:, None]).sum(dim=2)                      # [B, D, L]
        y = y + u * self.D[None, :, None]
        y = y * self.act(gate)
        return self.out_proj(y.transpose(1, 2))                               # [B, L, H]

    def step(self, hidden_states: Tensor, cache: GrootLCache) -> Tensor:
        """One decoding step (reference 4.5): advance the conv state, ``h1`` and ``h2``.

        Args:
            hidden_states: ``(B, H)`` for the new token.
            cache: the :class:`GrootLCache` filled by a prefill; updated in place.

        Returns:
            ``(B, H)``.
        """
        dtype = hidden_states.dtype
        x, gate = self.in_proj(hidden_states).chunk(2, dim=-1)                # [B, D] each
        conv_state = cache.conv_states[self.layer_idx]                        # [B, D, K]
        conv_state.copy_(conv_state.roll(-1, dims=-1))
        conv_state[:, :, -1] = x
        u = (conv_state * self.conv1d.weight[:, 0, :]).sum(dim=-1)            # [B, D]
        if self.conv1d.bias is not None:
            u = u + self.conv1d.bias
        u = self.act(u)
        delta, bm, cm, a = self._ssm_inputs(u)                                # [B, D], [B, N]
        delta = delta.float()
        abar = torch.exp(a[None] * delta[:, :, None])                         # [B, D, N]
        bbar_u = (delta * u.float())[:, :, None] * bm.float()[:, None, :]     # [B, D, N]
        h1 = cache.ssm_states[self.layer_idx]
        h1.mul_(abar).add_(bbar_u)
        h = h1
        if self.tree_scale != 0.0:
            h2 = cache.tree_states[self.layer_idx]
            h2.mul_(abar).add_(bbar_u)
            h = torch.add(h1, h2, alpha=self.tree_scale)
        y = (h.to(dtype) * cm[:, None, :]).sum(dim=-1)                        # [B, D]
        y = y + u * self.D
        y = y * self.act(gate)
        return self.out_proj(y)                                               # [B, H]
    # fmt: on


class GrootLBlock(nn.Module):
    """``residual + mixer(RMSNorm(h))`` with the residual kept in float32 (reference 4.2)."""

    def __init__(self, config: GrootLConfig, layer_idx: int) -> None:
        super().__init__()
        self.residual_in_fp32 = config.residual_in_fp32
        self.norm = RMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
        self.mixer = GrootLMixer(config, layer_idx)

    def _pre(self, hidden_states: Tensor) -> tuple[Tensor, Tensor]:
        residual = hidden_states
        normed = self.norm(hidden_states.to(self.norm.weight.dtype))
        if self.residual_in_fp32:
            residual = residual.float()
        return residual, normed

    def forward(self, hidden_states: Tensor, context_lengths: list[int], cache: GrootLCache | None = None) -> Tensor:
        residual, normed = self._pre(hidden_states)
        return residual + self.mixer(normed, context_lengths, cache)

    def step(self, hidden_states: Tensor, cache: GrootLCache) -> Tensor:
        residual, normed = self._pre(hidden_states)
        return residual + self.mixer.step(normed, cache)


class GrootLBackbone(nn.Module):
    """Embeddings, blocks and final norm (keys ``backbone.*`` of ``MambaForCausalLM``)."""

    def __init__(self, config: GrootLConfig) -> None:
        super().__init__()
        self.embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.layers = nn.ModuleList(GrootLBlock(config, i) for i in range(config.num_hidden_layers))
        self.norm_f = RMSNorm(config.hidden_size, eps=config.layer_norm_epsilon)
