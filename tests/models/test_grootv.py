"""GrootV: checkpoint layout (reference Appendix A / 3.4), numbers (3.1, 7), timm interface."""

from __future__ import annotations

import math
import sys
from pathlib import Path

import pytest
import timm
import torch
import torch.nn.functional as F

from grootvl_core import ops
from grootvl_core.models import GrootV, TreeSSM, checkpoint_filter_fn, grootv_base, grootv_small, grootv_tiny
from grootvl_core.models import tree_ssm as tree_ssm_module

KEYS_FILE = Path(__file__).parent / "data" / "grootv_tiny_keys.txt"
OUR_NAMES = ("grootv_nano", "grootv_tiny", "grootv_small", "grootv_base", "test_grootv")


def _reference_keys() -> list[tuple[str, tuple[int, ...]]]:
    rows = []
    for line in KEYS_FILE.read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        key, shape = line.split(" ")
        dims = shape.strip("()")
        rows.append((key, tuple(int(d) for d in dims.split(",")) if dims else ()))
    return rows


def _meta(factory) -> GrootV:
    """Build on the meta device: shapes and counts without allocating or initialising weights."""
    with torch.device("meta"):
        return factory()


def _small(**kwargs) -> GrootV:
    args = dict(channels=16, depths=(1, 1, 2, 1), num_classes=10, drop_path_rate=0.0)
    return GrootV(**dict(args, **kwargs))


# ----------------------------------------------------------------------------------------------
# Checkpoint layout and sizes
# ----------------------------------------------------------------------------------------------


def test_tiny_state_dict_equals_appendix_a():
    expected = _reference_keys()
    assert len(expected) == 333
    sd = _meta(grootv_tiny).state_dict()
    got = [(k, tuple(v.shape)) for k, v in sd.items()]
    assert got == expected  # same keys, same shapes, same order
    assert sd["conv_head.1.0.num_batches_tracked"].dtype == torch.int64
    assert all(v.dtype == torch.float32 for k, v in sd.items() if "num_batches" not in k)


@pytest.mark.parametrize("factory, c", [(grootv_small, 96), (grootv_base, 128)])
def test_small_base_state_dict_layout(factory, c):
    sd = _meta(factory).state_dict()
    assert len(sd) == 413
    r = [math.ceil(c * 2**s / 16) for s in range(4)]
    for s in range(4):
        w = c * 2**s
        blk = f"levels.{s}.blocks.0.TreeSSM."
        assert sd[blk + "x_proj_weight"].shape == (1, r[s] + 2, 2 * w)
        assert sd[blk + "dt_projs_weight"].shape == (1, 2 * w, r[s])
        assert sd[blk + "dt_projs_bias"].shape == (1, 2 * w)
        assert sd[blk + "A_logs"].shape == (2 * w, 1)
        assert sd[blk + "in_proj.weight"].shape == (4 * w, w)
        assert sd[blk + "conv2d.weight"].shape == (2 * w, 1, 3, 3)
        assert sd[blk + "out_proj.weight"].shape == (w, 2 * w)
        assert sd[f"levels.{s}.blocks.0.mlp.fc1.weight"].shape == (4 * w, w)
        if s < 3:
            assert sd[f"levels.{s}.downsample.conv.weight"].shape == (2 * w, w, 3, 3)
    assert "levels.2.blocks.12.TreeSSM.Ds" in sd and "levels.2.blocks.13.TreeSSM.Ds" not in sd
    assert sd["patch_embed.conv1.weight"].shape == (c // 2, 3, 3, 3)
    assert sd["conv_head.0.weight"].shape == (12 * c, 8 * c, 1, 1)
    assert sd["head.weight"].shape == (1000, 12 * c)


def test_small_base_spot_shapes_from_reference_table():
    s, b = _meta(grootv_small).state_dict(), _meta(grootv_base).state_dict()
    assert s["levels.3.blocks.1.TreeSSM.x_proj_weight"].shape == (1, 50, 1536)
    assert s["levels.1.blocks.0.TreeSSM.dt_projs_weight"].shape == (1, 384, 12)
    assert b["levels.0.blocks.1.TreeSSM.x_proj_weight"].shape == (1, 10, 256)
    assert b["levels.3.blocks.0.TreeSSM.dt_projs_weight"].shape == (1, 2048, 64)
    assert b["conv_head.0.weight"].shape == (1536, 1024, 1, 1)


@pytest.mark.parametrize(
    "factory, count", [(grootv_tiny, 29_958_600), (grootv_small, 51_331_624), (grootv_base, 90_597_096)]
)
def test_parameter_counts(factory, count):
    assert sum(p.numel() for p in _meta(factory).parameters()) == count


def test_tiny_per_stage_parameter_totals():
    m = _meta(grootv_tiny)

    def n(mod):
        return sum(p.numel() for p in mod.parameters())

    blocks = [189_600, 744_000, 13_262_400, 11_731_200]
    downs = [115_520, 461_440, 1_844_480]
    for s, level in enumerate(m.levels):
        assert n(level.blocks) == blocks[s]
        assert n(level.norm) == 160 * 2**s
        if s < 3:
            assert n(level.downsample) == downs[s]
    assert (n(m.patch_embed), n(m.conv_head), n(m.head)) == (30_240, 616_320, 961_000)


def test_init_and_eps_follow_reference():
    m = grootv_tiny().requires_grad_(False)
    ssm = m.levels[0].blocks[0].TreeSSM
    assert ssm.out_norm.eps == 1e-5 and ssm.h_norm.eps == 1e-5
    assert m.levels[0].blocks[0].norm1[0].eps == 1e-6 and m.patch_embed.norm1[1].eps == 1e-6
    assert torch.all(ssm.A_logs == 0) and torch.all(ssm.Ds == 1)
    delta = F.softplus(ssm.dt_projs_bias.detach())  # inverse softplus of dt in [1e-3, 1e-1]
    assert float(delta.min()) >= 1e-3 * 0.999 and float(delta.max()) <= 0.1 * 1.001
    bound = 1 / math.sqrt(160)
    assert float(ssm.x_proj_weight.abs().max()) <= bound
    assert float(ssm.dt_projs_weight.abs().max()) <= 5**-0.5
    assert abs(float(ssm.in_proj.weight.std()) - 0.02) < 0.002  # backbone trunc-normal init
    assert m.conv_head[1][0].eps == 1e-5 and m.conv_head[1][0].momentum == 0.1


# ----------------------------------------------------------------------------------------------
# Forward
# ----------------------------------------------------------------------------------------------


def test_tiny_stage_shapes_at_64():
    m = grootv_tiny().eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        nhwc = m.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
        final, nchw = m.forward_intermediates(x)
        logits = m(x)
    assert [tuple(f.shape) for f in nhwc] == [(1, 16, 16, 80), (1, 8, 8, 160), (1, 4, 4, 320), (1, 2, 2, 640)]
    assert [tuple(f.shape) for f in nchw] == [(1, 80, 16, 16), (1, 160, 8, 8), (1, 320, 4, 4), (1, 640, 2, 2)]
    torch.testing.assert_close(nchw[2], nhwc[2].permute(0, 3, 1, 2))
    torch.testing.assert_close(final, nhwc[-1])
    assert logits.shape == (1, 1000) and torch.isfinite(logits).all()
    torch.testing.assert_close(m.forward_head(final), logits)
    assert m.forward_head(final, pre_logits=True).shape == (1, 960)


@pytest.mark.slow
def test_tiny_at_224():
    m = grootv_tiny().eval()
    with torch.no_grad():
        feats = m.forward_intermediates(torch.randn(1, 3, 224, 224), intermediates_only=True)
    assert [f.shape[-1] for f in feats] == [56, 28, 14, 7]
    assert torch.isfinite(feats[-1]).all()


def test_small_config_and_backward():
    m = GrootV(channels=16, depths=[1, 1, 1, 1], num_classes=10, in_chans=1, drop_path_rate=0.0)
    x = torch.randn(2, 1, 32, 48)
    out = m(x)
    assert out.shape == (2, 10)
    out.square().sum().backward()
    ssm = m.levels[0].blocks[0].TreeSSM
    for p in (ssm.A_logs, ssm.dt_projs_bias, ssm.x_proj_weight, ssm.h_norm.weight, m.patch_embed.conv1.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


def test_bfloat16_model_and_autocast():
    m = _small(depths=(1, 1, 1, 1)).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        ref = m(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = m(x)
        half = m.to(torch.bfloat16)(x.bfloat16())  # the scan path still runs in float32 (2.4)
    assert auto.dtype == half.dtype == torch.bfloat16
    torch.testing.assert_close(auto.float(), ref, rtol=0.05, atol=0.05)
    torch.testing.assert_close(half.float(), ref, rtol=0.1, atol=0.1)


def test_bad_input_raises():
    m = _small()
    with pytest.raises(ValueError, match="expected images"):
        m(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="channels must be an even"):
        GrootV(channels=15)
    with pytest.raises(ValueError, match="d_state must be 1"):
        TreeSSM(16, d_state=16)
    with pytest.raises(ValueError, match="output_fmt"):
        m.forward_intermediates(torch.randn(1, 3, 32, 32), output_fmt="NCL")


def _dense_tree_ssm(ssm: TreeSSM, x: torch.Tensor) -> torch.Tensor:
    """Reference 2.2 written out with the closed form ``h = M x``, ``M_ij = S(i, j)`` (1.6)."""
    b, h, w, _ = x.shape
    d, r = ssm.d_inner, ssm.dt_rank
    xz = x @ ssm.in_proj.weight.T
    xs, z = xz[..., :d], F.silu(xz[..., d:])
    u = F.silu(F.conv2d(xs.permute(0, 3, 1, 2), ssm.conv2d.weight, padding=1, groups=d))
    u = u.reshape(b, d, h * w).double()
    wx = ssm.x_proj_weight[0].double()  # (R+2, D)
    dbl = torch.einsum("cd,bdl->bcl", wx, u)
    dt = torch.einsum("dr,brl->bdl", ssm.dt_projs_weight[0].double(), dbl[:, :r])
    delta = F.softplus(dt + ssm.dt_projs_bias.double().view(1, d, 1))
    abar = torch.exp(-delta * torch.exp(ssm.A_logs.double()))
    xin = delta * dbl[:, r : r + 1] * u
    outs = []
    for i in range(b):
        tree = ops.bfs_ref(
            ops.minimum_spanning_tree_ref(
                ops.grid_edges(h, w), ops.cosine_edge_weights(u[i : i + 1].float().view(1, d, h, w)), h * w
            )
        )
        order, parent = tree.order[0].tolist(), tree.parent[0].tolist()
        par = {order[k]: order[parent[k]] for k in range(1, h * w)}

        def path_to_root(v, par=par):  # (this tree's parents)
            path = [v]
            while v in par:
                v = par[v]
                path.append(v)
            return path

        m = torch.zeros(d, h * w, h * w, dtype=torch.float64)
        for vi in range(h * w):
            pi = path_to_root(vi)
            for vj in range(h * w):
                pj = path_to_root(vj)
                common = set(pi) & set(pj)
                edges = [v for v in pi if v not in common] + [v for v in pj if v not in common]
                m[:, vi, vj] = torch.prod(abar[i][:, edges], dim=1) if edges else 1.0
        outs.append(torch.einsum("dij,dj->di", m, xin[i]))
    hs = torch.stack(outs).transpose(1, 2)  # (B, L, D)
    hs = F.layer_norm(hs, (d,), ssm.h_norm.weight.double(), ssm.h_norm.bias.double(), 1e-5)
    y = hs * dbl[:, r + 1 : r + 2].transpose(1, 2) + u.transpose(1, 2) * ssm.Ds.double()
    y = F.layer_norm(y, (d,), ssm.out_norm.weight.double(), ssm.out_norm.bias.double(), 1e-5)
    y = y.view(b, h, w, d).float() * z
    return y @ ssm.out_proj.weight.T


def test_tree_ssm_matches_dense_closed_form():
    ssm = TreeSSM(8)
    with torch.no_grad():  # make every parameter matter
        for p in (ssm.A_logs, ssm.Ds, ssm.h_norm.weight, ssm.h_norm.bias, ssm.out_norm.bias):
            p.add_(0.3 * torch.randn_like(p))
        ssm.dt_projs_bias.add_(2.0)  # larger Delta: weights spread over (0, 1)
    x = torch.randn(2, 3, 4, 8)
    with torch.no_grad():
        torch.testing.assert_close(ssm(x), _dense_tree_ssm(ssm, x), rtol=1e-4, atol=1e-5)


# ----------------------------------------------------------------------------------------------
# tree_per_stage, grad checkpointing
# ----------------------------------------------------------------------------------------------


def _count_tree_builds(monkeypatch) -> list[int]:
    calls = []
    original = tree_ssm_module.build_grid_tree

    def counting(feature):
        calls.append(1)
        return original(feature)

    monkeypatch.setattr(tree_ssm_module, "build_grid_tree", counting)
    return calls


def test_tree_per_stage_builds_one_tree_per_stage(monkeypatch):
    calls = _count_tree_builds(monkeypatch)
    x = torch.randn(1, 3, 32, 32)
    torch.manual_seed(1)
    per_block = _small(depths=(2, 1, 3, 1)).eval()
    torch.manual_seed(1)
    per_stage = _small(depths=(2, 1, 3, 1), tree_per_stage=True).eval()
    with torch.no_grad():
        a = per_block(x)
        assert len(calls) == 7
        b = per_stage(x)
    assert len(calls) == 7 + 4
    assert b.shape == a.shape and torch.isfinite(b).all()
    assert not torch.allclose(a, b)  # later blocks scan over a different tree


def test_tree_per_stage_equals_default_with_one_block_per_stage():
    x = torch.randn(2, 3, 32, 32)
    torch.manual_seed(2)
    a = _small(depths=(1, 1, 1, 1)).eval()
    torch.manual_seed(2)
    b = _small(depths=(1, 1, 1, 1), tree_per_stage=True).eval()
    with torch.no_grad():
        torch.testing.assert_close(a(x), b(x))


def test_grad_checkpointing_same_gradients():
    m = _small(depths=(2, 1, 1, 1)).eval()
    x = torch.randn(1, 3, 32, 32)
    m(x).sum().backward()
    ref = {n: p.grad.clone() for n, p in m.named_parameters()}
    m.zero_grad()
    m.set_grad_checkpointing(True)
    m(x.requires_grad_()).sum().backward()
    for n, p in m.named_parameters():
        torch.testing.assert_close(p.grad, ref[n], msg=n)


def test_no_weight_decay_excludes_ssm_a_and_d():
    from timm.optim import param_groups_weight_decay

    m = _small()
    groups = param_groups_weight_decay(m, 0.05, no_weight_decay_list=m.no_weight_decay())
    no_decay = {id(p) for g in groups if g["weight_decay"] == 0 for p in g["params"]}
    names = {n for n, p in m.named_parameters() if id(p) in no_decay}
    assert "levels.0.blocks.0.TreeSSM.A_logs" in names  # 2-D: only excluded by the pattern
    assert "levels.0.blocks.0.TreeSSM.Ds" in names
    assert "levels.0.blocks.0.TreeSSM.x_proj_weight" not in names


def test_reset_classifier():
    m = _small().eval()
    m.reset_classifier(5)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, 5)
    m.reset_classifier(0)
    assert m(torch.randn(1, 3, 32, 32)).shape == (1, m.head_hidden_size)


# ----------------------------------------------------------------------------------------------
# Checkpoints and Hub mixin
# ----------------------------------------------------------------------------------------------


def test_checkpoint_filter_fn_unwraps_and_is_idempotent():
    m = _small()
    native = m.state_dict()
    assert checkpoint_filter_fn(native, m) is native
    ddp = {f"module.{k}": v for k, v in native.items()}
    ema = {k: v + 1 for k, v in native.items() if v.is_floating_point()}
    training = {"model": ddp, "model_ema": {"module": ema}, "epoch": 3, "max_accuracy": 80.0}
    out = checkpoint_filter_fn(training, m)
    assert list(out) == list(native) and all(out[k] is native[k] for k in native)
    assert checkpoint_filter_fn(out, m) is out
    out_ema = checkpoint_filter_fn(training, m, use_ema=True)
    assert set(out_ema) == set(ema) and out_ema["head.bias"] is ema["head.bias"]
    twice_wrapped = {f"module.module.{k}": v for k, v in native.items()}
    nested = checkpoint_filter_fn({"state_dict": twice_wrapped})
    assert list(nested) == list(native)
    m.load_state_dict(out)
    with pytest.raises(TypeError, match="mapping"):
        checkpoint_filter_fn([("a", torch.zeros(1))])


def test_hub_mixin_round_trip(tmp_path):
    m = GrootV(
        channels=16, depths=[1, 1, 1, 1], num_classes=10, in_chans=1, drop_path_rate=0.0, tree_per_stage=True
    ).eval()
    m.save_pretrained(tmp_path)
    assert (tmp_path / "config.json").exists() and (tmp_path / "model.safetensors").exists()
    loaded = GrootV.from_pretrained(tmp_path).eval()
    assert loaded.tree_per_stage and loaded.in_chans == 1 and loaded.num_classes == 10
    x = torch.randn(1, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), m(x))


# ----------------------------------------------------------------------------------------------
# timm
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OUR_NAMES)
def test_timm_registration(name):
    assert name in timm.list_models("*grootv*")
    cfg = timm.models.get_pretrained_cfg(name)
    assert cfg.crop_pct == 1.0 and cfg.crop_mode == "center" and not cfg.hf_hub_id and not cfg.url
    if name == "grootv_nano":  # the bundled Fashion-MNIST model: one grey channel, 28x28
        assert cfg.input_size == (1, 28, 28) and cfg.num_classes == 10 and cfg.mean == (0.2860,)
    else:
        assert cfg.input_size[0] == 3 and cfg.interpolation == "bicubic"


def test_timm_pretrained_cfg_tags_and_preprocessing():
    assert "grootv_tiny.in1k" in timm.list_models("grootv*", include_tags=True)
    cfg = timm.models.get_pretrained_cfg("grootv_tiny.in1k")
    assert cfg.input_size == (3, 224, 224)
    assert cfg.mean == (0.485, 0.456, 0.406) and cfg.std == (0.229, 0.224, 0.225)
    data_cfg = timm.data.resolve_data_config({}, model=timm.create_model("test_grootv"))
    assert data_cfg["crop_pct"] == 1.0


def test_names_do_not_collide_with_timm_models():
    from timm.models._registry import _model_entrypoints

    for name in OUR_NAMES:
        assert _model_entrypoints[name].__module__ == "grootvl_core.models.grootv"
        owners = [
            mod
            for mod_name, mod in list(sys.modules.items())
            if mod_name.startswith("timm.") and mod is not None and hasattr(mod, name)
        ]
        assert owners == [] or all(getattr(o, name).__module__ == "grootvl_core.models.grootv" for o in owners)


def test_timm_create_model_and_features_only():
    m = timm.create_model("test_grootv", num_classes=7, in_chans=1).eval()
    assert isinstance(m, GrootV) and m(torch.randn(1, 1, 32, 32)).shape == (1, 7)
    f = timm.create_model("test_grootv", features_only=True)
    assert f.feature_info.channels() == [16, 32, 64, 128]
    assert f.feature_info.reduction() == [4, 8, 16, 32]
    feats = f(torch.randn(1, 3, 64, 64))
    assert [tuple(t.shape) for t in feats] == [(1, 16, 16, 16), (1, 32, 8, 8), (1, 64, 4, 4), (1, 128, 2, 2)]
    f2 = timm.create_model("test_grootv", features_only=True, out_indices=(1, 2))
    assert [t.shape[1] for t in f2(torch.randn(1, 3, 64, 64))] == [32, 64]
    assert len(f2.model.levels) == 3  # later stages pruned


def test_timm_pretrained_needs_weights(tmp_path):
    with pytest.raises(ValueError, match="grootvl_core.zoo"):
        timm.create_model("test_grootv", pretrained=True)
    src = timm.create_model("test_grootv")
    path = tmp_path / "ckpt.pth"
    torch.save({"model": {f"module.{k}": v for k, v in src.state_dict().items()}, "epoch": 1}, path)
    m = timm.create_model("test_grootv", pretrained=True, pretrained_cfg_overlay=dict(file=str(path)))
    for k, v in src.state_dict().items():
        torch.testing.assert_close(m.state_dict()[k], v)


# ----------------------------------------------------------------------------------------------
# scan_order="raster": the tree-vs-raster ablation
# ----------------------------------------------------------------------------------------------


def test_raster_chain_scan_is_the_causal_row_major_recurrence():
    from grootvl_core import ops
    from grootvl_core.models.tree_ssm import raster_chain

    b, d, h, w = 2, 3, 3, 4
    abar = torch.rand(b, d, h * w, dtype=torch.float64)
    xin = torch.randn(b, d, h * w, dtype=torch.float64)
    chain = raster_chain(b, h, w)
    assert chain.edges.shape == (b, h * w - 1, 2) and chain.order.order[0, 0] == h * w - 1
    y = ops.tree_scan(xin, torch.roll(abar, -1, dims=2), chain.order, "subtree")
    state = torch.zeros(b, d, dtype=torch.float64)
    for t in range(h * w):  # h_t = Abar_t h_{t-1} + x_t in row-major pixel order
        state = abar[..., t] * state + xin[..., t]
        torch.testing.assert_close(y[..., t], state)


def test_raster_model_builds_no_tree_and_round_trips(monkeypatch, tmp_path):
    from grootvl_core.models import tree_ssm

    def no_tree(*args, **kwargs):
        raise AssertionError("scan_order='raster' must not build a spanning tree")

    monkeypatch.setattr(tree_ssm, "build_grid_tree", no_tree)
    model = GrootV(channels=16, depths=[1, 1, 1, 1], num_classes=10, in_chans=1, scan_order="raster")
    x = torch.randn(2, 1, 32, 32)
    model(x).sum().backward()
    model.save_pretrained(tmp_path)
    again = GrootV.from_pretrained(tmp_path)
    assert again.scan_order == "raster"
    model.eval()
    again.eval()
    torch.testing.assert_close(again(x), model(x))
    with pytest.raises(ValueError, match="scan_order"):
        GrootV(channels=16, depths=[1, 1, 1, 1], scan_order="zigzag")


def test_downsample_cached_channels_last_weight_follows_the_weight():
    """The inference-time channels_last weight copy equals the plain conv, and is refreshed when
    the weight changes in place (load_state_dict, an optimizer step) or the module moves dtype."""
    from grootvl_core.models.grootv import DownsampleLayer

    torch.manual_seed(0)
    layer = DownsampleLayer(8).eval()
    x = torch.randn(2, 6, 6, 8)
    plain = lambda: layer.norm(layer.conv(x.permute(0, 3, 1, 2).contiguous()))  # noqa: E731
    with torch.no_grad():
        torch.testing.assert_close(layer(x), plain())
        layer.conv.weight.mul_(-2.0)  # in place: the cache must not serve the old weight
        torch.testing.assert_close(layer(x), plain())
        layer.load_state_dict({k: torch.randn_like(v) for k, v in layer.state_dict().items()})
        torch.testing.assert_close(layer(x), plain())
    with torch.inference_mode():
        torch.testing.assert_close(layer(x), plain())
    layer.double()
    with torch.no_grad():
        torch.testing.assert_close(
            layer(x.double()), plain_double := layer.norm(layer.conv(x.double().permute(0, 3, 1, 2).contiguous()))
        )
        assert plain_double.dtype == torch.float64
    # with autograd the weight gets its gradient as usual
    layer.float().train()
    layer(x).sum().backward()
    assert layer.conv.weight.grad is not None and layer.conv.weight.grad.abs().sum() > 0
    assert "_channels_last_weight" not in dict(layer.state_dict())


def test_training_after_an_inference_mode_call_of_the_same_size():
    """Grid edges are cached per size; a cache entry made under ``torch.inference_mode`` (the app)
    must not make a later training step fail."""
    from grootvl_core.ops import graph

    graph._grid_edges_cpu.cache_clear()
    model = _small()
    x = torch.randn(1, 3, 64, 64)
    with torch.inference_mode():
        model(x)
    model(x).sum().backward()
    assert model.head.weight.grad is not None
