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

import contextlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from grootvl_core.weights.state_dict import check_state_dict, extract_state_dict
from grootvl_core.weights.unpickler import read_checkpoint

from .grootl_config import GrootLCache, GrootLConfig, GrootLOutput
from .grootl_mixer import GrootLBackbone, GrootLBlock, GrootLMixer, RMSNorm
from .grootl_tree import normalize_context_lengths

__all__ = [
    "GrootL",
    "GrootLBackbone",
    "GrootLBlock",
    "GrootLCache",
    "GrootLConfig",
    "GrootLMixer",
    "GrootLOutput",
    "MambaLM",
    "RMSNorm",
    "checkpoint_filter_fn",
    "grootl_130m",
    "grootl_nano",
    "mamba_130m",
]

CONFIG_NAME = "config.json"
SAFE_WEIGHTS_NAME = "model.safetensors"
SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json"
PT_WEIGHTS_NAME = "pytorch_model.bin"


# ----------------------------------------------------------------------------------------------
# Model
# ----------------------------------------------------------------------------------------------


class GrootL(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="grootvl",
    repo_url="https://github.com/EasonXiao-888/GrootVL",
    pipeline_tag="text-generation",
    tags=["text-generation", "grootvl"],
):
    """Mamba causal LM with GrootL's tree-scanning mixer (reference 4).

    ``state_dict()`` keys equal ``transformers.MambaForCausalLM``'s: ``backbone.embeddings.weight``,
    ``backbone.layers.{i}.norm.weight``, ``backbone.layers.{i}.mixer.{A_log, D, conv1d.weight,
    conv1d.bias, in_proj.weight, x_proj.weight, dt_proj.weight, dt_proj.bias, out_proj.weight}``,
    ``backbone.norm_f.weight``, ``lm_head.weight`` (tied to the embeddings by default).

    Hub folders (``from_pretrained`` / ``save_pretrained`` / ``push_to_hub``) come from
    huggingface_hub's ``PyTorchModelHubMixin``; this class overrides only what the Hugging Face
    Mamba format needs: ``config.json`` holds ``MambaConfig`` keys (not the ``__init__`` arguments),
    the tied ``lm_head.weight`` is not saved, and loading accepts ``MambaForCausalLM`` files
    (``model.safetensors``, a sharded ``model.safetensors.index.json`` in a folder, or
    ``pytorch_model.bin``) through :func:`checkpoint_filter_fn` and a strict key diff.

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
            std = cfg.time_step_rank**-0.5 * cfg.time_step_scale
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

    def allocate_cache(
        self, batch_size: int, dtype: torch.dtype | None = None, device: torch.device | str | None = None
    ) -> GrootLCache:
        """A zeroed :class:`GrootLCache` for ``batch_size`` sequences (model dtype/device)."""
        p = self.backbone.embeddings.weight
        return GrootLCache(self.config, batch_size, dtype=dtype or p.dtype, device=device or p.device)

    def _check_ids(self, input_ids: Tensor) -> None:
        if not isinstance(input_ids, Tensor):
            raise TypeError(f"GrootL: input_ids must be a torch.Tensor, got {type(input_ids).__name__}")
        if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
            raise TypeError(f"GrootL: input_ids must be integer token ids, got {input_ids.dtype}")
        if input_ids.dim() != 2 or input_ids.shape[1] < 1:
            raise ValueError(f"GrootL: input_ids must be (B, L) with L >= 1, got {tuple(input_ids.shape)}")
        lo, hi = int(input_ids.min()), int(input_ids.max())
        if lo < 0 or hi >= self.config.vocab_size:
            raise ValueError(f"GrootL: token ids must lie in [0, {self.config.vocab_size}), got values in [{lo}, {hi}]")

    def forward(
        self,
        input_ids: Tensor,
        context_lengths=None,
        labels: Tensor | None = None,
        cache: GrootLCache | None = None,
        logits_to_keep: int = 0,
    ) -> GrootLOutput:
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
            raise ValueError(
                f"GrootL: the cache was allocated for batch size {cache.batch_size}, "
                f"input_ids has {batch}; allocate a new cache or cache.reset()"
            )
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
                raise ValueError("GrootL: labels need the logits of every position; leave logits_to_keep at 0")
            hidden = hidden[:, -int(logits_to_keep) :]
        hidden = self.backbone.norm_f(hidden)
        logits = self.lm_head(hidden.to(self.lm_head.weight.dtype)).float()
        loss = None
        if labels is not None:
            loss = F.cross_entropy(
                logits[:, :-1].reshape(-1, logits.shape[-1]),
                labels[:, 1:].reshape(-1).to(logits.device),
                ignore_index=-100,
            )
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
        return self(input_ids, context_lengths=context_lengths, cache=cache, logits_to_keep=1).logits[:, -1]

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
    # Checkpoints (Hugging Face Mamba format: config.json + model.safetensors), on the Hub mixin
    # ------------------------------------------------------------------------------------------

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, **kwargs: Any) -> GrootL:
        """Load a Hugging Face Mamba/GrootL checkpoint from a folder or a Hub repo id (the mixin's).

        ``config.json`` holds HF ``MambaConfig`` keys (``vocab_size`` is read from it); keys absent
        from it take :attr:`config_defaults` first (``MambaLM``: ``tree_scale=0``), then the
        :class:`GrootLConfig` defaults. A cached Hub snapshot works offline (``HF_HUB_OFFLINE=1``).

        Args:
            pretrained_model_name_or_path: local folder or repo id (``"state-spaces/mamba-130m-hf"``).
            **kwargs: the mixin's (``revision``, ``cache_dir``, ``token``, ``local_files_only``,
                ``force_download``, ``map_location``, ``strict`` (default True: fail on missing /
                unexpected keys; shape mismatches always fail)), plus ``device`` (alias of
                ``map_location``), ``dtype``, and config fields to replace, e.g. ``tree_scale=0.0``.

        Returns:
            :class:`GrootL` in eval mode.

        Raises:
            OSError: the repo cannot be fetched (offline / unreachable) or the folder has no
                config or weights.
            ValueError: the weights do not match the config (a ``CheckpointError`` naming missing /
                unexpected keys and shape mismatches, e.g. a wrong ``vocab_size``).
        """
        name = str(pretrained_model_name_or_path)
        if os.path.isdir(name):
            return super().from_pretrained(name, **kwargs)
        if os.path.exists(name) or name.startswith((".", "/", "~")) or name.count("/") > 1:
            raise OSError(
                f"GrootL.from_pretrained: {name!r} is not a folder with config.json and "
                "model.safetensors, nor a Hub repo id like 'state-spaces/mamba-130m-hf'"
            )
        try:
            return super().from_pretrained(name, **kwargs)
        except OSError as exc:  # offline, unreachable, unknown repo, auth: all reported the same way
            raise OSError(
                f"GrootL.from_pretrained: could not get {name!r} from the Hugging Face Hub and it is not "
                f"a local folder ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}). "
                "Offline, only repos already in the Hub cache (HF_HUB_CACHE) load; otherwise pass a "
                "folder with config.json and model.safetensors."
            ) from exc

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision: str | None,
        cache_dir: str | os.PathLike | None,
        force_download: bool,
        local_files_only: bool,
        token: str | bool | None,
        config: Any = None,
        map_location: torch.device | str = "cpu",
        strict: bool = True,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        **config_overrides: Any,
    ) -> GrootL:
        """The mixin's hook: ``config`` is the parsed config.json (MambaConfig keys), not init kwargs."""
        if not isinstance(config, dict):
            raise OSError(f"GrootL.from_pretrained: no {CONFIG_NAME} in {model_id}")
        if isinstance(config.get("config"), dict):  # NOTE: a folder the plain mixin wrote ({"config": {...}})
            config = config["config"]
        cfg = GrootLConfig.from_dict({**cls.config_defaults, **config}, **config_overrides)
        # NOTE: the mixin prints "Loading weights from local directory"; GrootL never printed.
        with contextlib.redirect_stdout(io.StringIO()):
            model = super()._from_pretrained(
                model_id=model_id,
                revision=revision,
                cache_dir=cache_dir,
                force_download=force_download,
                local_files_only=local_files_only,
                token=token,
                config=cfg,
                map_location="cpu",
                strict=strict,
            )
        if dtype is not None:
            model.to(dtype=dtype)
        model.to(device if device is not None else map_location)
        return model.eval()

    @classmethod
    def _load_as_safetensor(cls, model: GrootL, model_file: str, map_location: str, strict: bool) -> GrootL:
        """The mixin's file hook: read the weights beside ``model_file`` and load them strictly."""
        model.load_checkpoint(_read_weights(Path(model_file).parent), strict=strict)
        return model.eval()

    _load_as_pickle = _load_as_safetensor  # pytorch_model.bin: read with the restricted loader too

    def load_checkpoint(self, state_dict: dict[str, Tensor], strict: bool = True) -> None:
        """Load a ``MambaForCausalLM``-format state dict, failing clearly on any mismatch.

        Args:
            state_dict: key -> tensor (passed through :func:`checkpoint_filter_fn` first).
            strict: also fail on missing / unexpected keys (shape mismatches always fail).

        Raises:
            ValueError: a ``CheckpointError`` naming the missing and unexpected keys and the shape
                mismatches.
        """
        state_dict = checkpoint_filter_fn(state_dict, self)
        emb = state_dict.get("backbone.embeddings.weight")
        if emb is not None and emb.shape[0] != self.config.vocab_size:
            raise ValueError(
                f"GrootL: config.json says vocab_size={self.config.vocab_size} but the checkpoint's "
                f"backbone.embeddings.weight has {emb.shape[0]} rows; use the config.json that came "
                "with these weights (GrootL fine-tunes may resize the vocabulary, reference 4.7)"
            )
        check_state_dict(self, state_dict, "GrootL checkpoint", strict=strict)
        expected = self.state_dict()
        self.load_state_dict({k: v for k, v in state_dict.items() if k in expected}, strict=False)

    def _save_pretrained(self, save_directory: Path) -> None:
        """The mixin's hook: ``config.json`` (HF ``MambaConfig`` keys) + ``model.safetensors``
        (tied ``lm_head`` omitted, as Hugging Face Mamba files)."""
        from safetensors.torch import save_file

        with open(save_directory / CONFIG_NAME, "w", encoding="utf-8") as f:
            json.dump(self.config.to_dict(), f, indent=2, sort_keys=True)
        tensors = {
            k: v.detach().cpu().contiguous().clone()
            for k, v in self.state_dict().items()
            if not (self.config.tie_word_embeddings and k == "lm_head.weight")
        }
        save_file(tensors, str(save_directory / SAFE_WEIGHTS_NAME), metadata={"format": "pt"})

    def save_pretrained(self, save_directory: str | os.PathLike, **kwargs: Any) -> Any:
        """The mixin's ``save_pretrained``; returns the folder (the commit URL with ``push_to_hub=True``)."""
        result = super().save_pretrained(save_directory, **kwargs)
        return result if kwargs.get("push_to_hub") else Path(save_directory)


# ----------------------------------------------------------------------------------------------
# Checkpoint helpers
# ----------------------------------------------------------------------------------------------


def checkpoint_filter_fn(state_dict: dict[str, Tensor], model: GrootL | None = None) -> dict[str, Tensor]:
    """Map a foreign state dict onto GrootL's (= ``MambaForCausalLM``'s) keys; pure and idempotent.

    Unwraps training containers with :func:`grootvl_core.weights.extract_state_dict` (``model``,
    ``state_dict``, ``module``), renames ``backbone.embedding.`` (mamba_ssm naming) to
    ``backbone.embeddings.``, and, for a ``model`` with tied embeddings, fills an absent
    ``lm_head.weight`` with the embedding matrix (HF files omit it).
    """
    state_dict = extract_state_dict(state_dict)
    out = {}
    for k, v in state_dict.items():
        if k.startswith("backbone.embedding."):
            k = "backbone.embeddings." + k[len("backbone.embedding.") :]
        out[k] = v
    tied = model is not None and model.config.tie_word_embeddings
    if tied and "backbone.embeddings.weight" in out:
        # NOTE: tied checkpoints usually omit lm_head.weight; if present it is the same matrix.
        out["lm_head.weight"] = out["backbone.embeddings.weight"]
    return out


def _read_weights(folder: Path) -> dict[str, Tensor]:
    """The weights of a Hugging Face folder: model.safetensors, its sharded index, or pytorch_model.bin."""
    if (folder / SAFE_WEIGHTS_NAME).is_file():
        return read_checkpoint(folder / SAFE_WEIGHTS_NAME)
    if (folder / SAFE_WEIGHTS_INDEX_NAME).is_file():
        with open(folder / SAFE_WEIGHTS_INDEX_NAME, encoding="utf-8") as f:
            shards = sorted(set(json.load(f)["weight_map"].values()))
        state_dict: dict[str, Tensor] = {}
        for shard in shards:
            state_dict.update(read_checkpoint(folder / shard))
        return state_dict
    if (folder / PT_WEIGHTS_NAME).is_file():
        return read_checkpoint(folder / PT_WEIGHTS_NAME)
    present = sorted(p.name for p in folder.iterdir())
    raise OSError(
        f"GrootL.from_pretrained: no weights in {folder} (looked for {SAFE_WEIGHTS_NAME}, "
        f"{SAFE_WEIGHTS_INDEX_NAME}, {PT_WEIGHTS_NAME}); found {present}"
    )


def _leading_ignored(labels: Tensor) -> list[int]:
    """Per sample, the number of leading ``-100`` labels (the prompt length)."""
    valid = labels != -100
    length = labels.shape[1]
    first = torch.where(
        valid.any(dim=1), valid.float().argmax(dim=1), torch.full_like(valid[:, 0], length, dtype=torch.long)
    )
    return [int(v) for v in first.tolist()]


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
        raise ValueError(
            "grootl_130m: the published GrootL weights are not on the Hub; load them "
            "with grootvl_core.zoo.load_model('grootl-130m')"
        )
    return GrootL(GrootLConfig(**kwargs))


def grootl_nano(pretrained: bool = False, **kwargs: Any) -> GrootL:
    """GrootL-nano: byte-level (vocab 258), hidden 128, 4 layers, state 8, ``tree_scale=0.3``: the
    size of the project's bundled fortunes model (``grootvl_core.zoo.load_model("grootl-nano-fortunes")``)."""
    if pretrained:
        raise ValueError(
            "grootl_nano: the trained weights come from grootvl_core.zoo.load_model('grootl-nano-fortunes')"
        )
    defaults = dict(
        vocab_size=258,
        hidden_size=128,
        num_hidden_layers=4,
        state_size=8,
        expand=2,
        conv_kernel=4,
        tree_scale=0.3,
        initializer_range=0.02,
        bos_token_id=256,
        eos_token_id=256,
        pad_token_id=257,
    )
    return GrootL(GrootLConfig(**{**defaults, **kwargs}))


def mamba_130m(pretrained: bool = False, **kwargs: Any) -> MambaLM:
    """Plain Mamba-130m (``tree_scale=0``); ``pretrained`` loads ``state-spaces/mamba-130m-hf``."""
    kwargs = {**MambaLM.config_defaults, **kwargs}
    if pretrained:
        return MambaLM.from_pretrained("state-spaces/mamba-130m-hf", **kwargs)
    return MambaLM(GrootLConfig(**kwargs))
