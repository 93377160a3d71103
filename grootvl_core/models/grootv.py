"""GrootV: the tree-topology vision backbone of GrootVL (reference-grootvl.md section 3).

Paper: "GrootVL: Tree Topology is All You Need in State Space Model", Xiao et al., NeurIPS 2024,
https://arxiv.org/abs/2406.02395. Original code and ImageNet-1k weights: EasonXiao-888/GrootVL
(``GrootV/classification/models/grootv.py``); the weights are Google-Drive files, fetched and
converted by ``grootvl_core.zoo``, never by this module.

Module names mirror the published model, so ``state_dict()`` keys and shapes equal the official
checkpoints (Appendix A for GrootV-T, 3.4 for S/B) and those load without renaming; the
``nn.Sequential`` wrappers around LayerNorms exist only to reproduce the key indices
(``.0`` / ``.1``).
The interface is timm's (``forward_features``, ``forward_head``, ``forward_intermediates``,
``feature_info``), and the variants are registered with timm: ``timm.create_model("grootv_tiny")``.
Published bugs fixed (section 6): ``post_norm=True`` works (6.6); ``no_weight_decay`` honours the
``A_logs`` / ``Ds`` flags the published optimizer ignored (6.21).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from huggingface_hub import PyTorchModelHubMixin
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import DropPath, Mlp, trunc_normal_
from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from timm.models._builder import resolve_pretrained_cfg
from timm.models._features import feature_take_indices
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from grootvl_core.weights.state_dict import unwrap_state_dict

from ..data.fashion_mnist import FASHION_MNIST_MEAN, FASHION_MNIST_STD
from .tree_ssm import SpanningTree, TreeSSM

__all__ = ["GrootV", "checkpoint_filter_fn", "grootv_nano", "grootv_tiny", "grootv_small", "grootv_base", "test_grootv"]


class _ToChannelsLast(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 2, 3, 1)


class _ToChannelsFirst(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return x.permute(0, 3, 1, 2)


def _layer_norm(dim: int, in_format: str, out_format: str) -> nn.Sequential:
    """LayerNorm(eps 1e-6) wrapped like the published ``build_norm_layer`` (keys ``.0``/``.1``)."""
    layers: list[nn.Module] = []
    if in_format == "channels_first":
        layers.append(_ToChannelsLast())
    layers.append(nn.LayerNorm(dim, eps=1e-6))
    if out_format == "channels_first":
        layers.append(_ToChannelsFirst())
    return nn.Sequential(*layers)


class StemLayer(nn.Module):
    """Two stride-2 3x3 convs, ``(B, in_chans, H, W) -> (B, H/4, W/4, C)`` channels-last (3.2)."""

    def __init__(self, in_chans: int, out_chans: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_chans, out_chans // 2, kernel_size=3, stride=2, padding=1)
        self.norm1 = _layer_norm(out_chans // 2, "channels_first", "channels_first")
        self.act = nn.GELU()
        self.conv2 = nn.Conv2d(out_chans // 2, out_chans, kernel_size=3, stride=2, padding=1)
        self.norm2 = _layer_norm(out_chans, "channels_first", "channels_last")

    def forward(self, x: Tensor) -> Tensor:
        return self.norm2(self.conv2(self.act(self.norm1(self.conv1(x)))))


def conv_on_channels_last(conv: nn.Conv2d, x: Tensor) -> Tensor:
    """``conv`` over a channels-last ``(B, H, W, C)`` tensor, returned as ``(B, C', H', W')`` (in
    channels_last memory).

    The permuted input makes oneDNN run in channels_last, and PyTorch then reorders the contiguous
    weight to channels_last on every call: for GrootV-T's 320->640 downsample that reorder costs
    more than the convolution (4 of 6 ms on one CPU thread). Without autograd the reordered weight
    is kept and reused until the weight changes (in place, or moved to another device or dtype).
    """
    w = conv.weight
    if torch.is_grad_enabled() and w.requires_grad:
        return conv(x.permute(0, 3, 1, 2))
    key = (w._version, w.data_ptr(), w.device, w.dtype)
    cached = conv.__dict__.get("_channels_last_weight")
    if cached is None or cached[0] != key:
        cached = (key, w.detach().contiguous(memory_format=torch.channels_last))
        conv.__dict__["_channels_last_weight"] = cached  # not a buffer: never saved or moved
    return conv._conv_forward(x.permute(0, 3, 1, 2), cached[1], conv.bias)


class DownsampleLayer(nn.Module):
    """Stride-2 3x3 conv (no bias) doubling channels, channels-last in and out (3.2)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, kernel_size=3, stride=2, padding=1, bias=False)
        self.norm = _layer_norm(2 * channels, "channels_first", "channels_last")

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(conv_on_channels_last(self.conv, x))


class GrootVLayer(nn.Module):
    """One residual block: ``x + DropPath(TreeSSM(norm1(x)))``, ``x + DropPath(mlp(norm2(x)))``.

    Args:
        channels: block width ``C``.
        mlp_ratio: MLP hidden width ``mlp_ratio * C``.
        drop: dropout inside the MLP.
        drop_path: stochastic depth rate.
        layer_scale: if set, per-channel residual scales ``gamma1`` / ``gamma2`` with this init.
        post_norm: normalise after the mixer / MLP instead of before
            (``x + DropPath(norm1(f(x)))``).
        scan_order: ``"tree"`` or ``"raster"`` (see :class:`TreeSSM`).
    """

    def __init__(
        self,
        channels: int,
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        drop_path: float = 0.0,
        layer_scale: float | None = None,
        post_norm: bool = False,
        scan_order: str = "tree",
    ):
        super().__init__()
        self.post_norm = post_norm
        self.norm1 = _layer_norm(channels, "channels_last", "channels_last")
        self.TreeSSM = TreeSSM(d_model=channels, scan_order=scan_order)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = _layer_norm(channels, "channels_last", "channels_last")
        self.mlp = Mlp(channels, int(channels * mlp_ratio), act_layer=nn.GELU, drop=drop)
        self.layer_scale = layer_scale is not None
        if self.layer_scale:
            self.gamma1 = nn.Parameter(layer_scale * torch.ones(channels))
            self.gamma2 = nn.Parameter(layer_scale * torch.ones(channels))

    def forward(self, x: Tensor, tree: SpanningTree | None = None) -> tuple[Tensor, SpanningTree]:
        """``(B, H, W, C) -> ((B, H, W, C), tree used by the mixer)``."""
        if self.post_norm:
            mixed, tree = self.TreeSSM(x, tree, return_tree=True)
            mixed = self.norm1(mixed)
        else:
            mixed, tree = self.TreeSSM(self.norm1(x), tree, return_tree=True)
        if self.layer_scale:
            mixed = self.gamma1 * mixed
        x = x + self.drop_path(mixed)
        mlp = self.norm2(self.mlp(x)) if self.post_norm else self.mlp(self.norm2(x))
        if self.layer_scale:
            mlp = self.gamma2 * mlp
        return x + self.drop_path(mlp), tree


class GrootVBlock(nn.Module):
    """One stage: ``depth`` layers, a LayerNorm, then (except the last stage) a downsample.

    Args:
        channels: stage width.
        depth: number of :class:`GrootVLayer`.
        downsample: end with a :class:`DownsampleLayer`.
        drop_path: per-layer stochastic depth rates (length ``depth``).
        tree_per_stage: the first layer builds the spanning tree and the others reuse it
            (``depth - 1`` fewer trees); the published weights were trained with one tree per layer.
        mlp_ratio, drop, layer_scale, post_norm, scan_order: as :class:`GrootVLayer`.
    """

    def __init__(
        self,
        channels: int,
        depth: int,
        downsample: bool,
        drop_path: Sequence[float],
        mlp_ratio: float = 4.0,
        drop: float = 0.0,
        layer_scale: float | None = None,
        post_norm: bool = False,
        tree_per_stage: bool = False,
        scan_order: str = "tree",
    ):
        super().__init__()
        self.tree_per_stage = tree_per_stage
        self.grad_checkpointing = False
        self.blocks = nn.ModuleList(
            [
                GrootVLayer(channels, mlp_ratio, drop, drop_path[i], layer_scale, post_norm, scan_order)
                for i in range(depth)
            ]
        )
        self.norm = _layer_norm(channels, "channels_last", "channels_last")
        self.downsample = DownsampleLayer(channels) if downsample else None

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(B, H, W, C) -> (next stage input, stage output)``; the next stage input is
        ``(B, H/2, W/2, 2C)`` after the downsample, or the stage output in the last stage."""
        tree = None
        for blk in self.blocks:
            if self.grad_checkpointing and x.requires_grad and not torch.jit.is_scripting():
                x, tree = checkpoint(blk, x, tree, use_reentrant=False)
            else:
                x, tree = blk(x, tree)
            if not self.tree_per_stage:
                tree = None
        x = self.norm(x)
        out = x
        if self.downsample is not None:
            x = self.downsample(x)
        return x, out


class GrootV(
    nn.Module,
    PyTorchModelHubMixin,
    library_name="grootvl",
    repo_url="https://github.com/EasonXiao-888/GrootVL",
    tags=["image-classification", "grootvl"],
):
    """GrootV backbone and ImageNet classifier (reference 3.1-3.3).

    Args:
        channels: stem width ``C``; stage ``s`` has ``C * 2**s`` channels (80 / 96 / 128 for
            T / S / B).
        depths: layers per stage (``[2, 2, 9, 2]`` for T, ``[2, 2, 13, 2]`` for S and B).
        num_classes: classifier outputs (0 for no classifier).
        in_chans: input image channels.
        mlp_ratio: MLP expansion in every layer.
        drop_rate: dropout after the stem and inside the MLPs.
        drop_path_rate: stochastic depth, linearly increasing over all layers.
        cls_scale: width of the 1x1 ``conv_head`` relative to the last stage (1.5).
        layer_scale: optional residual layer-scale init (None in the published models).
        post_norm: post-norm layers (False in the published models).
        tree_per_stage: build one spanning tree per stage instead of one per layer.
        scan_order: ``"tree"`` (GrootV) or ``"raster"``: every layer scans the row-major chain
            of pixels instead (the tree-vs-raster ablation; see :class:`TreeSSM`).

    Keyword arguments are JSON-serialisable, so ``save_pretrained`` writes them to ``config.json``.
    """

    def __init__(
        self,
        channels: int = 80,
        depths: Sequence[int] = (2, 2, 9, 2),
        num_classes: int = 1000,
        in_chans: int = 3,
        mlp_ratio: float = 4.0,
        drop_rate: float = 0.0,
        drop_path_rate: float = 0.1,
        cls_scale: float = 1.5,
        layer_scale: float | None = None,
        post_norm: bool = False,
        tree_per_stage: bool = False,
        scan_order: str = "tree",
    ):
        super().__init__()
        depths = [int(d) for d in depths]
        if int(channels) < 2 or int(channels) % 2:
            raise ValueError(f"GrootV: channels must be an even integer >= 2 (the stem halves it), got {channels}")
        if not depths or any(d < 1 for d in depths):
            raise ValueError(f"GrootV: depths must be a non-empty list of positive ints, got {depths}")
        if int(num_classes) < 0 or int(in_chans) < 1:
            raise ValueError(
                f"GrootV: need num_classes >= 0 and in_chans >= 1, got num_classes={num_classes}, in_chans={in_chans}"
            )
        self.num_classes = int(num_classes)
        self.in_chans = int(in_chans)
        self.depths = depths
        self.num_levels = len(depths)
        self.channels = int(channels)
        self.tree_per_stage = bool(tree_per_stage)
        self.scan_order = scan_order
        self.num_features = self.channels * 2 ** (self.num_levels - 1)
        self.head_hidden_size = int(self.num_features * cls_scale)
        self.drop_rate = drop_rate

        self.patch_embed = StemLayer(self.in_chans, self.channels)
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = torch.linspace(0, drop_path_rate, sum(depths), device="cpu").tolist()
        self.levels = nn.ModuleList()
        self.feature_info = []
        for i, depth in enumerate(depths):
            width = self.channels * 2**i
            self.levels.append(
                GrootVBlock(
                    width,
                    depth,
                    downsample=i < self.num_levels - 1,
                    drop_path=dpr[sum(depths[:i]) : sum(depths[: i + 1])],
                    mlp_ratio=mlp_ratio,
                    drop=drop_rate,
                    layer_scale=layer_scale,
                    post_norm=post_norm,
                    tree_per_stage=self.tree_per_stage,
                    scan_order=scan_order,
                )
            )
            self.feature_info.append(dict(num_chs=width, reduction=4 * 2**i, module=f"levels.{i}"))

        self.conv_head = nn.Sequential(
            nn.Conv2d(self.num_features, self.head_hidden_size, kernel_size=1, bias=False),
            nn.Sequential(nn.BatchNorm2d(self.head_hidden_size)),
            nn.GELU(),
        )
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.head = nn.Linear(self.head_hidden_size, self.num_classes) if self.num_classes > 0 else nn.Identity()
        self.apply(_init_weights)

    # -- timm interface --------------------------------------------------------------------------

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Parameter-name patterns (fnmatch, as timm's optimizer factory reads them) to exclude from
        weight decay: the SSM's ``A_logs`` and ``Ds`` (fixes published bug 6.21)."""
        return {"*.A_logs", "*.Ds"}

    @torch.jit.ignore
    def group_matcher(self, coarse: bool = False) -> dict:
        return dict(
            stem=r"^patch_embed",
            blocks=r"^levels\.(\d+)"
            if coarse
            else [
                (r"^levels\.(\d+)\.blocks\.(\d+)", None),
                (r"^levels\.(\d+)\.norm", (99999,)),
                (r"^levels\.(\d+)\.downsample", (99999,)),
            ],
        )

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each layer in the backward pass (trees are rebuilt too)."""
        for level in self.levels:
            level.grad_checkpointing = enable

    @torch.jit.ignore
    def get_classifier(self) -> nn.Module:
        return self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """Replace the final Linear by a fresh one with ``num_classes`` outputs (0: Identity)."""
        if global_pool not in (None, "avg"):
            raise ValueError(f"GrootV.reset_classifier: only global_pool='avg' is supported, got {global_pool!r}")
        self.num_classes = int(num_classes)
        self.head = nn.Linear(self.head_hidden_size, self.num_classes) if self.num_classes > 0 else nn.Identity()
        if isinstance(self.head, nn.Linear):
            _init_weights(self.head)

    def _check_input(self, x: Tensor) -> None:
        if not isinstance(x, Tensor) or x.dim() != 4 or x.shape[1] != self.in_chans:
            shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
            raise ValueError(f"GrootV: expected images (B, {self.in_chans}, H, W), got {shape}")

    def forward_intermediates(
        self,
        x: Tensor,
        indices: int | Sequence[int] | None = None,
        norm: bool = False,
        stop_early: bool = False,
        output_fmt: str = "NCHW",
        intermediates_only: bool = False,
    ) -> list[Tensor] | tuple[Tensor, list[Tensor]]:
        """Stage outputs for dense heads (each after its stage LayerNorm, before downsampling).

        Args:
            x: ``(B, in_chans, H, W)`` images.
            indices: stages to return: None (all), an int ``n`` (the last ``n``), or a list.
            norm: accepted for timm compatibility; every stage output is already normalised.
            stop_early: stop after the last requested stage.
            output_fmt: ``"NCHW"`` (channels-first, default) or ``"NHWC"``.
            intermediates_only: return only the list.

        Returns:
            list of ``(B, C_s, H/2**(s+2), W/2**(s+2))`` tensors (``NCHW``), preceded by the final
            ``forward_features`` output (channels-last) unless ``intermediates_only``.
        """
        if output_fmt not in ("NCHW", "NHWC"):
            raise ValueError(f"GrootV.forward_intermediates: output_fmt must be 'NCHW' or 'NHWC', got {output_fmt!r}")
        self._check_input(x)
        take_indices, max_index = feature_take_indices(len(self.levels), indices)
        x = self.pos_drop(self.patch_embed(x))
        levels = self.levels[: max_index + 1] if stop_early else self.levels
        intermediates = []
        for i, level in enumerate(levels):
            x, out = level(x)
            if i in take_indices:
                intermediates.append(out.permute(0, 3, 1, 2).contiguous() if output_fmt == "NCHW" else out)
        if intermediates_only:
            return intermediates
        return out, intermediates

    def prune_intermediate_layers(
        self, indices: int | Sequence[int] = 1, prune_norm: bool = False, prune_head: bool = True
    ) -> list[int]:
        """Drop the stages after the last requested one (and the head); returns the indices."""
        take_indices, max_index = feature_take_indices(len(self.levels), indices)
        self.levels = self.levels[: max_index + 1]
        self.levels[-1].downsample = None
        self.feature_info = self.feature_info[: max_index + 1]
        if prune_head:
            self.num_features = self.feature_info[-1]["num_chs"]
            self.conv_head = nn.Identity()
            self.head_hidden_size = self.num_features
            self.reset_classifier(0)
        return take_indices

    def forward_features(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W) -> (B, H/2**(n+1), W/2**(n+1), C * 2**(n-1))`` channels-last,
        the normalised output of the last stage (``n`` stages)."""
        self._check_input(x)
        x = self.pos_drop(self.patch_embed(x))
        for level in self.levels:
            x, out = level(x)
        return out

    def forward_head(self, x: Tensor, pre_logits: bool = False) -> Tensor:
        """Channels-last features -> ``conv_head`` -> average pool -> (pre_logits) -> ``head``."""
        x = self.conv_head(x.permute(0, 3, 1, 2))
        x = torch.flatten(self.avgpool(x), 1)  # (B, head_hidden_size)
        return x if pre_logits else self.head(x)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, in_chans, H, W)`` images -> ``(B, num_classes)`` logits."""
        return self.forward_head(self.forward_features(x))


def _init_weights(m: nn.Module) -> None:
    """Backbone init (reference 3.3): Linear trunc-normal(0.02), zero bias; LayerNorm 1/0.
    Convs, BatchNorm and the TreeSSM's own Parameters keep their defaults."""
    if isinstance(m, nn.Linear):
        trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, nn.LayerNorm):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


# ------------------------------------------------------------------------------------------------
# Checkpoints
# ------------------------------------------------------------------------------------------------


def checkpoint_filter_fn(state_dict: Mapping, model: nn.Module | None = None, use_ema: bool = False) -> Mapping:
    """Turn an official GrootV checkpoint (reference 3.5) into this model's ``state_dict``.

    Pure dict -> dict, no I/O. Unwraps the training containers (``model``, ``state_dict``,
    ``model_ema``, ``state_dict_ema``, ``module``; nested ones too) and strips ``module.`` key
    prefixes left by DDP / EMA wrappers, with :func:`grootvl_core.weights.unwrap_state_dict`.
    The published key names equal ours (3.4), so nothing is renamed. A dict that is already
    native is returned unchanged (the same object), so applying the function twice changes nothing.

    Args:
        state_dict: a bare state dict or a training checkpoint dict.
        model: the target model (unused; part of timm's ``pretrained_filter_fn`` signature).
        use_ema: prefer the EMA weights (``model_ema``) when the checkpoint has both.

    Returns:
        A mapping of parameter/buffer names to tensors.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"checkpoint_filter_fn: expected a state dict (a mapping), got {type(state_dict).__name__}")
    return unwrap_state_dict(state_dict, use_ema=use_ema)


# ------------------------------------------------------------------------------------------------
# timm registration
# ------------------------------------------------------------------------------------------------


def _create_grootv(variant: str, pretrained: bool = False, **kwargs) -> GrootV:
    if pretrained:
        cfg = resolve_pretrained_cfg(
            variant,
            pretrained_cfg=kwargs.get("pretrained_cfg"),
            pretrained_cfg_overlay=kwargs.get("pretrained_cfg_overlay"),
        )
        if not any(getattr(cfg, key, None) for key in ("url", "hf_hub_id", "file", "state_dict")):
            raise ValueError(
                f"{variant}: no downloadable weights are registered with timm (the official ones "
                "are Google-Drive files). Use grootvl_core.zoo to fetch and convert them, or pass "
                "pretrained_cfg_overlay=dict(file='path/to/checkpoint') to timm.create_model."
            )
    return build_model_with_cfg(
        GrootV,
        variant,
        pretrained,
        pretrained_filter_fn=checkpoint_filter_fn,
        # NOTE: stage outputs are taken before each stage's downsample, which lives inside the
        # stage module (published layout), so features_only uses forward_intermediates ("getter").
        feature_cfg=dict(out_indices=(0, 1, 2, 3), flatten_sequential=True, feature_cls="getter"),
        **kwargs,
    )


def _cfg(**kwargs) -> dict:
    # Preprocessing of the official evaluation (reference 3.6): resize the shorter side to 224
    # (crop_pct 1.0), bicubic, center crop, ImageNet mean/std.
    return {
        "url": "",
        "num_classes": 1000,
        "input_size": (3, 224, 224),
        "pool_size": (7, 7),
        "crop_pct": 1.0,
        "crop_mode": "center",
        "interpolation": "bicubic",
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": "patch_embed.conv1",
        "classifier": "head",
        "paper_ids": "arXiv:2406.02395",
        "paper_name": "GrootVL: Tree Topology is All You Need in State Space Model",
        "origin_url": "https://github.com/EasonXiao-888/GrootVL",
        **kwargs,
    }


default_cfgs = generate_default_cfgs(
    {
        "grootv_tiny.in1k": _cfg(),
        "grootv_small.in1k": _cfg(),
        "grootv_base.in1k": _cfg(),
        "test_grootv.untrained": _cfg(input_size=(3, 64, 64), pool_size=(2, 2)),
        # the project's own Fashion-MNIST model (weights bundled in checkpoints/, not on the Hub)
        "grootv_nano.fmnist": _cfg(
            num_classes=10,
            input_size=(1, 28, 28),
            pool_size=(1, 1),
            crop_pct=1.0,
            interpolation="bilinear",
            mean=FASHION_MNIST_MEAN,
            std=FASHION_MNIST_STD,
        ),
    }
)


@register_model
def grootv_nano(pretrained: bool = False, **kwargs) -> GrootV:
    """GrootV-nano: C=32, depths (1, 1, 3, 1), the size of the project's bundled models (trained on
    one CPU; ``grootvl_core.zoo.load_model("grootv-nano-fmnist")`` loads the trained weights)."""
    model_args = dict(channels=32, depths=(1, 1, 3, 1), drop_path_rate=0.05)
    return _create_grootv("grootv_nano", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def grootv_tiny(pretrained: bool = False, **kwargs) -> GrootV:
    """GrootV-T: C=80, depths (2, 2, 9, 2), 29,958,600 parameters."""
    model_args = dict(channels=80, depths=(2, 2, 9, 2), drop_path_rate=0.1)
    return _create_grootv("grootv_tiny", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def grootv_small(pretrained: bool = False, **kwargs) -> GrootV:
    """GrootV-S: C=96, depths (2, 2, 13, 2), 51,331,624 parameters."""
    model_args = dict(channels=96, depths=(2, 2, 13, 2), drop_path_rate=0.3)
    return _create_grootv("grootv_small", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def grootv_base(pretrained: bool = False, **kwargs) -> GrootV:
    """GrootV-B: C=128, depths (2, 2, 13, 2), 90,597,096 parameters."""
    model_args = dict(channels=128, depths=(2, 2, 13, 2), drop_path_rate=0.5)
    return _create_grootv("grootv_base", pretrained=pretrained, **dict(model_args, **kwargs))


@register_model
def test_grootv(pretrained: bool = False, **kwargs) -> GrootV:
    """Tiny untrained GrootV for fast tests: C=16, depths (1, 1, 2, 1)."""
    model_args = dict(channels=16, depths=(1, 1, 2, 1), drop_path_rate=0.0)
    return _create_grootv("test_grootv", pretrained=pretrained, **dict(model_args, **kwargs))
