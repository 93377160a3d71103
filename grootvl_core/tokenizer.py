"""Tokenizers for the language models: a Hugging Face ``tokenizer.json`` loader and a byte tokenizer.

- :class:`HFTokenizer` wraps ``tokenizers.Tokenizer`` (no ``transformers``) read from a model folder or
  Hub repo, e.g. the GPT-NeoX BPE of ``state-spaces/mamba-130m-hf`` (reference 4.1: bos/eos/unk are
  ``<|endoftext|>``, no pad token).
- :class:`ByteTokenizer` is 256 byte ids plus special tokens, for the models this project trains
  itself; it is saved beside the model as ``tokenizer_config.json``.
- :class:`IncrementalDecoder` turns a stream of token ids into text pieces as they are produced,
  holding back bytes of an incomplete UTF-8 character or BPE piece until it is complete.

``load_tokenizer(folder_or_repo_id)`` picks the right one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["ByteTokenizer", "HFTokenizer", "IncrementalDecoder", "load_tokenizer"]

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"
SPECIAL_TOKENS_MAP_FILE = "special_tokens_map.json"


def _token_content(value) -> str | None:
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


class HFTokenizer:
    """A ``tokenizers.Tokenizer`` with the special tokens named by its folder's config files.

    Args:
        tokenizer: the loaded ``tokenizers.Tokenizer``.
        eos_token, bos_token, pad_token: special token strings (``None`` if the model has none).
    """

    def __init__(
        self, tokenizer, eos_token: str | None = None, bos_token: str | None = None, pad_token: str | None = None
    ) -> None:
        self._tok = tokenizer
        self.eos_token, self.bos_token, self.pad_token = eos_token, bos_token, pad_token
        self.eos_token_id = self._id(eos_token)
        self.bos_token_id = self._id(bos_token)
        self.pad_token_id = self._id(pad_token)

    def _id(self, token: str | None) -> int | None:
        return None if token is None else self._tok.token_to_id(token)

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> HFTokenizer:
        """Read ``tokenizer.json`` and the special tokens from ``special_tokens_map.json`` /
        ``tokenizer_config.json`` (falling back to ``<|endoftext|>`` when it is in the vocabulary)."""
        from tokenizers import Tokenizer

        folder = Path(folder)
        tok = Tokenizer.from_file(str(folder / TOKENIZER_FILE))
        specials: dict[str, str | None] = {}
        for name in (TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE):  # the map wins
            path = folder / name
            if path.is_file():
                with open(path, encoding="utf-8") as f:
                    data = json.load(f)
                for key in ("eos_token", "bos_token", "pad_token"):
                    if _token_content(data.get(key)) is not None:
                        specials[key] = _token_content(data.get(key))
        if "eos_token" not in specials and tok.token_to_id("<|endoftext|>") is not None:
            specials["eos_token"] = "<|endoftext|>"
        return cls(tok, **specials)

    @property
    def vocab_size(self) -> int:
        """Number of ids, added tokens included."""
        return self._tok.get_vocab_size(with_added_tokens=True)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """Token ids of ``text`` (no BOS added by default, as the GPT-NeoX tokenizer)."""
        if not isinstance(text, str):
            raise TypeError(f"encode: text must be a str, got {type(text).__name__}")
        return self._tok.encode(text, add_special_tokens=add_special_tokens).ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids`` (a partial UTF-8 character at the end decodes to U+FFFD)."""
        return self._tok.decode([int(i) for i in ids], skip_special_tokens=skip_special_tokens)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``tokenizer.json`` and ``special_tokens_map.json`` into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self._tok.save(str(folder / TOKENIZER_FILE))
        specials = {
            k: v
            for k, v in (("eos_token", self.eos_token), ("bos_token", self.bos_token), ("pad_token", self.pad_token))
            if v is not None
        }
        with open(folder / SPECIAL_TOKENS_MAP_FILE, "w", encoding="utf-8") as f:
            json.dump(specials, f, indent=2)
        return folder


class ByteTokenizer:
    """UTF-8 bytes as ids ``0..255``, then the special tokens (``256, 257, ...``).

    Args:
        special_tokens: special token strings, in id order from 256 (default:
            ``("<|endoftext|>", "<|pad|>")``, the first being EOS and BOS).
        eos_token, bos_token, pad_token: which special tokens play these roles.
    """

    tokenizer_class = "ByteTokenizer"

    def __init__(
        self,
        special_tokens: Iterable[str] = ("<|endoftext|>", "<|pad|>"),
        eos_token: str | None = "<|endoftext|>",
        bos_token: str | None = "<|endoftext|>",
        pad_token: str | None = "<|pad|>",
    ) -> None:
        self.special_tokens = list(special_tokens)
        if len(set(self.special_tokens)) != len(self.special_tokens):
            raise ValueError(f"ByteTokenizer: special tokens must be unique, got {self.special_tokens}")
        self._special_ids = {tok: 256 + i for i, tok in enumerate(self.special_tokens)}
        for role, tok in (("eos_token", eos_token), ("bos_token", bos_token), ("pad_token", pad_token)):
            if tok is not None and tok not in self._special_ids:
                raise ValueError(
                    f"ByteTokenizer: {role}={tok!r} is not one of the special tokens {self.special_tokens}"
                )
        self.eos_token, self.bos_token, self.pad_token = eos_token, bos_token, pad_token
        self.eos_token_id = self._special_ids.get(eos_token) if eos_token else None
        self.bos_token_id = self._special_ids.get(bos_token) if bos_token else None
        self.pad_token_id = self._special_ids.get(pad_token) if pad_token else None

    @property
    def vocab_size(self) -> int:
        return 256 + len(self.special_tokens)

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        """UTF-8 bytes of ``text`` (special-token strings in the text are plain bytes); with
        ``add_special_tokens`` the BOS id is prepended."""
        if not isinstance(text, str):
            raise TypeError(f"encode: text must be a str, got {type(text).__name__}")
        ids = list(text.encode("utf-8"))
        if add_special_tokens and self.bos_token_id is not None:
            ids.insert(0, self.bos_token_id)
        return ids

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = True) -> str:
        """Text of ``ids``; invalid or incomplete UTF-8 decodes to U+FFFD."""
        out, buf = [], bytearray()
        for i in ids:
            i = int(i)
            if 0 <= i < 256:
                buf.append(i)
            elif 256 <= i < self.vocab_size:
                if not skip_special_tokens:
                    out.append(buf.decode("utf-8", errors="replace"))
                    buf = bytearray()
                    out.append(self.special_tokens[i - 256])
            else:
                raise ValueError(f"ByteTokenizer.decode: id {i} outside [0, {self.vocab_size})")
        out.append(buf.decode("utf-8", errors="replace"))
        return "".join(out)

    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``tokenizer_config.json`` (``"tokenizer_class": "ByteTokenizer"``) into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        data = {
            "tokenizer_class": self.tokenizer_class,
            "special_tokens": self.special_tokens,
            "eos_token": self.eos_token,
            "bos_token": self.bos_token,
            "pad_token": self.pad_token,
        }
        with open(folder / TOKENIZER_CONFIG_FILE, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        return folder

    @classmethod
    def from_folder(cls, folder: str | os.PathLike) -> ByteTokenizer:
        with open(Path(folder) / TOKENIZER_CONFIG_FILE, encoding="utf-8") as f:
            data = json.load(f)
        return cls(data.get("special_tokens", ()), data.get("eos_token"), data.get("bos_token"), data.get("pad_token"))


class IncrementalDecoder:
    """Text pieces from a token stream, never cutting a UTF-8 character or a merged piece in two.

    Decodes a short window of recent ids and emits what it adds beyond the previously emitted text;
    text ending in U+FFFD (an incomplete byte sequence) is held back until the next id completes it
    or :meth:`flush` is called. ``"".join(pushes) + flush()`` equals ``tokenizer.decode(all_ids)``.

    Args:
        tokenizer: :class:`HFTokenizer` or :class:`ByteTokenizer`.
        skip_special_tokens: drop special tokens from the text.
    """

    def __init__(self, tokenizer, skip_special_tokens: bool = True) -> None:
        self.tokenizer = tokenizer
        self.skip_special_tokens = skip_special_tokens
        self.ids: list[int] = []
        self._prefix = 0  # window start
        self._read = 0  # ids up to here are emitted

    def _decode(self, ids) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=self.skip_special_tokens)

    def push(self, token_id: int) -> str:
        """Add one id; return the newly completed text (possibly ``""``)."""
        self.ids.append(int(token_id))
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        new_text = self._decode(self.ids[self._prefix :])
        if len(new_text) > len(prefix_text) and not new_text.endswith("\ufffd"):
            self._prefix, self._read = self._read, len(self.ids)
            return new_text[len(prefix_text) :]
        return ""

    def flush(self) -> str:
        """Everything not yet emitted (incomplete characters become U+FFFD)."""
        prefix_text = self._decode(self.ids[self._prefix : self._read])
        new_text = self._decode(self.ids[self._prefix :])
        self._prefix = self._read = len(self.ids)
        return new_text[len(prefix_text) :]


def load_tokenizer(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    token: str | None = None,
):
    """The tokenizer stored in a model folder or Hub repo.

    ``tokenizer.json`` gives an :class:`HFTokenizer`; a ``tokenizer_config.json`` with
    ``"tokenizer_class": "ByteTokenizer"`` gives a :class:`ByteTokenizer`. Repo ids are fetched with
    ``huggingface_hub.snapshot_download`` (a cached snapshot works offline).

    Args:
        name_or_path: folder or repo id.
        revision, cache_dir, token: passed to ``snapshot_download``.

    Returns:
        :class:`HFTokenizer` or :class:`ByteTokenizer`.

    Raises:
        OSError: no tokenizer there, or the repo cannot be fetched.
    """
    folder = Path(name_or_path)
    if not folder.is_dir():
        from huggingface_hub import snapshot_download

        try:
            folder = Path(
                snapshot_download(
                    str(name_or_path),
                    revision=revision,
                    cache_dir=cache_dir,
                    token=token,
                    allow_patterns=[TOKENIZER_FILE, TOKENIZER_CONFIG_FILE, SPECIAL_TOKENS_MAP_FILE],
                )
            )
        except Exception as exc:  # offline, unknown repo, bad id: reported the same way
            raise OSError(
                f"load_tokenizer: {str(name_or_path)!r} is not a folder and could not be "
                f"fetched from the Hugging Face Hub ({type(exc).__name__}). Offline, "
                "only repos already in the Hub cache load."
            ) from exc
    if (folder / TOKENIZER_FILE).is_file():
        return HFTokenizer.from_folder(folder)
    config = folder / TOKENIZER_CONFIG_FILE
    if config.is_file():
        with open(config, encoding="utf-8") as f:
            if json.load(f).get("tokenizer_class") == ByteTokenizer.tokenizer_class:
                return ByteTokenizer.from_folder(folder)
    raise OSError(f"load_tokenizer: no {TOKENIZER_FILE} (or ByteTokenizer {TOKENIZER_CONFIG_FILE}) in {folder}")
