"""UperNet semantic segmentation on the GrootV backbone (reference-grootvl.md section 5, ADE20K).

UperNet: "Unified Perceptual Parsing for Scene Understanding", Xiao et al., ECCV 2018,
https://arxiv.org/abs/1807.10221. The published GrootVL repository reports UperNet/ADE20K
numbers but ships no segmentation code, so this head follows mmsegmentation's ``UPerHead`` and
``FCNHead`` (the setup those numbers come from): a pyramid pooling module (pool scales 1, 2, 3, 6)
on the last stage, an FPN over all four stages, 512 channels, Conv-BN-ReLU blocks. Module names
equal mmsegmentation's (``backbone.``, ``decode_head.psp_modules`` / ``lateral_convs`` /
``fpn_convs`` / ``fpn_bottleneck`` / ``bottleneck`` / ``conv_seg``, ConvModule ``conv`` / ``bn``,
``auxiliary_head.convs``), so mmseg checkpoints of a GrootV UperNet convert by key.

The head sees the backbone only through timm's contract (``forward_intermediates`` and
``feature_info``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from huggingface_hub import PyTorchModelHubMixin
from torch import Tensor, nn

from grootvl_core.data.ade20k import ADE20K_CLASSES, ADE20K_PALETTE

from .grootv import GrootV

__all__ = ["ConvModule", "FCNHead", "GrootVSegmenter", "UPerHead", "upernet_grootv_small", "upernet_grootv_tiny"]


class ConvModule(nn.Module):
    """Conv (no bias) -> BatchNorm -> ReLU, named like mmcv's ``ConvModule`` (``conv``, ``bn``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.bn = nn.BatchNorm2d(out_channels)
        self.activate = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.activate(self.bn(self.conv(x)))


def _resize(x: Tensor, size: Sequence[int], align_corners: bool) -> Tensor:
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=align_corners)


class UPerHead(nn.Module):
    """UperNet decoder: PPM on the last feature map + FPN over all of them (mmseg ``UPerHead``).

    Args:
        in_channels: channels of the backbone feature maps, finest first.
        num_classes: output classes.
        channels: width of every decoder conv (512 in the ADE20K configs).
        pool_scales: PPM output sizes.
        dropout_ratio: Dropout2d before the classifier.
        align_corners: bilinear resizing flag (False in the ADE20K configs).
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        num_classes: int,
        channels: int = 512,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        dropout_ratio: float = 0.1,
        align_corners: bool = False,
    ):
        super().__init__()
        in_channels = [int(c) for c in in_channels]
        self.align_corners = align_corners
        # NOTE: registration order mirrors mmseg (BaseDecodeHead builds conv_seg first).
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.psp_modules = nn.ModuleList(
            [nn.Sequential(nn.AdaptiveAvgPool2d(s), ConvModule(in_channels[-1], channels, 1)) for s in pool_scales]
        )
        self.bottleneck = ConvModule(in_channels[-1] + len(pool_scales) * channels, channels, 3)
        self.lateral_convs = nn.ModuleList([ConvModule(c, channels, 1) for c in in_channels[:-1]])
        self.fpn_convs = nn.ModuleList([ConvModule(channels, channels, 3) for _ in in_channels[:-1]])
        self.fpn_bottleneck = ConvModule(len(in_channels) * channels, channels, 3)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        """``features[i]``: ``(B, in_channels[i], H_i, W_i)`` -> logits ``(B, K, H_0, W_0)``."""
        x = features[-1]
        psp = [x] + [_resize(m(x), x.shape[2:], self.align_corners) for m in self.psp_modules]
        laterals = [conv(features[i]) for i, conv in enumerate(self.lateral_convs)]
        laterals.append(self.bottleneck(torch.cat(psp, dim=1)))
        for i in range(len(laterals) - 1, 0, -1):  # top-down pathway
            laterals[i - 1] = laterals[i - 1] + _resize(laterals[i], laterals[i - 1].shape[2:], self.align_corners)
        outs = [conv(laterals[i]) for i, conv in enumerate(self.fpn_convs)] + [laterals[-1]]
        size = outs[0].shape[2:]
        outs = [outs[0]] + [_resize(o, size, self.align_corners) for o in outs[1:]]
        return self.conv_seg(self.dropout(self.fpn_bottleneck(torch.cat(outs, dim=1))))


class FCNHead(nn.Module):
    """Auxiliary head on one feature map: ``num_convs`` 3x3 ConvModules + classifier (mmseg)."""

    def __init__(
        self, in_channels: int, num_classes: int, channels: int = 256, num_convs: int = 1, dropout_ratio: float = 0.1
    ):
        super().__init__()
        self.conv_seg = nn.Conv2d(channels, num_classes, kernel_size=1)
        self.dropout = nn.Dropout2d(dropout_ratio) if dropout_ratio > 0 else nn.Identity()
        self.convs = nn.Sequential(
            *[ConvModule(in_channels if i == 0 else channels, channels, 3) for i in range(num_convs)]
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_seg(self.dropout(self.convs(x)))


class GrootVSegmenter(nn.Module, PyTorchModelHubMixin, library_name="grootvl", tags=["image-segmentation", "grootvl"]):
    """GrootV backbone + UperNet decoder (+ optional FCN auxiliary head), mmseg's layout.

    Args:
        channels, depths, drop_path_rate, in_chans, tree_per_stage, scan_order: the GrootV backbone
            (:class:`~grootvl_core.models.grootv.GrootV`; its classifier is removed).
        num_classes: segmentation classes (150 for ADE20K).
        class_names: one name per class (ADE20K's by default).
        palette: one RGB triple per class, for drawing masks (ADE20K's by default).
        decoder_channels: UperNet width.
        pool_scales: PPM scales.
        auxiliary_head: add mmseg's FCN auxiliary head on stage 2 (used for training only).
        aux_channels: its width.
        dropout_ratio: Dropout2d before each classifier.
        align_corners: bilinear resizing flag.
    """

    def __init__(
        self,
        channels: int = 80,
        depths: Sequence[int] = (2, 2, 9, 2),
        num_classes: int = 150,
        class_names: Sequence[str] = ADE20K_CLASSES,
        palette: Sequence[Sequence[int]] = ADE20K_PALETTE,
        in_chans: int = 3,
        drop_path_rate: float = 0.2,
        tree_per_stage: bool = False,
        scan_order: str = "tree",
        decoder_channels: int = 512,
        pool_scales: Sequence[int] = (1, 2, 3, 6),
        auxiliary_head: bool = True,
        aux_channels: int = 256,
        dropout_ratio: float = 0.1,
        align_corners: bool = False,
    ):
        super().__init__()
        if int(num_classes) < 1:
            raise ValueError(f"GrootVSegmenter: num_classes must be >= 1, got {num_classes}")
        class_names = [str(c) for c in class_names]
        palette = [tuple(int(v) for v in rgb) for rgb in palette]
        if len(class_names) != num_classes or len(palette) != num_classes:
            raise ValueError(
                f"GrootVSegmenter: need one class name and one palette colour per class "
                f"(num_classes={num_classes}), got {len(class_names)} names and {len(palette)} "
                "colours; pass class_names= and palette= for a non-ADE20K label set"
            )
        if any(len(rgb) != 3 or not all(0 <= v <= 255 for v in rgb) for rgb in palette):
            raise ValueError("GrootVSegmenter: palette entries must be (R, G, B) in 0..255")
        self.num_classes = int(num_classes)
        self.class_names = class_names
        self.palette = palette
        self.align_corners = align_corners

        backbone = GrootV(
            channels=channels,
            depths=depths,
            num_classes=0,
            in_chans=in_chans,
            drop_path_rate=drop_path_rate,
            tree_per_stage=tree_per_stage,
            scan_order=scan_order,
        )
        # keep the stages only: mmseg backbones have no classification head
        self.out_indices = backbone.prune_intermediate_layers(list(range(len(backbone.feature_info))), prune_head=True)
        self.backbone = backbone
        in_channels = [backbone.feature_info[i]["num_chs"] for i in self.out_indices]
        self.decode_head = UPerHead(
            in_channels, self.num_classes, decoder_channels, pool_scales, dropout_ratio, align_corners
        )
        self.aux_index = min(2, len(in_channels) - 1)
        self.auxiliary_head = (
            FCNHead(in_channels[self.aux_index], self.num_classes, aux_channels, dropout_ratio=dropout_ratio)
            if auxiliary_head
            else None
        )

    def forward(self, x: Tensor, return_aux: bool = False) -> Tensor | tuple[Tensor, Tensor]:
        """Per-pixel class logits.

        Args:
            x: ``(B, in_chans, H, W)`` normalised images.
            return_aux: also return the auxiliary head's logits (for training).

        Returns:
            ``(B, num_classes, H, W)`` logits at the input resolution, or ``(logits, aux_logits)``.
        """
        features = self.backbone.forward_intermediates(
            x, indices=self.out_indices, output_fmt="NCHW", intermediates_only=True
        )
        logits = _resize(self.decode_head(features), x.shape[2:], self.align_corners)
        if not return_aux:
            return logits
        if self.auxiliary_head is None:
            raise ValueError("GrootVSegmenter: return_aux=True but the model was built with auxiliary_head=False")
        aux = _resize(self.auxiliary_head(features[self.aux_index]), x.shape[2:], self.align_corners)
        return logits, aux

    @torch.no_grad()
    def predict(
        self, x: Tensor, mode: str = "whole", crop_size: int | Sequence[int] = 512, stride: int | Sequence[int] = 341
    ) -> Tensor:
        """Inference logits, on the whole image or by overlapping sliding windows (mmseg's
        ``whole`` / ``slide`` test modes; overlapping window logits are averaged).

        Args:
            x: ``(B, in_chans, H, W)`` normalised images.
            mode: ``"whole"`` (one forward) or ``"slide"`` (``crop_size`` windows every ``stride``
                pixels, the last window flush with the border).
            crop_size, stride: window size and step, an int or ``(h, w)``.

        Returns:
            ``(B, num_classes, H, W)`` logits.
        """
        if mode == "whole":
            return self(x)
        if mode != "slide":
            raise ValueError(f"GrootVSegmenter.predict: mode must be 'whole' or 'slide', got {mode!r}")
        ch, cw = (crop_size, crop_size) if isinstance(crop_size, int) else map(int, crop_size)
        sh, sw = (stride, stride) if isinstance(stride, int) else map(int, stride)
        if min(ch, cw, sh, sw) < 1:
            raise ValueError(
                f"GrootVSegmenter.predict: crop_size and stride must be positive, got {crop_size} and {stride}"
            )
        b, _, h, w = x.shape
        rows = max(h - ch + sh - 1, 0) // sh + 1  # mmseg's grid
        cols = max(w - cw + sw - 1, 0) // sw + 1
        logits = x.new_zeros((b, self.num_classes, h, w))
        count = x.new_zeros((1, 1, h, w))
        for r in range(rows):
            for c in range(cols):
                y2, x2 = min(r * sh + ch, h), min(c * sw + cw, w)
                y1, x1 = max(y2 - ch, 0), max(x2 - cw, 0)
                logits[:, :, y1:y2, x1:x2] += self(x[:, :, y1:y2, x1:x2])
                count[:, :, y1:y2, x1:x2] += 1
        return logits / count


def upernet_grootv_nano(pretrained: bool = False, **kwargs) -> GrootVSegmenter:
    """UperNet + GrootV-nano (C=32, depths (1, 1, 3, 1), decoder 64): the size the project's bundled
    scenes segmenter was trained at before it was grown to depths (1, 1, 7, 2) (its zoo entry,
    ``grootvl_core.zoo.load_model("grootv-nano-scenes")``, passes those depths)."""
    _no_pretrained("upernet_grootv_nano", pretrained)
    return GrootVSegmenter(
        **dict(
            dict(channels=32, depths=(1, 1, 3, 1), drop_path_rate=0.05, decoder_channels=64, aux_channels=32), **kwargs
        )
    )


def _no_pretrained(name: str, pretrained: bool) -> None:
    if pretrained:
        raise ValueError(
            f"{name}: pretrained weights come from the zoo (grootvl_core.zoo.load_model), not from the factory"
        )


def upernet_grootv_tiny(pretrained: bool = False, **kwargs) -> GrootVSegmenter:
    """UperNet + GrootV-T (README: 60M parameters, ADE20K mIoU 48.5 single-scale)."""
    _no_pretrained("upernet_grootv_tiny", pretrained)
    return GrootVSegmenter(**dict(dict(channels=80, depths=(2, 2, 9, 2), drop_path_rate=0.2), **kwargs))


def upernet_grootv_small(pretrained: bool = False, **kwargs) -> GrootVSegmenter:
    """UperNet + GrootV-S (README: 82M parameters, ADE20K mIoU 50.7 single-scale)."""
    _no_pretrained("upernet_grootv_small", pretrained)
    return GrootVSegmenter(**dict(dict(channels=96, depths=(2, 2, 13, 2), drop_path_rate=0.3), **kwargs))
