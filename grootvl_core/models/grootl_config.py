"""GrootL's configuration (``transformers.MambaConfig``'s config.json keys), decoding cache and output.

Reference: ``reference-grootvl.md`` sections 4.1 (config of ``state-spaces/mamba-130m-hf``) and 4.5
(cached decoding with the chain state ``h1`` and the tree-2 state ``h2``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["GrootLCache", "GrootLConfig", "GrootLOutput"]

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
        for name in (
            "vocab_size",
            "hidden_size",
            "state_size",
            "num_hidden_layers",
            "conv_kernel",
            "time_step_rank",
            "intermediate_size",
            "tree_band",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GrootLConfig: {name} must be a positive int, got {value!r}")
        if self.hidden_act not in _ACTIVATIONS:
            raise ValueError(f"GrootLConfig: hidden_act must be one of {sorted(_ACTIVATIONS)}, got {self.hidden_act!r}")
        if not isinstance(self.tree_scale, (int, float)) or not math.isfinite(self.tree_scale):
            raise ValueError(f"GrootLConfig: tree_scale must be a finite number, got {self.tree_scale!r}")

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
            raise ValueError(
                "GrootLConfig: this config.json uses mamba_ssm's format (d_model, "
                "n_layer); GrootL reads the Hugging Face format "
                "(state-spaces/mamba-130m-hf style: hidden_size, num_hidden_layers)"
            )
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

    def __init__(
        self,
        config: GrootLConfig,
        batch_size: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        if int(batch_size) < 1:
            raise ValueError(f"GrootLCache: batch_size must be >= 1, got {batch_size}")
        b, d, n, k = int(batch_size), config.intermediate_size, config.state_size, config.conv_kernel
        layers = config.num_hidden_layers
        self.batch_size = b
        self.conv_states = [torch.zeros(b, d, k, dtype=dtype, device=device) for _ in range(layers)]
        self.ssm_states = [torch.zeros(b, d, n, dtype=torch.float32, device=device) for _ in range(layers)]
        self.tree_states = [torch.zeros(b, d, n, dtype=torch.float32, device=device) for _ in range(layers)]
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
