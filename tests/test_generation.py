"""Generation: exact top-k / top-p masks, sampling statistics, seeds, EOS, and streaming text equal
to non-streaming text and to greedy decoding by full recomputation."""

from __future__ import annotations

import pytest
import torch

from grootvl_core.generation import (
    filter_logits,
    format_instruction,
    generate,
    generate_text,
    sample_next_token,
    stream_ids,
    stream_text,
)
from grootvl_core.models.grootl import GrootL, GrootLConfig
from grootvl_core.tokenizer import ByteTokenizer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GrootL(GrootLConfig(vocab_size=258, hidden_size=32, num_hidden_layers=2, state_size=8))
    return m.eval()


def test_top_k_and_top_p_masks_are_exact():
    probs = torch.tensor([[0.05, 0.5, 0.15, 0.3], [0.25, 0.25, 0.25, 0.25]])
    logits = probs.log()
    kept = torch.isfinite(filter_logits(logits, top_k=2))
    assert kept.tolist() == [[False, True, False, True], [True, True, True, True]]  # ties kept
    kept = torch.isfinite(filter_logits(logits, top_p=0.75))
    assert kept[0].tolist() == [False, True, False, True]  # 0.5 + 0.3 reaches 0.75
    kept = torch.isfinite(filter_logits(logits, top_p=0.1))
    assert kept[0].tolist() == [False, True, False, False]  # at least the top token
    kept = torch.isfinite(filter_logits(logits, top_k=3, top_p=0.9))
    assert kept[0].tolist() == [False, True, True, True]
    assert torch.equal(filter_logits(logits), logits)
    with pytest.raises(ValueError, match="top_p"):
        filter_logits(logits, top_p=1.5)
    with pytest.raises(ValueError, match="top_k"):
        filter_logits(logits, top_k=-1)


def test_sampling_respects_masks_and_distribution():
    probs = torch.tensor([0.05, 0.5, 0.15, 0.3])
    logits = probs.log()[None].expand(4000, -1)
    gen = torch.Generator().manual_seed(0)
    draws = sample_next_token(logits, temperature=1.0, top_k=2, generator=gen)
    assert set(draws.tolist()) == {1, 3}
    freq = (draws == 1).float().mean().item()
    assert abs(freq - 0.5 / 0.8) < 0.03
    draws = sample_next_token(logits, temperature=1.0, generator=gen)
    counts = torch.bincount(draws, minlength=4).float() / len(draws)
    torch.testing.assert_close(counts, probs, atol=0.03, rtol=0)
    assert torch.equal(sample_next_token(logits[:3], temperature=0), torch.tensor([1, 1, 1]))
    with pytest.raises(ValueError, match="temperature"):
        sample_next_token(logits, temperature=-1)


def test_greedy_generation_equals_full_recomputation(model):
    prompt = torch.tensor([[5, 17, 99, 3], [1, 2, 3, 4]])
    out = generate(model, prompt, max_new_tokens=6)
    assert out.shape == (2, 10) and torch.equal(out[:, :4], prompt)
    seq = prompt
    with torch.no_grad():
        for _ in range(6):
            nxt = model(seq, context_lengths=4).logits[:, -1].argmax(-1)
            seq = torch.cat([seq, nxt[:, None]], 1)
    assert torch.equal(out, seq)


def test_seeded_sampling_is_reproducible_and_eos_stops(model):
    prompt = torch.tensor([[10, 20, 30]])
    a = generate(model, prompt, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1)
    b = generate(model, prompt, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1)
    assert torch.equal(a, b)
    eos = int(a[0, 5])  # the third generated token: generation must stop there
    c = generate(model, prompt, max_new_tokens=8, temperature=1.0, top_p=0.95, seed=1, eos_token_id=eos)
    first = a[0, 3:].tolist().index(eos)
    assert c[0, 3:].tolist() == a[0, 3 : 4 + first].tolist()
    assert list(stream_ids(model, prompt, max_new_tokens=0)) == []
    with pytest.raises(ValueError, match="empty"):
        next(stream_ids(model, torch.zeros(1, 0, dtype=torch.long)))


def test_streaming_text_equals_non_streaming(model):
    tok = ByteTokenizer()
    pieces = list(stream_text(model, tok, "Trees: ", max_new_tokens=24, temperature=0.9, seed=3))
    text = generate_text(model, tok, "Trees: ", max_new_tokens=24, temperature=0.9, seed=3)
    assert "".join(pieces) == text
    ids = generate(
        model,
        torch.tensor([tok.encode("Trees: ")]),
        max_new_tokens=24,
        temperature=0.9,
        seed=3,
        eos_token_id=tok.eos_token_id,
    )
    assert text == tok.decode(ids[0, len(tok.encode("Trees: ")) :].tolist())
    with pytest.raises(ValueError, match="empty"):
        list(stream_text(model, tok, "   "))
    with pytest.raises(ValueError, match="limit"):
        list(stream_text(model, tok, "x" * 50, max_prompt_tokens=10))


def test_instruction_template():
    assert format_instruction("Add 2 and 3.") == "### Instruction:\nAdd 2 and 3.\n\n### Response:"
    assert format_instruction("Sum.", "2, 3") == ("### Instruction:\nSum.\n\n### Input:\n2, 3\n\n### Response:")


def test_cli_generate_streams_the_same_text(model, tmp_path, capsys):
    from grootvl_core.cli import main

    folder = model.save_pretrained(tmp_path / "lm")
    tok = ByteTokenizer()
    tok.save(folder)
    args = [
        "generate",
        "--model",
        "grootl-130m",
        "--weights",
        str(folder),
        "--max-new-tokens",
        "12",
        "--temperature",
        "0.8",
        "--top-k",
        "50",
        "--top-p",
        "0.9",
        "--seed",
        "7",
        "Once upon",
    ]
    assert main(args) == 0
    want = generate_text(model, tok, "Once upon", max_new_tokens=12, temperature=0.8, top_k=50, top_p=0.9, seed=7)
    assert capsys.readouterr().out == want + "\n"
    assert main(["generate", "--model", "grootl-130m", "--weights", str(folder), "  "]) == 1
    assert "empty" in capsys.readouterr().err
    assert main(["generate", "--model", "grootv-t", "hi"]) == 1
    assert "classification model" in capsys.readouterr().err


def test_zoo_language_entries(model, tmp_path, monkeypatch):
    import json

    from grootvl_core import zoo
    from grootvl_core.models import GrootL, MambaLM

    assert zoo.list_models("generation") == ["grootl-nano-fortunes", "mamba-130m", "grootl-130m"]
    mamba, grootl = zoo.get_entry("mamba-130m"), zoo.get_entry("grootl-130m")
    assert zoo.hub_repo_id(mamba) == "state-spaces/mamba-130m-hf"
    assert grootl.official.gdrive_id == "1oby7sHYUxg4TIqFjIXSk8GB98fa9kSBm"
    assert (mamba.metrics["PIQA"], grootl.metrics["PIQA"], grootl.metrics["LAMBADA ppl"]) == (64.5, 65.0, 15.9)
    # mamba-130m from an offline Hub snapshot whose config.json has no tree_scale: plain Mamba
    rev = "a" * 40
    repo = tmp_path / "hf" / "models--state-spaces--mamba-130m-hf"
    snap = model.save_pretrained(repo / "snapshots" / rev)
    config = json.loads((snap / "config.json").read_text())
    del config["tree_scale"]
    (snap / "config.json").write_text(json.dumps(config))
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setenv("GROOTVL_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("GROOTVL_CHECKPOINTS", str(tmp_path / "none"))
    loaded = zoo.load_model("mamba-130m")
    assert isinstance(loaded, MambaLM) and loaded.config.tree_scale == 0.0
    ids = torch.tensor([[1, 2, 3, 4, 5]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, GrootL.from_pretrained(snap, tree_scale=0.0)(ids).logits)
