"""GrootL (reference-grootvl.md section 4): keys, plain-Mamba equivalence, the feature tree against
the published flipped formulation, per-sample contexts, cached decoding, Hub-format loading.

The oracles here are written from the reference's description and share no code with the package:
a sequential Mamba recurrence (HF ``slow_forward``), and the published flip/roll mixer with its
``generate_pairs`` edge list, a Kruskal MST and brute-force subtree sums.
"""

from __future__ import annotations

import copy
import json
import math

import pytest
import torch
import torch.nn.functional as F

from grootvl_core.models.grootl import GrootL, GrootLCache, GrootLConfig, checkpoint_filter_fn
from grootvl_core.models.grootl_tree import band_graph_edges, feature_tree

VOCAB = 300


def tiny_config(**kw) -> GrootLConfig:
    base = dict(vocab_size=VOCAB, hidden_size=32, num_hidden_layers=2, state_size=8)
    base.update(kw)
    return GrootLConfig(**base)


def tiny_model(seed: int = 0, **kw) -> GrootL:
    torch.manual_seed(seed)
    model = GrootL(tiny_config(**kw)).eval()
    with torch.no_grad():  # larger dt so that Abar is far from 1 and the trees matter
        for layer in model.backbone.layers:
            layer.mixer.dt_proj.bias.add_(2.0)
    return model


# ----------------------------------------------------------------------------------------------
# Oracles
# ----------------------------------------------------------------------------------------------


def generate_pairs(length: int, context: int) -> list[tuple[int, int]]:
    """The published edge list in FLIPPED coordinates (reference 4.3 step 9)."""
    L, P = length, context
    pairs = [(i, i + 1) for i in range(L - P)]
    for i in range(L - P, L - 3):
        pairs += [(i, i + 1), (i, i + 2), (i, i + 3)]
    pairs += [(L - 3, L - 2), (L - 3, L - 1), (L - 2, L - 1)]
    return pairs


def kruskal(pairs, weights: list[float], n: int) -> list[tuple[int, int]]:
    order = sorted(range(len(pairs)), key=lambda e: (weights[e], e))
    uf = list(range(n))

    def find(v):
        while uf[v] != v:
            v = uf[v]
        return v

    tree = []
    for e in order:
        s, t = pairs[e]
        rs, rt = find(s), find(t)
        if rs != rt:
            uf[rs] = rt
            tree.append((s, t))
    return tree


def subtree_sums(tree_edges, root: int, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``y_v = sum over j in subtree(v) of S(v, j) x_j``; edge weight from the child (vertex) side.
    ``x``, ``w``: (C, V)."""
    n = x.shape[1]
    adj = [[] for _ in range(n)]
    for s, t in tree_edges:
        adj[s].append(t)
        adj[t].append(s)
    par = [-1] * n
    seen = {root}
    stack = [root]
    while stack:
        v = stack.pop()
        for u in adj[v]:
            if u not in seen:
                seen.add(u)
                par[u] = v
                stack.append(u)
    y = torch.zeros_like(x)
    for j in range(n):
        v, prod = j, torch.ones_like(x[:, 0])
        y[:, v] += x[:, j]
        while par[v] >= 0:
            prod = prod * w[:, v]
            v = par[v]
            y[:, v] += prod * x[:, j]
    return y


def published_mixer(mixer, hidden: torch.Tensor, context: int | None, scale: float) -> torch.Tensor:
    """The published ``tree_scanning_algorithm`` for ONE sample (B=1), flipped coordinates."""
    (_, length, _), d, n = hidden.shape, mixer.intermediate_size, mixer.state_size
    proj = mixer.in_proj(hidden).transpose(1, 2)
    x, gate = proj.chunk(2, dim=1)
    u = F.silu(mixer.conv1d(x)[..., :length])
    params = mixer.x_proj(u.transpose(1, 2))
    dt, bm, cm = torch.split(params, [mixer.time_step_rank, n, n], dim=-1)
    delta = F.softplus(mixer.dt_proj(dt)).transpose(1, 2)
    a = -torch.exp(mixer.A_log.float())
    abar = torch.exp(a[None, :, None, :] * delta[:, :, :, None])  # (1, D, L, N)
    bu = delta[:, :, :, None] * bm[:, None] * u[:, :, :, None]
    feat = bu.permute(0, 1, 3, 2).reshape(1, d * n, length)[0]  # (DN, L)
    wgt = abar.permute(0, 1, 3, 2).reshape(1, d * n, length)[0]
    feat_f = torch.flip(feat, [1])
    wgt_f = torch.roll(torch.flip(wgt, [1]), 1, 1)
    chain = [(i, i + 1) for i in range(length - 1)]
    out1 = subtree_sums(chain, 0, feat_f, wgt_f)
    out = out1
    if scale:
        if context is not None and context > 2:
            pairs = generate_pairs(length, context)
            cos = [float(F.cosine_similarity(feat_f[:, s], feat_f[:, t], dim=0)) for s, t in pairs]
            w32 = torch.exp(-torch.tensor(cos, dtype=torch.float32)).tolist()
            out2 = subtree_sums(kruskal(pairs, w32, length), 0, feat_f, wgt_f)
        else:
            out2 = out1
        out = out1 + scale * out2
    h = torch.flip(out, [1]).reshape(d, n, length)
    y = (h[None] * cm.transpose(1, 2)[:, None]).sum(2)
    y = (y + u * mixer.D[None, :, None]) * F.silu(gate)
    return mixer.out_proj(y.transpose(1, 2))


def sequential_mamba_logits(model: GrootL, ids: torch.Tensor) -> torch.Tensor:
    """Plain Mamba, token by token (HF ``MambaMixer.slow_forward`` recurrence)."""
    cfg = model.config
    bb = model.backbone
    hidden = bb.embeddings(ids)
    _, length, _ = hidden.shape
    for layer in bb.layers:
        mx = layer.mixer
        res = hidden.float()
        var = hidden.pow(2).mean(-1, keepdim=True)
        normed = layer.norm.weight * (hidden * torch.rsqrt(var + cfg.layer_norm_epsilon))
        proj = mx.in_proj(normed).transpose(1, 2)
        x, gate = proj.chunk(2, dim=1)
        u = F.silu(mx.conv1d(x)[..., :length])
        params = mx.x_proj(u.transpose(1, 2))
        dt, bm, cm = torch.split(params, [mx.time_step_rank, cfg.state_size, cfg.state_size], -1)
        delta = F.softplus(mx.dt_proj(dt)).transpose(1, 2)
        a = -torch.exp(mx.A_log)
        state = torch.zeros(ids.shape[0], cfg.intermediate_size, cfg.state_size)
        ys = []
        for t in range(length):
            da = torch.exp(a[None] * delta[:, :, t, None])
            state = da * state + delta[:, :, t, None] * bm[:, None, t] * u[:, :, t, None]
            ys.append((state @ cm[:, t, :, None])[..., 0])
        y = torch.stack(ys, -1) + u * mx.D[None, :, None]
        y = y * F.silu(gate)
        hidden = res + mx.out_proj(y.transpose(1, 2))
    var = hidden.pow(2).mean(-1, keepdim=True)
    hidden = bb.norm_f.weight * (hidden * torch.rsqrt(var + cfg.layer_norm_epsilon))
    return hidden @ bb.embeddings.weight.T


# ----------------------------------------------------------------------------------------------
# Keys and config
# ----------------------------------------------------------------------------------------------


def test_mamba_130m_state_dict_keys_and_count():
    with torch.device("meta"):
        model = GrootL(GrootLConfig())
    sd = model.state_dict()
    assert len(sd) == 243
    shapes = {
        "backbone.embeddings.weight": (50280, 768),
        "backbone.layers.0.norm.weight": (768,),
        "backbone.layers.23.mixer.A_log": (1536, 16),
        "backbone.layers.5.mixer.D": (1536,),
        "backbone.layers.0.mixer.conv1d.weight": (1536, 1, 4),
        "backbone.layers.0.mixer.conv1d.bias": (1536,),
        "backbone.layers.0.mixer.in_proj.weight": (3072, 768),
        "backbone.layers.0.mixer.x_proj.weight": (80, 1536),
        "backbone.layers.0.mixer.dt_proj.weight": (1536, 48),
        "backbone.layers.0.mixer.dt_proj.bias": (1536,),
        "backbone.layers.0.mixer.out_proj.weight": (768, 1536),
        "backbone.norm_f.weight": (768,),
        "lm_head.weight": (50280, 768),
    }
    for k, s in shapes.items():
        assert tuple(sd[k].shape) == s, k
    assert sum(p.numel() for p in model.parameters()) == 129_135_360
    assert model.lm_head.weight is model.backbone.embeddings.weight


def test_config_reads_hf_config_json_and_round_trips():
    hf = {
        "architectures": ["MambaForCausalLM"],
        "model_type": "mamba",
        "hidden_size": 64,
        "num_hidden_layers": 3,
        "vocab_size": 123,
        "state_size": 4,
        "time_step_rank": 5,
        "intermediate_size": 100,
        "fused_add_norm": True,
        "torch_dtype": "float32",
    }
    cfg = GrootLConfig.from_dict(hf, tree_scale=0.0)
    assert (cfg.hidden_size, cfg.intermediate_size, cfg.time_step_rank, cfg.tree_scale) == (64, 100, 5, 0.0)
    assert cfg.extra["fused_add_norm"] is True
    again = GrootLConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    assert GrootLConfig(hidden_size=40).time_step_rank == 3
    with pytest.raises(TypeError, match="unknown override"):
        GrootLConfig.from_dict(hf, tree_scal=0.1)
    with pytest.raises(ValueError, match="hidden_act"):
        GrootLConfig(hidden_act="tanhh")


# ----------------------------------------------------------------------------------------------
# Mixer semantics
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
def test_tree_scale_zero_is_plain_mamba():
    model = tiny_model(tree_scale=0.0)
    ids = torch.randint(0, VOCAB, (2, 13))
    got = model(ids, context_lengths=[13, 6]).logits
    torch.testing.assert_close(got, sequential_mamba_logits(model, ids), rtol=1e-4, atol=1e-4)


def test_band_graph_edges_match_published_example():
    flipped = [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [4, 6], [4, 7], [5, 6], [5, 7], [6, 7]]
    assert generate_pairs(8, 4) == [tuple(p) for p in flipped]
    expected = [[7 - s, 7 - t] for s, t in flipped]
    assert band_graph_edges(8, 4).tolist() == expected
    for L, P in [(9, 3), (9, 9), (12, 7), (5, 5)]:
        mapped = [[L - 1 - s, L - 1 - t] for s, t in generate_pairs(L, P)]
        assert band_graph_edges(L, P).tolist() == mapped
        assert len(mapped) == L + 2 * P - 6
    chain = [[8 - i, 7 - i] for i in range(8)]
    for p in (0, 1, 2):
        assert band_graph_edges(9, p).tolist() == chain


@torch.no_grad()
@pytest.mark.parametrize("length,context", [(9, 9), (12, 5), (10, 3)])
def test_mixer_matches_published_flipped_algorithm(length, context):
    model = tiny_model(seed=length)
    mixer = model.backbone.layers[0].mixer
    hidden = torch.randn(1, length, 32)
    got = mixer(hidden, [context])
    want = published_mixer(mixer, hidden, context, 0.3)
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    if context > 3:  # ... and tree 2 matters (a triangle's MST may happen to be the chain)
        chain_only = published_mixer(mixer, hidden, None, 0.3)
        assert (got - chain_only).abs().max() > 1e-4


def test_feature_tree_is_a_spanning_tree_of_the_band_graph():
    feat = torch.randn(3, 20, 11)
    tree = feature_tree(feat, [11, 4, 2])
    for b, p in enumerate([11, 4, 2]):
        order, parent = tree.order[b].tolist(), tree.parent[b].tolist()
        assert order[0] == 10 and sorted(order) == list(range(11))
        allowed = {tuple(e) for e in band_graph_edges(11, p).tolist()}
        for i in range(1, 11):
            v, par = order[i], order[parent[i]]
            assert (v, par) in allowed or (par, v) in allowed
        if p <= 2:  # the chain: parent(t) = t + 1
            assert all(order[parent[i]] == order[i] + 1 for i in range(1, 11))


@torch.no_grad()
@pytest.mark.parametrize("context", [0, 1, 2])
def test_short_context_is_chain_scaled_by_one_plus_tree_scale(context):
    """Published behaviour kept (reference 6.3): P <= 2 gives 1.3 x the chain's SSM term."""
    model = tiny_model(tree_scale=0.3)
    plain = copy.deepcopy(model)
    n, r = model.config.state_size, model.config.time_step_rank
    for layer in plain.backbone.layers:
        layer.mixer.tree_scale = 0.0
        layer.mixer.x_proj.weight[r + n :] *= 1.3  # C rows: y = C.(1.3 h) + D u
    ids = torch.randint(0, VOCAB, (1, 7))
    torch.testing.assert_close(model(ids, context_lengths=[context]).logits, plain(ids).logits, rtol=1e-4, atol=1e-4)


@torch.no_grad()
def test_context_longer_than_sequence_is_clamped():
    model = tiny_model()
    ids = torch.randint(0, VOCAB, (2, 8))
    torch.testing.assert_close(model(ids, context_lengths=[50, 8]).logits, model(ids, context_lengths=8).logits)
    with pytest.raises(ValueError, match="one value per sample"):
        model(ids, context_lengths=[3])
    with pytest.raises(ValueError, match=">= 0"):
        model(ids, context_lengths=[-1, 3])


@torch.no_grad()
def test_per_sample_context_in_right_padded_batch():
    model = tiny_model()
    torch.manual_seed(3)
    lengths, contexts = [11, 7, 9], [6, 7, 3]
    seqs = [torch.randint(1, VOCAB, (n,)) for n in lengths]
    batch = torch.zeros(3, 11, dtype=torch.long)
    for b, s in enumerate(seqs):
        batch[b, : len(s)] = s
    logits = model(batch, context_lengths=torch.tensor(contexts)).logits
    for b, s in enumerate(seqs):
        alone = model(s[None], context_lengths=[contexts[b]]).logits[0]
        torch.testing.assert_close(logits[b, : len(s)], alone, rtol=1e-4, atol=1e-4)
    # the contexts matter: a batch-wide minimum (published) changes the result
    wrong = model(batch, context_lengths=[3, 3, 3]).logits
    assert (wrong[0, :11] - logits[0, :11]).abs().max() > 1e-4


def test_labels_give_context_and_loss_with_gradients():
    model = tiny_model()
    model.train()
    ids = torch.randint(0, VOCAB, (2, 9))
    labels = ids.clone()
    labels[0, :5] = -100
    labels[1, :3] = -100
    out = model(ids, labels=labels)
    with torch.no_grad():
        ref = model(ids, context_lengths=[5, 3])
    torch.testing.assert_close(out.logits, ref.logits)
    want = F.cross_entropy(ref.logits[:, :-1].reshape(-1, VOCAB), labels[:, 1:].reshape(-1), ignore_index=-100)
    torch.testing.assert_close(out.loss, want)
    out.loss.backward()
    mixer = model.backbone.layers[0].mixer
    for p in (mixer.A_log, mixer.x_proj.weight, mixer.dt_proj.bias, model.backbone.embeddings.weight):
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0


# ----------------------------------------------------------------------------------------------
# Cached decoding
# ----------------------------------------------------------------------------------------------


@torch.no_grad()
@pytest.mark.parametrize("tree_scale", [0.3, 0.0])
@pytest.mark.parametrize("prompt_len", [1, 2, 3, 4, 6])
def test_cached_decoding_equals_full_recomputation(prompt_len, tree_scale):
    model = tiny_model(seed=prompt_len, tree_scale=tree_scale)
    prompt = torch.randint(0, VOCAB, (2, prompt_len))
    cache = model.allocate_cache(2)
    logits = model.prefill(prompt, cache)
    seq = prompt
    for _ in range(5):
        full = model(seq, context_lengths=prompt_len).logits[:, -1]
        torch.testing.assert_close(logits, full, rtol=1e-4, atol=1e-4)
        nxt = logits.argmax(-1)
        assert torch.equal(nxt, full.argmax(-1))
        seq = torch.cat([seq, nxt[:, None]], dim=1)
        logits = model.step(nxt, cache)
    assert cache.seqlen_offset == prompt_len + 5


@torch.no_grad()
def test_cache_is_preallocated_updated_in_place_and_resettable():
    model = tiny_model()
    cache = model.allocate_cache(1)
    cfg = model.config
    assert isinstance(cache, GrootLCache)
    assert cache.conv_states[0].shape == (1, cfg.intermediate_size, cfg.conv_kernel)
    assert cache.ssm_states[1].shape == cache.tree_states[1].shape == (1, cfg.intermediate_size, cfg.state_size)
    ptrs = [t.data_ptr() for t in (*cache.conv_states, *cache.ssm_states, *cache.tree_states)]
    with pytest.raises(RuntimeError, match="prefill"):
        model.step(torch.tensor([1]), cache)
    first = model.prefill(torch.tensor([[5, 6, 7, 8]]), cache)
    model.step(torch.tensor([3]), cache)
    assert [t.data_ptr() for t in (*cache.conv_states, *cache.ssm_states, *cache.tree_states)] == ptrs
    assert cache.tree_states[0].abs().sum() > 0 and cache.seqlen_offset == 5
    cache.reset()
    assert cache.seqlen_offset == 0 and all(t.abs().sum() == 0 for t in cache.ssm_states)
    torch.testing.assert_close(model.prefill(torch.tensor([[5, 6, 7, 8]]), cache), first)
    with pytest.raises(ValueError, match="batch size"):
        model(torch.tensor([[1], [2]]), cache=cache)


# ----------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------


def _write_hub_cache(root, repo_id: str, model: GrootL, weights: str = "safetensors"):
    rev = "0123456789abcdef0123456789abcdef01234567"
    repo_dir = root / f"models--{repo_id.replace('/', '--')}"
    snap = repo_dir / "snapshots" / rev
    model.save_pretrained(snap)
    if weights == "bin":
        sd = {k: v for k, v in model.state_dict().items()}  # with lm_head.weight, as old HF files
        torch.save(sd, snap / "pytorch_model.bin")
        (snap / "model.safetensors").unlink()
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / "main").write_text(rev)
    return snap


@torch.no_grad()
def test_save_and_load_folder_round_trip(tmp_path):
    model = tiny_model()
    folder = model.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    assert config["model_type"] == "mamba" and config["vocab_size"] == VOCAB
    from safetensors.torch import load_file

    keys = set(load_file(str(folder / "model.safetensors")))
    assert "lm_head.weight" not in keys and "backbone.embeddings.weight" in keys
    loaded = GrootL.from_pretrained(folder)
    ids = torch.randint(0, VOCAB, (1, 6))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    plain = GrootL.from_pretrained(folder, tree_scale=0.0)
    assert plain.config.tree_scale == 0.0


@torch.no_grad()
@pytest.mark.parametrize("weights", ["safetensors", "bin"])
def test_load_from_offline_hub_cache(tmp_path, monkeypatch, weights):
    import huggingface_hub.constants as hfc

    model = tiny_model()
    _write_hub_cache(tmp_path, "org/name", model, weights)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path))
    loaded = GrootL.from_pretrained("org/name")
    ids = torch.randint(0, VOCAB, (1, 5))
    torch.testing.assert_close(loaded(ids).logits, model(ids).logits)
    also = GrootL.from_pretrained("org/name", cache_dir=tmp_path)
    torch.testing.assert_close(also(ids).logits, model(ids).logits)
    with pytest.raises(OSError, match="could not get 'org/absent'"):
        GrootL.from_pretrained("org/absent")


def test_wrong_vocab_and_key_mismatches_fail_clearly(tmp_path):
    model = tiny_model()
    folder = model.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["vocab_size"] = VOCAB + 8
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"vocab_size=308 .* 300 rows"):
        GrootL.from_pretrained(folder)

    sd = dict(model.state_dict())
    del sd["backbone.layers.1.mixer.D"]
    sd["backbone.layers.1.mixer.extra"] = torch.zeros(1)
    fresh = GrootL(tiny_config())
    with pytest.raises(ValueError) as err:
        fresh.load_checkpoint(sd)
    assert "backbone.layers.1.mixer.D" in str(err.value)
    assert "backbone.layers.1.mixer.extra" in str(err.value)
    sd = dict(model.state_dict())
    sd["backbone.layers.0.mixer.A_log"] = torch.zeros(3, 3)
    with pytest.raises(ValueError, match=r"A_log: checkpoint \(3, 3\)"):
        fresh.load_checkpoint(sd)
    with pytest.raises(OSError, match="no weights"):
        (folder / "model.safetensors").unlink()
        GrootL.from_pretrained(folder)


def test_checkpoint_filter_fn_is_idempotent():
    model = tiny_model()
    sd = model.state_dict()
    old = {("backbone.embedding.weight" if k == "backbone.embeddings.weight" else k): v for k, v in sd.items()}
    once = checkpoint_filter_fn({"model": old})
    assert set(once) == set(sd)
    assert checkpoint_filter_fn(once) == once
    assert math.isclose(float(once["backbone.embeddings.weight"].sum()), float(sd["backbone.embeddings.weight"].sum()))


def test_mamba_lm_defaults_to_plain_and_factories(tmp_path):
    from grootvl_core.models.grootl import MambaLM, grootl_130m, mamba_130m

    model = tiny_model()
    folder = model.save_pretrained(tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    del config["tree_scale"]  # as in state-spaces/mamba-130m-hf
    (folder / "config.json").write_text(json.dumps(config))
    assert MambaLM.from_pretrained(folder).config.tree_scale == 0.0
    assert GrootL.from_pretrained(folder, map_location="cpu").config.tree_scale == 0.3
    with torch.device("meta"):
        assert mamba_130m().config.tree_scale == 0.0 and isinstance(mamba_130m(), MambaLM)
        assert grootl_130m().config.tree_scale == 0.3
    with pytest.raises(ValueError, match="zoo"):
        grootl_130m(pretrained=True)
    sd = {k: v for k, v in model.state_dict().items() if k != "lm_head.weight"}
    filled = checkpoint_filter_fn(sd, model)
    assert filled["lm_head.weight"] is sd["backbone.embeddings.weight"]


def test_push_to_hub_uploads_the_saved_folder(monkeypatch):
    """push_to_hub is huggingface_hub's mixin: the uploaded folder is save_pretrained's (HF Mamba config)."""
    import types

    import huggingface_hub

    calls = {}

    def fake_create_repo(self, repo_id, private=None, exist_ok=False, repo_type=None, **kwargs):
        calls["create"] = (repo_id, exist_ok, repo_type or "model")
        calls["token"] = self.token
        return types.SimpleNamespace(repo_id=repo_id)

    def fake_upload_folder(self, *, repo_id, folder_path, commit_message="", revision=None, **kwargs):
        from pathlib import Path

        calls["files"] = sorted(p.name for p in Path(folder_path).iterdir())
        calls["config"] = json.loads((Path(folder_path) / "config.json").read_text())
        return "commit-info"

    monkeypatch.setattr(huggingface_hub.HfApi, "create_repo", fake_create_repo)
    monkeypatch.setattr(huggingface_hub.HfApi, "upload_folder", fake_upload_folder)
    model = tiny_model()
    assert model.push_to_hub("me/tiny-grootl", token="t") == "commit-info"
    assert calls["create"] == ("me/tiny-grootl", True, "model") and calls["token"] == "t"
    assert (
        {"config.json", "model.safetensors"} <= set(calls["files"]) <= {"config.json", "model.safetensors", "README.md"}
    )
    assert calls["config"]["tree_scale"] == 0.3 and calls["config"]["architectures"] == ["MambaForCausalLM"]


def test_factorised_cosines_equal_the_full_feature_cosines():
    """Bbar u is an outer product per token, so its cosines factorise (grootl_tree._cosine_by_offset)."""
    from grootvl_core.models.grootl_tree import _cosine_by_offset

    g = torch.Generator().manual_seed(0)
    x, b = torch.randn(2, 7, 12, generator=g), torch.randn(2, 5, 12, generator=g)
    x[0, :, 3] = 0  # a zero vector exercises the eps clamp
    feature = (x[:, :, None, :] * b[:, None]).reshape(2, 35, 12)
    full = _cosine_by_offset(feature, 3)
    fact = _cosine_by_offset(feature, 3, factors=(x, b))
    for f, c in zip(full, fact):
        torch.testing.assert_close(c, f, rtol=1e-5, atol=1e-6)
    ctx = [12, 9]
    assert all(
        torch.equal(t1, t2) for t1, t2 in zip(feature_tree(feature, ctx), feature_tree(feature, ctx, factors=(x, b)))
    )


@pytest.mark.parametrize("tree_scale", [0.0, 0.3])
def test_training_after_an_inference_mode_call_of_the_same_shape(tree_scale):
    """The chain and band-graph tensors are cached across calls; one made under
    ``torch.inference_mode`` (the app's generation) must not break a later backward pass."""
    from grootvl_core.models import grootl_tree

    grootl_tree._chain_tree_cpu.cache_clear()
    grootl_tree._band_graph_edges_cpu.cache_clear()
    model = tiny_model(tree_scale=tree_scale)
    ids = torch.randint(0, VOCAB, (1, 7))
    with torch.inference_mode():
        model(ids)
    model(ids).logits.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    tree = grootl_tree.chain_tree(1, 7)
    tree.parent[0, 0] = 5  # a caller's tree is its own: the cache is untouched
    assert grootl_tree.chain_tree(1, 7).parent[0, 0] == 0
