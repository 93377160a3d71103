"""Tokenizers: a tiny BPE ``tokenizer.json`` made with the ``tokenizers`` library, the byte
tokenizer, incremental (streaming) decoding, and loading from folders and the offline Hub cache."""

from __future__ import annotations

import json

import pytest

from grootvl_core.tokenizer import ByteTokenizer, HFTokenizer, IncrementalDecoder, load_tokenizer

TEXTS = ["Hello world, hello trees!", "naïve café — 東京 🌲🌳 ok", "  spaces\n\nand lines\t.", ""]


def make_bpe_folder(folder):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300, special_tokens=["<|endoftext|>"], initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    tok.train_from_iterator(TEXTS * 20 + ["the tree scan of the tree"] * 20, trainer=trainer)
    folder.mkdir(parents=True, exist_ok=True)
    tok.save(str(folder / "tokenizer.json"))
    (folder / "special_tokens_map.json").write_text(
        json.dumps({"eos_token": {"content": "<|endoftext|>"}, "bos_token": "<|endoftext|>"})
    )
    return folder


def stream(tokenizer, ids):
    dec = IncrementalDecoder(tokenizer)
    pieces = [dec.push(i) for i in ids]
    return pieces, "".join(pieces) + dec.flush()


@pytest.fixture(scope="module")
def bpe(tmp_path_factory):
    return load_tokenizer(make_bpe_folder(tmp_path_factory.mktemp("tok")))


@pytest.mark.parametrize("text", TEXTS)
def test_bpe_round_trip_and_streaming(bpe, text):
    assert isinstance(bpe, HFTokenizer)
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    pieces, joined = stream(bpe, ids)
    assert joined == text
    assert all("\ufffd" not in p for p in pieces)  # multi-byte characters never split


def test_bpe_special_tokens(bpe):
    eos = bpe.eos_token_id
    assert eos is not None and bpe.bos_token_id == eos and bpe.pad_token_id is None
    ids = bpe.encode("tree") + [eos]
    assert bpe.decode(ids) == "tree"
    assert bpe.decode(ids, skip_special_tokens=False) == "tree<|endoftext|>"
    assert stream(bpe, ids)[1] == "tree"


def test_byte_level_pieces_are_held_until_complete(bpe):
    ids = bpe.encode("🌲")
    assert len(ids) > 1  # the emoji is several byte tokens in this tiny vocabulary
    dec = IncrementalDecoder(bpe)
    assert [dec.push(i) for i in ids[:-1]] == [""] * (len(ids) - 1)
    assert dec.push(ids[-1]) == "🌲"


@pytest.mark.parametrize("text", TEXTS)
def test_byte_tokenizer_round_trip_and_streaming(text):
    tok = ByteTokenizer()
    ids = tok.encode(text)
    assert ids == list(text.encode("utf-8"))
    assert tok.decode(ids) == text
    pieces, joined = stream(tok, ids + [tok.eos_token_id])
    assert joined == text and all("\ufffd" not in p for p in pieces)


def test_byte_tokenizer_specials_save_and_load(tmp_path):
    tok = ByteTokenizer(special_tokens=["<|endoftext|>", "<|pad|>", "<|sep|>"])
    assert tok.vocab_size == 259 and tok.eos_token_id == 256 and tok.pad_token_id == 257
    assert tok.encode("a", add_special_tokens=True) == [256, 97]
    assert tok.decode([97, 258, 98], skip_special_tokens=False) == "a<|sep|>b"
    assert tok.decode([0xE6, 0x9D]) == "\ufffd"  # incomplete UTF-8
    with pytest.raises(ValueError, match="outside"):
        tok.decode([400])
    loaded = load_tokenizer(tok.save(tmp_path / "m"))
    assert isinstance(loaded, ByteTokenizer)
    assert loaded.special_tokens == tok.special_tokens and loaded.eos_token_id == 256
    with pytest.raises(ValueError, match="not one of the special tokens"):
        ByteTokenizer(eos_token="</s>")


def test_hf_tokenizer_save_and_offline_hub_cache(bpe, tmp_path, monkeypatch):
    import huggingface_hub.constants as hfc

    rev = "f" * 40
    repo = tmp_path / "models--org--tok"
    bpe.save(repo / "snapshots" / rev)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(rev)
    monkeypatch.setattr(hfc, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(hfc, "HF_HUB_CACHE", str(tmp_path))
    tok = load_tokenizer("org/tok")
    assert tok.encode("hello trees") == bpe.encode("hello trees")
    assert tok.eos_token_id == bpe.eos_token_id
    with pytest.raises(OSError, match="could not be fetched"):
        load_tokenizer("org/missing")
    with pytest.raises(OSError, match="no tokenizer.json"):
        load_tokenizer(tmp_path)
