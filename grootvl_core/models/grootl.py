"""GrootL: tree scanning inside a Mamba causal language model (reference-grootvl.md section 4).

Paper: "GrootVL: Tree Topology is All You Need in State Space Model" (NeurIPS 2024,
arXiv 2406.02395). Original code: github.com/EasonXiao-888/GrootVL (``GrootL/tree_scanning.py``),
which monkey-patches ``MambaMixer.slow_forward`` of a vendored ``transformers``. The base model is
``state-spaces/mamba-130m-hf`` (Apache-2.0); GrootL adds no parameters, so the published GrootL
weights are a plain Hugging Face Mamba checkpoint that must be run with the tree-scanning mixer.

This file is a self-contained Mamba LM (no ``transformers`` dependency) whose ``state_dict`` keys are
those of ``transformers.MambaForCausalLM`` (reference 4.1), with the mixer of reference 4.3:

    out = chain scan + tree_scale * scan over the feature tree        (tree_scale = 0.3 published)

and exact cached decoding (reference 4.5): a :class:`GrootLCache` keeps, per layer, the causal-conv
state and TWO SSM states, ``h1`` (chain, plain Mamba) and ``h2`` (tree 2). After the prompt has been
processed with the full tree algorithm, each new token advances both with the Mamba recurrence,
which equals recomputing the whole sequence with the context length fixed to the prompt length.

``tree_scale = 0`` skips tree 2 entirely and is exactly plain Mamba.

Context lengths (``context_lengths``, the published ``contex_len``) are PER SAMPLE here (the
published code used one batch-wide value, bugs 6.9/6.10); values above the sequence length are
clamped. A context of ``P <= 2`` tokens has a band graph that IS the chain, so tree 2 equals tree 1
and the SSM output is ``(1 + tree_scale) *`` the chain output, i.e. plain Mamba with its state term
scaled by 1.3: this matches the published behaviour ("tree 2 := tree 1 when contex_len <= 2",
reference 6.3) and is kept for checkpoint fidelity. ``P = 0`` is treated the same way.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from grootvl_core.ops import tree_scan

from .grootl_tree import chain_tree, feature_tree, normalize_context_lengths

__all__ = [
    "GrootL",
    "GrootLCache",
    "GrootLConfig",
    "GrootLOutput",
    "MambaLM",
    "checkpoint_filter_fn",
    "grootl_130m",
    "mamba_130m",
]

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"

_ACTIVATIONS = {"silu": F.silu, "swish": F.silu, "gelu": F.gelu, "relu": F.relu}


# ----------------------------------------------------------------------------------------------
# Config
# ----------------------------------------------------------------------------------------------


@dataclass
class GrootLConfig:
    """Model configuration; field names are those of ``transformers.MambaConfig``'s config.json.

    Defaults are ``state-spaces/mamba-130m-hf`` (reference 4.1) plus the tree fields.

    Args:
        vocab_size: embedding rows (50280 for mamba-130m-hf; read it from the checkpoint's config).
        hidden_size: model width ``H``.
        state_size: SSM state size ``N``.
        num_hidden_layers: number of Mamba blocks.
        layer_norm_epsilon: RMSNorm epsilon.
        pad_token_id, bos_token_id, eos_token_id: special token ids.
        expand: ``intermediate_size = expand * hidden_size`` when ``intermediate_size`` is None.
        conv_kernel: causal depthwise conv width ``K``.
        use_bias: bias in ``in_proj`` / ``out_proj``.
        use_conv_bias: bias in ``conv1d``.
        hidden_act: ``"silu"`` (also ``"swish"``, ``"gelu"``, ``"relu"``).
        initializer_range: std of the embedding init (random models only).
        residual_in_fp32: keep the residual stream in float32.
        time_step_rank: dt rank ``R`` (``"auto"``: ``ceil(hidden_size / 16)``).
        time_step_scale, time_step_min, time_step_max, time_step_init_scheme, time_step_floor:
            ``dt_proj`` init (random models only), as in ``MambaConfig``.
        rescale_prenorm_residual: GPT-2 style ``out_proj`` init rescaling (random models only).
        tie_word_embeddings: ``lm_head.weight`` is ``backbone.embeddings.weight``.
        intermediate_size: SSM channels ``D``.
        tree_scale: weight of the feature-tree scan (published 0.3; 0 = plain Mamba).
        tree_band: band width of the context graph (published 3).
    """

    vocab_size: int = 50280
    hidden_size: int = 768
    state_size: int = 16
    num_hidden_layers: int = 24
    layer_norm_epsilon: float = 1e-5
    pad_token_id: int | None = 0
    bos_token_id: int | None = 0
    eos_token_id: int | None = 0
    expand: int = 2
    conv_kernel: int = 4
    use_bias: bool = False
    use_conv_bias: bool = True
    hidden_act: str = "silu"
    initializer_range: float = 0.1
    residual_in_fp32: bool = True
    time_step_rank: int | str = "auto"
    time_step_scale: float = 1.0
    time_step_min: float = 0.001
    time_step_max: float = 0.1
    time_step_init_scheme: str = "random"
    time_step_floor: float = 1e-4
    rescale_prenorm_residual: bool = False
    tie_word_embeddings: bool = True
    intermediate_size: int | None = None
    tree_scale: float = 0.3
    tree_band: int = 3
    # Keys of a loaded config.json that this model does not use (kept so save_pretrained
    # round-trips them, e.g. "fused_add_norm", "pad_vocab_size_multiple").
    extra: dict[str, Any] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.time_step_rank == "auto":
            self.time_step_rank = math.ceil(self.hidden_size / 16)
        if self.intermediate_size is None:
            self.intermediate_size = int(self.expand * self.hidden_size)
        for name in ("vocab_size", "hidden_size", "state_size", "num_hidden_layers", "conv_kernel",
                     "time_step_rank", "intermediate_size", "tree_band"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GrootLConfig: {name} must be a positive int, got {value!r}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"GrootLConfig: hidden_act must be one of {sorted(_ACTIVATIONS)}, got "
                             f"{self.hidden_act!r}")
        if not isinstance(self.tree_scale, (int, float)) or not math.isfinite(self.tree_scale):
            raise ValueError(f"GrootLConfig: tree_scale must be a finite number, got "
                             f"{self.tree_scale!r}")

    @classmethod
    def from_dict(cls, config: dict[str, Any], **overrides: Any) -> GrootLConfig:
        """Build from a config.json dict (HF ``MambaConfig`` keys); unknown keys go to ``extra``.

        Args:
            config: the parsed config.json.
            **overrides: fields to replace (e.g. ``tree_scale=0.0``); unknown names raise.

        Returns:
            :class:`GrootLConfig`.
        """
        known = {f.name for f in fields(cls)} - {"extra"}
        bad = sorted(set(overrides) - known)
        if bad:
            raise TypeError(f"GrootLConfig: unknown override(s) {bad}; valid fields: {sorted(known)}")
        values = {k: v for k, v in config.items() if k in known}
        extra = {k: v for k, v in config.items() if k not in known and k != "extra"}
        if "hidden_size" not in values and "d_model" in config:
            raise ValueError("GrootLConfig: this config.json uses mamba_ssm's format (d_model, "
                             "n_layer); GrootL reads the Hugging Face format "
                             "(state-spaces/mamba-130m-hf style: hidden_size, num_hidden_layers)")
        values.update(overrides)
        return cls(**values, extra=extra)

    def to_dict(self) -> dict[str, Any]:
        """config.json content: HF ``MambaConfig`` keys (loadable by transformers as plain Mamba)
        plus ``tree_scale``/``tree_band``."""
        out = dict(self.extra)
        out.update({k: v for k, v in asdict(self).items() if k != "extra"})
        out["model_type"] = "mamba"
        out["architectures"] = ["MambaForCausalLM"]
        return out


# ----------------------------------------------------------------------------------------------
# Cache and outputs
# ----------------------------------------------------------------------------------------------


class GrootLCache:
    """Decoding state, shaped like ``transformers``' ``MambaCache`` plus the tree-2 state.

    Preallocated per layer and updated in place (tensor addresses never change):

    - ``conv_states[i]``: ``(B, D, K)`` last ``K`` inputs of the causal conv (model dtype);
    - ``ssm_states[i]``: ``(B, D, N)`` float32, ``h1`` = chain (plain Mamba) state;
    - ``tree_states[i]``: ``(B, D, N)`` float32, ``h2`` = tree-2 aggregate (reference 4.5).

    Example::

        cache = model.allocate_cache(batch_size=1)
        logits = model(prompt_ids, cache=cache).logits          # prefill (full tree algorithm)
        logits = model(next_ids[:, None], cache=cache).logits   # one-token step
        cache.reset()                                           # reuse for another prompt

    Args:
        config: the model's :class:`GrootLConfig`.
        batch_size: ``B``.
        dtype: dtype of the conv states (the model's dtype).
        device: where the states live.
    """

    def __init__(self, config: GrootLConfig, batch_size: int, dtype: torch.dtype = torch.float32,
                 device: torch.device | str | None = None) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"GrootLCache: batch_size must be >= 1, got {batch_size}")
        b, d, n, k = int(batch_size), config.intermediate_size, config.state_size, config.conv_kernel
        layers = config.num_hidden_layers
        self.batch_size = b
        self.conv_states = [torch.zeros(b, d, k, dtype=dtype, device=device) for _ in range(layers)]
        self.ssm_states = [torch.zeros(b, d, n, dtype=torch.float32, device=device)
                           for _ in range(layers)]
        self.tree_states = [torch.zeros(b, d, n, dtype=torch.float32, device=device)
                            for _ in range(layers)]
        self.seqlen_offset = 0
        self.context_lengths: list[int] | None = None

    def reset(self) -> None:
        """Zero every state in place and forget the processed tokens."""
        for t in (*self.conv_states, *self.ssm_states, *self.tree_states):
            t.zero_()
        self.seqlen_offset = 0
        self.context_lengths = None


@dataclass
class GrootLOutput:
    """Output of :meth:`GrootL.forward`.

    Attributes:
        logits: ``(B, L, vocab_size)`` float32.
        loss: next-token cross entropy (labels ``-100`` ignored) when ``labels`` were given.
        cache: the :class:`GrootLCache` that was used (updated in place), if any.
    """

    logits: Tensor
    loss: Tensor | None = None
    cache: GrootLCache | None = None


# ----------------------------------------------------------------------------------------------
# Blocks
# ----------------------------------------------------------------------------------------------


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
        self.conv1d = nn.Conv1d(d, d, kernel_size=k, groups=d, padding=k - 1,
                                bias=config.use_conv_bias)
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
        dt, bm, cm = torch.split(params, [self.time_step_rank, self.state_size, self.state_size],
                                 dim=-1)
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

    def forward(self, hidden_states: Tensor, context_lengths: list[int],
                cache: GrootLCache | None = None) -> Tensor:
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


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


class GrootL(nn.Module):
    """Mamba causal LM with GrootL's tree-scanning mixer (reference 4).

    ``state_dict()`` keys equal ``transformers.MambaForCausalLM``'s: ``backbone.embeddings.weight``,
    ``backbone.layers.{i}.norm.weight``, ``backbone.layers.{i}.mixer.{A_log, D, conv1d.weight,
    conv1d.bias, in_proj.weight, x_proj.weight, dt_proj.weight, dt_proj.bias, out_proj.weight}``,
    ``backbone.norm_f.weight``, ``lm_head.weight`` (tied to the embeddings by default).

    Args:
        config: :class:`GrootLConfig` (default: mamba-130m shapes, ``tree_scale=0.3``).
    """

    # Config values for keys a loaded config.json lacks (HF Mamba configs have no tree_scale).
    config_defaults: dict[str, Any] = {}

    def __init__(self, config: GrootLConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else GrootLConfig(**self.config_defaults)
        if not isinstance(self.config, GrootLConfig):
            raise TypeError(f"GrootL: config must be a GrootLConfig, got {type(config).__name__}")
        cfg = self.config
        self.backbone = GrootLBackbone(cfg)
        self.lm_head = nn.Linear(cfg.hidden_size, cfg.vocab_size, bias=False)
        if cfg.tie_word_embeddings:
            self.lm_head.weight = self.backbone.embeddings.weight
        self.apply(self._init_weights)

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """``MambaPreTrainedModel._init_weights`` (random models; checkpoints overwrite it)."""
        cfg = self.config
        if isinstance(module, GrootLMixer):
            std = cfg.time_step_rank ** -0.5 * cfg.time_step_scale
            if cfg.time_step_init_scheme == "constant":
                nn.init.constant_(module.dt_proj.weight, std)
            else:
                nn.init.uniform_(module.dt_proj.weight, -std, std)
            log_min, log_max = math.log(cfg.time_step_min), math.log(cfg.time_step_max)
            dt = torch.exp(torch.rand(cfg.intermediate_size) * (log_max - log_min) + log_min)
            dt = dt.clamp(min=cfg.time_step_floor)
            module.dt_proj.bias.copy_(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
            if module.in_proj.bias is not None:
                nn.init.zeros_(module.in_proj.bias)
            if module.out_proj.bias is not None:
                nn.init.zeros_(module.out_proj.bias)
            if cfg.rescale_prenorm_residual:
                nn.init.kaiming_uniform_(module.out_proj.weight, a=math.sqrt(5))
                module.out_proj.weight /= math.sqrt(cfg.num_hidden_layers)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, std=cfg.initializer_range)

    # ------------------------------------------------------------------------------------------
    # Forward
    # ------------------------------------------------------------------------------------------

    def allocate_cache(self, batch_size: int, dtype: torch.dtype | None = None,
                       device: torch.device | str | None = None) -> GrootLCache:
        """A zeroed :class:`GrootLCache` for ``batch_size`` sequences (model dtype/device)."""
        p = self.backbone.embeddings.weight
        return GrootLCache(self.config, batch_size, dtype=dtype or p.dtype, device=device or p.device)

    def _check_ids(self, input_ids: Tensor) -> None:
        if not isinstance(input_ids, Tensor):
            raise TypeError(f"GrootL: input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TypeError(f"GrootL: input_ids must be integer token ids, got {input_ids.dtype}")
        if input_ids.dim() != 2 or input_ids.shape[1] < 1:
            raise ValueError(f"GrootL: input_ids must be (B, L) with L >= 1, got "
                             f"{tuple(input_ids.shape)}")
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= self.config.vocab_size:
            raise ValueError(f"GrootL: token ids must lie in [0, {self.config.vocab_size}), got "
                             f"values in [{lo}, {hi}]")

    def forward(self, input_ids: Tensor, context_lengths=None, labels: Tensor | None = None,
                cache: GrootLCache | None = None, logits_to_keep: int = 0) -> GrootLOutput:
        """Logits for ``input_ids``; with a cache, a prefill (empty cache) or decoding steps.

        Args:
            input_ids: ``(B, L)`` token ids.
            context_lengths: per-sample context (prompt) lengths ``P`` that tree 2 builds its band
                graph over: ``None``, an int, or ``B`` ints / a ``(B,)`` tensor. ``None`` means the
                number of leading ``-100`` labels when ``labels`` are given, else the whole input
                (``P = L``). Ignored for decoding steps (the cache keeps the prefill's).
            labels: ``(B, L)`` targets (shifted inside: position ``t`` predicts ``labels[t + 1]``);
                ``-100`` is ignored.
            cache: a :class:`GrootLCache`; if it holds no tokens yet the input is the prompt
                (prefill), otherwise every input token is one decoding step.
            logits_to_keep: compute logits for the last this-many positions only (0: all); a
                prefill needs 1, which skips most of the ``lm_head`` work.

        Returns:
            :class:`GrootLOutput` with ``logits (B, L, vocab)`` float32.
        """
        self._check_ids(input_ids)
        batch, length = input_ids.shape
        if cache is not None and cache.batch_size != batch:
            raise ValueError(f"GrootL: the cache was allocated for batch size {cache.batch_size}, "
                             f"input_ids has {batch}; allocate a new cache or cache.reset()")
        if context_lengths is None and labels is not None:
            context_lengths = _leading_ignored(labels)
        if cache is not None and cache.seqlen_offset > 0:
            hidden = self._decode(input_ids, cache)
        else:
            ctx = normalize_context_lengths(context_lengths, batch, length)
            hidden = self.backbone.embeddings(input_ids)
            for layer in self.backbone.layers:
                hidden = layer(hidden, ctx, cache)
            if cache is not None:
                cache.seqlen_offset = length
                cache.context_lengths = ctx
        if logits_to_keep:
            if labels is not None:
                raise ValueError("GrootL: labels need the logits of every position; "
                                 "leave logits_to_keep at 0")
            hidden = hidden[:, -int(logits_to_keep):]
        hidden = self.backbone.norm_f(hidden)
        logits = self.lm_head(hidden.to(self.lm_head.weight.dtype)).float()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                                   labels[:, 1:].reshape(-1).to(logits.device), ignore_index=-100)
        return GrootLOutput(logits=logits, loss=loss, cache=cache)

    def _decode(self, input_ids: Tensor, cache: GrootLCache) -> Tensor:
        outs = []
        for t in range(input_ids.shape[1]):
            hidden = self.backbone.embeddings(input_ids[:, t])
            for layer in self.backbone.layers:
                hidden = layer.step(hidden, cache)
            cache.seqlen_offset += 1
            outs.append(hidden)
        return torch.stack(outs, dim=1)

    def prefill(self, input_ids: Tensor, cache: GrootLCache, context_lengths=None) -> Tensor:
        """Run the prompt through the full tree algorithm and fill ``cache`` (reset first).

        Returns:
            ``(B, vocab)`` float32 logits of the last prompt token.
        """
        cache.reset()
        return self(input_ids, context_lengths=context_lengths, cache=cache,
                    logits_to_keep=1).logits[:, -1]

    def step(self, input_ids: Tensor, cache: GrootLCache) -> Tensor:
        """One decoding step for ``input_ids`` of shape ``(B,)`` or ``(B, 1)``.

        Returns:
            ``(B, vocab)`` float32 logits.
        """
        if cache.seqlen_offset == 0:
            raise RuntimeError("GrootL.step: the cache is empty; call prefill(prompt_ids, cache) first")
        if isinstance(input_ids, Tensor) and input_ids.dim() == 1:
            input_ids = input_ids[:, None]
        return self(input_ids, cache=cache, logits_to_keep=1).logits[:, -1]

    # ------------------------------------------------------------------------------------------
    # Checkpoints (Hugging Face format: config.json + model.safetensors)
    # ------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, name_or_path: str | os.PathLike, *, revision: str | None = None,
                        cache_dir: str | os.PathLike | None = None, token: str | None = None,
                        local_files_only: bool = False, device: torch.device | str | None = None,
                        dtype: torch.dtype | None = None, map_location: torch.device | str | None = None,
                        strict: bool = True, **config_overrides: Any) -> GrootL:
        """Load a Hugging Face Mamba/GrootL checkpoint from a folder or a Hub repo id.

        The folder (or repo) holds ``config.json`` (HF ``MambaConfig`` keys; ``vocab_size`` is read
        from it) and ``model.safetensors`` (or a sharded ``model.safetensors.index.json``, or
        ``pytorch_model.bin``, read with ``torch.load(weights_only=True)``). ``lm_head.weight`` may
        be absent when tied. Repo ids go through ``huggingface_hub.snapshot_download``, so a cached
        snapshot works offline (``HF_HUB_OFFLINE=1``).

        Args:
            name_or_path: local folder or repo id (``"state-spaces/mamba-130m-hf"``).
            revision, cache_dir, token, local_files_only: passed to ``snapshot_download``.
            device: where to put the model (default CPU); ``map_location`` is an alias
                (huggingface_hub mixin spelling).
            dtype: parameter dtype (default: float32).
            strict: fail on missing / unexpected keys (shape mismatches always fail).
            **config_overrides: config fields to replace, e.g. ``tree_scale=0.0`` for plain Mamba.
                Keys absent from config.json take :attr:`config_defaults` first (``MambaLM``:
                ``tree_scale=0``), then the :class:`GrootLConfig` defaults.

        Returns:
            :class:`GrootL` in eval mode.

        Raises:
            OSError: the repo cannot be fetched (offline / unreachable) or the folder has no
                config or weights.
            ValueError: the weights do not match the config (names missing/unexpected keys and
                shape mismatches, e.g. a wrong ``vocab_size``).
        """
        folder = _resolve_folder(name_or_path, revision=revision, cache_dir=cache_dir, token=token,
                                 local_files_only=local_files_only)
        config_path = folder / CONFIG_NAME
        if not config_path.is_file():
            raise OSError(f"GrootL.from_pretrained: no {CONFIG_NAME} in {folder}")
        with open(config_path, encoding="utf-8") as f:
            raw = json.load(f)
        config = GrootLConfig.from_dict({**cls.config_defaults, **raw}, **config_overrides)
        state_dict = _load_weights(folder)
        model = cls(config)
        model.load_checkpoint(state_dict, strict=strict)
        if dtype is not None:
            model.to(dtype=dtype)
        device = device if device is not None else map_location
        if device is not None:
            model.to(device)
        return model.eval()

    def load_checkpoint(self, state_dict: dict[str, Tensor], strict: bool = True) -> None:
        """Load a ``MambaForCausalLM``-format state dict, failing clearly on any mismatch.

        Args:
            state_dict: key -> tensor (passed through :func:`checkpoint_filter_fn` first).
            strict: also fail on missing / unexpected keys (shape mismatches always fail).

        Raises:
            ValueError: naming the missing and unexpected keys and the shape mismatches.
        """
        state_dict = checkpoint_filter_fn(state_dict, self)
        expected = self.state_dict()
        tied = self.config.tie_word_embeddings
        if tied:
            # NOTE: tied checkpoints usually omit lm_head.weight; if present it is the same matrix.
            state_dict = {k: v for k, v in state_dict.items() if k != "lm_head.weight"}
        emb = state_dict.get("backbone.embeddings.weight")
        if emb is not None and emb.shape[0] != self.config.vocab_size:
            raise ValueError(
                f"GrootL: config.json says vocab_size={self.config.vocab_size} but the checkpoint's "
                f"backbone.embeddings.weight has {emb.shape[0]} rows; use the config.json that came "
                "with these weights (GrootL fine-tunes may resize the vocabulary, reference 4.7)")
        needed = {k for k in expected if not (tied and k == "lm_head.weight")}
        missing = sorted(needed - set(state_dict))
        unexpected = sorted(set(state_dict) - set(expected))
        mismatched = [f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(expected[k].shape)}"
                      for k, v in state_dict.items() if k in expected and v.shape != expected[k].shape]
        if not strict:
            missing, unexpected = [], []
        if missing or unexpected or mismatched:
            parts = []
            if missing:
                parts.append(f"missing keys ({len(missing)}): {_short(missing)}")
            if unexpected:
                parts.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
            if mismatched:
                parts.append(f"shape mismatches ({len(mismatched)}): {_short(mismatched)}")
            raise ValueError("GrootL: the checkpoint does not match the config: " + "; ".join(parts))
        self.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=False)

    def save_pretrained(self, save_directory: str | os.PathLike) -> Path:
        """Write ``config.json`` + ``model.safetensors`` (HF format; tied ``lm_head`` omitted).

        Returns:
            The folder path.
        """
        from safetensors.torch import save_file

        folder = Path(save_directory)
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / CONFIG_NAME, "w", encoding="utf-8") as f:
            json.dump(self.config.to_dict(), f, indent=2, sort_keys=True)
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in self.state_dict().items()
                   if not (self.config.tie_word_embeddings and k == "lm_head.weight")}
        save_file(tensors, str(folder / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})
        return folder

    def push_to_hub(self, repo_id: str, *, token: str | None = None, private: bool | None = None,
                    revision: str | None = None, commit_message: str = "Upload GrootL") -> Any:
        """Save to a temporary folder and upload it to ``repo_id`` (created if needed).

        Returns:
            huggingface_hub's ``CommitInfo``.
        """
        from huggingface_hub import HfApi

        api = HfApi(token=token)
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        with tempfile.TemporaryDirectory() as tmp:
            self.save_pretrained(tmp)
            return api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision,
                                     commit_message=commit_message, repo_type="model")


# ----------------------------------------------------------------------------------------------
# Checkpoint helpers
# ----------------------------------------------------------------------------------------------


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: GrootL | None = None
                         ) -> dict[str, Tensor]:
    """Map a foreign state dict onto GrootL's (= ``MambaForCausalLM``'s) keys; pure and idempotent.

    Unwraps ``{"model": ...}`` / ``{"state_dict": ...}`` / ``{"module": ...}``, renames
    ``backbone.embedding.`` (mamba_ssm naming) to ``backbone.embeddings.``, and, for a ``model`` with
    tied embeddings, fills an absent ``lm_head.weight`` with the embedding matrix (HF files omit it).
    """
    for wrapper in ("model", "state_dict", "module"):
        inner = state_dict.get(wrapper) if isinstance(state_dict, dict) else None
        if isinstance(inner, dict) and inner and all(isinstance(k, str) for k in inner):
            state_dict = inner
            break
    out = {}
    for k, v in state_dict.items():
        if k.startswith("backbone.embedding."):
            k = "backbone.embeddings." + k[len("backbone.embedding."):]
        out[k] = v
    tied = model is not None and model.config.tie_word_embeddings
    if tied and "lm_head.weight" not in out and "backbone.embeddings.weight" in out:
        out["lm_head.weight"] = out["backbone.embeddings.weight"]
    return out


def _short(items: list[str], limit: int = 8) -> str:
    return ", ".join(items[:limit]) + (f", ... ({len(items) - limit} more)" if len(items) > limit else "")


def _leading_ignored(labels: Tensor) -> list[int]:
    """Per sample, the number of leading ``-100`` labels (the prompt length)."""
    valid = labels != -100
    length = labels.shape[1]
    first = torch.where(valid.any(dim=1), valid.float().argmax(dim=1),
                        torch.full_like(valid[:, 0], length, dtype=torch.long))
    return [int(v) for v in first.tolist()]


def _resolve_folder(name_or_path, *, revision, cache_dir, token, local_files_only) -> Path:
    path = Path(name_or_path)
    if path.is_dir():
        return path
    name = str(name_or_path)
    if path.exists() or name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise OSError(f"GrootL.from_pretrained: {name!r} is not a folder with config.json and "
                      "model.safetensors, nor a Hub repo id like 'state-spaces/mamba-130m-hf'")
    from huggingface_hub import snapshot_download

    patterns = [CONFIG_NAME, "*.safetensors", SAFE_WEIGHTS_INDEX_NAME, PT_WEIGHTS_NAME,
                "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]
    try:
        return Path(snapshot_download(name, revision=revision, cache_dir=cache_dir, token=token,
                                      local_files_only=local_files_only, allow_patterns=patterns))
    except Exception as exc:  # offline, unreachable, unknown repo, auth: all reported the same way
        raise OSError(
            f"GrootL.from_pretrained: could not get {name!r} from the Hugging Face Hub and it is not "
            f"a local folder ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
            "Offline, only repos already in the Hub cache (HF_HUB_CACHE) load; otherwise pass a "
            "folder with config.json and model.safetensors.") from exc


def _load_weights(folder: Path) -> dict[str, Tensor]:
    from safetensors.torch import load_file

    if (folder / SAFE_WEIGHTS_NAME).is_file():
        return load_file(str(folder / SAFE_WEIGHTS_NAME), device="cpu")
    if (folder / SAFE_WEIGHTS_INDEX_NAME).is_file():
        with open(folder / SAFE_WEIGHTS_INDEX_NAME, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state_dict: dict[str, Tensor] = {}
        for shard in shards:
            state_dict.update(load_file(str(folder / shard), device="cpu"))
        return state_dict
    if (folder / PT_WEIGHTS_NAME).is_file():
        return torch.load(folder / PT_WEIGHTS_NAME, map_location="cpu", weights_only=True)
    present = sorted(p.name for p in folder.iterdir())
    raise OSError(f"GrootL.from_pretrained: no weights in {folder} (looked for {SAFE_WEIGHTS_NAME}, "
                  f"{SAFE_WEIGHTS_INDEX_NAME}, {PT_WEIGHTS_NAME}); found {present}")


class MambaLM(GrootL):
    """Plain Mamba: :class:`GrootL` whose config defaults to ``tree_scale=0`` when config.json does
    not set it (e.g. ``state-spaces/mamba-130m-hf``)."""

    config_defaults = {"tree_scale": 0.0}


# ----------------------------------------------------------------------------------------------
# Factories (zoo architectures)
# ----------------------------------------------------------------------------------------------


def grootl_130m(pretrained: bool = False, **kwargs: Any) -> GrootL:
    """GrootL on Mamba-130m (reference 4.1 shapes, ``tree_scale=0.3``), random weights.

    The published weights come from ``grootvl_core.zoo.load_model("grootl-130m")``.
    """
    if pretrained:
        raise ValueError("grootl_130m: the published GrootL weights are not on the Hub; load them "
                         "with grootvl_core.zoo.load_model('grootl-130m')")
    return GrootL(GrootLConfig(**kwargs))


def grootl_nano(pretrained: bool = False, **kwargs: Any) -> GrootL:
    """GrootL-nano: byte-level (vocab 258), hidden 128, 4 layers, state 8, ``tree_scale=0.3``: the
    size of the project's bundled fortunes model (``grootvl_core.zoo.load_model("grootl-nano-fortunes")``)."""
    if pretrained:
        raise ValueError("grootl_nano: the trained weights come from grootvl_core.zoo.load_model("
                         "'grootl-nano-fortunes')")
    defaults = dict(vocab_size=258, hidden_size=128, num_hidden_layers=4, state_size=8, expand=2,
                    conv_kernel=4, tree_scale=0.3, initializer_range=0.02, bos_token_id=256, eos_token_id=256,
                    pad_token_id=257)
    return GrootL(GrootLConfig(**{**defaults, **kwargs}))


def mamba_130m(pretrained: bool = False, **kwargs: Any) -> MambaLM:
    """Plain Mamba-130m (``tree_scale=0``); ``pretrained`` loads ``state-spaces/mamba-130m-hf``."""
    kwargs = {**MambaLM.config_defaults, **kwargs}
    if pretrained:
        return MambaLM.from_pretrained("state-spaces/mamba-130m-hf", **kwargs)
    return MambaLM(GrootLConfig(**kwargs))
