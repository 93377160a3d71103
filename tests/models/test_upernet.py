"""UperNet segmenter on GrootV: shapes, sliding-window inference, mmseg key layout, config."""

from __future__ import annotations

import json

import pytest
import torch

from grootvl_core.data.ade20k import ADE20K_CLASSES, ADE20K_PALETTE
from grootvl_core.models import GrootVSegmenter, grootv_tiny, upernet_grootv_tiny


def _small(**kwargs) -> GrootVSegmenter:
    args = dict(channels=16, depths=(1, 1, 1, 1), drop_path_rate=0.0, decoder_channels=32, aux_channels=16)
    return GrootVSegmenter(**dict(args, **kwargs)).eval()


def test_ade20k_tables():
    assert len(ADE20K_CLASSES) == len(set(ADE20K_CLASSES)) == 150
    assert ADE20K_CLASSES[:3] == ("wall", "building", "sky") and ADE20K_CLASSES[-1] == "flag"
    assert len(ADE20K_PALETTE) == 150 and ADE20K_PALETTE[0] == (120, 120, 120)
    assert all(len(c) == 3 and all(0 <= v <= 255 for v in c) for c in ADE20K_PALETTE)


def test_whole_and_aux_shapes():
    m = _small()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        logits = m(x)
        main, aux = m(x, return_aux=True)
    assert logits.shape == aux.shape == (2, 150, 64, 96)
    torch.testing.assert_close(main, logits)
    torch.testing.assert_close(m.predict(x, mode="whole"), logits)


def test_slide_inference():
    m = _small(num_classes=3, class_names=["a", "b", "c"], palette=[(0, 0, 0)] * 3)
    x = torch.randn(1, 3, 48, 80)
    out = m.predict(x, mode="slide", crop_size=32, stride=24)
    assert out.shape == (1, 3, 48, 80) and torch.isfinite(out).all()
    # one window that covers the image is the whole-image prediction
    torch.testing.assert_close(m.predict(x, mode="slide", crop_size=(48, 80), stride=16), m.predict(x))

    # overlapping windows are averaged: a model that predicts the window's row offset
    class Offsets(GrootVSegmenter):
        def forward(self, img, return_aux=False):
            return img[:, :1].expand(-1, self.num_classes, -1, -1).clone()

    fake = Offsets(
        channels=16,
        depths=(1, 1, 1, 1),
        num_classes=2,
        class_names=["a", "b"],
        palette=[(0, 0, 0)] * 2,
        decoder_channels=8,
        auxiliary_head=False,
    )
    torch.testing.assert_close(fake.predict(x, mode="slide", crop_size=32, stride=24), x[:, :1].expand(-1, 2, -1, -1))
    with pytest.raises(ValueError, match="mode"):
        m.predict(x, mode="tile")


def test_mmseg_key_layout_for_tiny():
    with torch.device("meta"):  # shapes only
        seg, cls = upernet_grootv_tiny(), grootv_tiny()
    sd = seg.state_dict()
    backbone = {k[len("backbone.") :]: v.shape for k, v in sd.items() if k.startswith("backbone.")}
    classifier = {k: v.shape for k, v in cls.state_dict().items() if not k.startswith(("conv_head.", "head."))}
    assert backbone == classifier
    expect = {
        "decode_head.conv_seg.weight": (150, 512, 1, 1),
        "decode_head.psp_modules.0.1.conv.weight": (512, 640, 1, 1),
        "decode_head.psp_modules.3.1.bn.running_var": (512,),
        "decode_head.bottleneck.conv.weight": (512, 640 + 4 * 512, 3, 3),
        "decode_head.lateral_convs.0.conv.weight": (512, 80, 1, 1),
        "decode_head.lateral_convs.2.bn.weight": (512,),
        "decode_head.fpn_convs.2.conv.weight": (512, 512, 3, 3),
        "decode_head.fpn_bottleneck.conv.weight": (512, 4 * 512, 3, 3),
        "auxiliary_head.convs.0.conv.weight": (256, 320, 3, 3),
        "auxiliary_head.conv_seg.weight": (150, 256, 1, 1),
    }
    for k, shape in expect.items():
        assert tuple(sd[k].shape) == shape, k
    assert "decode_head.lateral_convs.3.conv.weight" not in sd
    assert not any(k.endswith("conv.bias") for k in sd if "decode_head" in k)
    n = sum(p.numel() for p in seg.parameters())
    assert abs(n - 60e6) < 0.5e6  # README: 60M


def test_config_round_trip(tmp_path):
    m = _small(num_classes=2, class_names=["bg", "fg"], palette=[(0, 0, 0), (255, 0, 0)], tree_per_stage=True)
    m.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert cfg["class_names"] == ["bg", "fg"] and cfg["palette"] == [[0, 0, 0], [255, 0, 0]]
    loaded = GrootVSegmenter.from_pretrained(tmp_path).eval()
    assert loaded.class_names == ["bg", "fg"] and loaded.palette == [(0, 0, 0), (255, 0, 0)]
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), m(x))


def test_default_labels_are_ade20k(tmp_path):
    m = _small()
    assert m.num_classes == 150 and m.class_names == list(ADE20K_CLASSES)
    m.save_pretrained(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert len(cfg["class_names"]) == 150 and cfg["palette"][1] == [180, 120, 120]


def test_bad_labels_raise():
    with pytest.raises(ValueError, match="one class name"):
        _small(num_classes=3)
    with pytest.raises(ValueError, match="palette"):
        _small(num_classes=1, class_names=["a"], palette=[(0, 0, 300)])
    with pytest.raises(ValueError, match="auxiliary_head=False"):
        _small(auxiliary_head=False)(torch.randn(1, 3, 32, 32), return_aux=True)


def test_backward():
    m = _small(num_classes=4, class_names=list("abcd"), palette=[(1, 2, 3)] * 4).train()
    x = torch.randn(2, 3, 32, 32)
    logits, aux = m(x, return_aux=True)
    target = torch.randint(0, 4, (2, 32, 32))
    ce = torch.nn.functional.cross_entropy
    loss = ce(logits, target) + 0.4 * ce(aux, target)
    loss.backward()
    assert m.backbone.patch_embed.conv1.weight.grad.abs().sum() > 0
