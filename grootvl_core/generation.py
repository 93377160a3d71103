"""Text generation with GrootL: greedy and sampled decoding over the exact two-state cache.

The prompt is processed once with the full tree algorithm (its length is the context length ``P``
of tree 2), then each new token is one cached step (reference 4.5), so the result equals running the
model on the whole sequence with ``context_lengths = P`` at every step.

    ids    = generate(model, prompt_ids, max_new_tokens=32)                  # (B, P + n)
    pieces = stream_text(model, tokenizer, "Hello", temperature=0.8, top_p=0.9, seed=0)
    for piece in pieces: print(piece, end="", flush=True)

``format_instruction`` applies the instruction template GrootL was fine-tuned with (reference 4.7).
"""

from __future__ import annotations

import math
import operator
from collections.abc import Iterator

import torch
from torch import Tensor

from .tokenizer import IncrementalDecoder

__all__ = [
    "INSTRUCTION_TEMPLATE",
    "INSTRUCTION_TEMPLATE_WITH_INPUT",
    "MAX_SEED",
    "check_seed",
    "filter_logits",
    "format_instruction",
    "generate",
    "generate_text",
    "sample_next_token",
    "stream_ids",
    "stream_text",
]

# Reference 4.7: the "_ssm" templates of supervised-fine-tune.py (the Alpaca preamble is not used);
# the answer follows "Response:" directly.
INSTRUCTION_TEMPLATE = "### Instruction:\n{instruction}\n\n### Response:"
INSTRUCTION_TEMPLATE_WITH_INPUT = "### Instruction:\n{instruction}\n\n### Input:\n{input}\n\n### Response:"


def format_instruction(instruction: str, input: str | None = None) -> str:  # noqa: A002
    """The GrootL fine-tuning prompt for ``instruction`` (and an optional non-empty ``input``)."""
    if input:
        return INSTRUCTION_TEMPLATE_WITH_INPUT.format(instruction=instruction, input=input)
    return INSTRUCTION_TEMPLATE.format(instruction=instruction)


MAX_SEED = 2**64 - 1  # torch.Generator.manual_seed takes seeds in [0, 2**64)


def _check_sampling(temperature, top_k, top_p) -> None:
    # NOTE: NaN fails every comparison, so "not (x >= 0)" (not "x < 0") is what refuses it.
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature < math.inf:
        raise ValueError(f"temperature must be a finite number >= 0 (0 = greedy), got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0):
        raise ValueError(f"top_k must be None or an int >= 0 (0 = off), got {top_k!r}")
    if top_p is not None and (not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        raise ValueError(f"top_p must be None or in (0, 1], got {top_p!r}")


def check_seed(seed) -> int | None:
    """``seed`` as an int in ``[0, 2**64)`` (what ``torch.Generator.manual_seed`` takes), or None.

    Raises:
        ValueError: not an integer, or out of that range.
    """
    if seed is None:
        return None
    value = seed
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    try:
        value = None if isinstance(value, bool) else operator.index(value)  # ints, numpy ints
    except TypeError:
        value = None
    if value is None or not 0 <= value <= MAX_SEED:
        raise ValueError(f"the seed must be an integer in [0, 2**64 - 1], got {seed!r}")
    return value


def filter_logits(logits: Tensor, top_k: int | None = None, top_p: float | None = None) -> Tensor:
    """Set the logits outside the top-k / top-p (nucleus) set to ``-inf``.

    top-k keeps the ``k`` largest (ties at the k-th value are kept); top-p then keeps the smallest
    set of most likely tokens whose probability reaches ``top_p`` (at least one token).

    Args:
        logits: ``(B, V)``.
        top_k: ``None`` or 0 for no limit.
        top_p: ``None`` or 1.0 for no limit.

    Returns:
        ``(B, V)``, a new tensor.
    """
    _check_sampling(1.0, top_k, top_p)
    logits = logits.clone()
    if top_k and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]
        logits[logits < kth] = float("-inf")
    if top_p is not None and top_p < 1.0:
        sorted_logits, idx = torch.sort(logits, dim=-1, descending=True)
        probs = sorted_logits.float().softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs
        remove_sorted = mass_before >= top_p
        remove_sorted[..., 0] = False
        remove = torch.zeros_like(remove_sorted).scatter(-1, idx, remove_sorted)
        logits[remove] = float("-inf")
    return logits


def sample_next_token(
    logits: Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    generator: torch.Generator | None = None,
) -> Tensor:
    """Pick the next token per row: argmax when ``temperature == 0``, else a sample from
    ``softmax(filter_logits(logits / temperature))``.

    Args:
        logits: ``(B, V)``.
        temperature, top_k, top_p: see :func:`filter_logits`.
        generator: random generator on ``logits.device`` (for reproducible sampling).

    Returns:
        ``(B,)`` int64.
    """
    _check_sampling(temperature, top_k, top_p)
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = filter_logits(logits.float() / temperature, top_k, top_p).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator)[:, 0]


@torch.inference_mode()
def stream_ids(
    model,
    input_ids: Tensor,
    *,
    max_new_tokens: int = 64,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
    context_lengths=None,
) -> Iterator[Tensor]:
    """Yield the new tokens one step at a time.

    Args:
        model: a :class:`~grootvl_core.models.GrootL` (anything with ``allocate_cache``,
            ``prefill`` and ``step``).
        input_ids: ``(B, P)`` prompt ids (``(P,)`` is taken as one prompt).
        max_new_tokens: how many tokens at most.
        temperature, top_k, top_p: sampling (``temperature = 0``: greedy).
        seed: seeds a fresh generator (ignored when ``generator`` is given).
        generator: random generator on the model's device.
        eos_token_id: stop once every row has produced it (rows that finished repeat it).
        context_lengths: tree-2 context per row (default: the prompt length ``P``).

    Yields:
        ``(B,)`` int64 token ids (EOS included when produced).
    """
    if not isinstance(max_new_tokens, int) or isinstance(max_new_tokens, bool) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an int >= 0, got {max_new_tokens!r}")
    _check_sampling(temperature, top_k, top_p)
    if not isinstance(input_ids, Tensor):
        input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    if input_ids.numel() == 0:
        raise ValueError("the prompt is empty: give at least one token")
    device = model.backbone.embeddings.weight.device
    input_ids = input_ids.to(device)
    seed = check_seed(seed)
    if generator is None and seed is not None:
        generator = torch.Generator(device=device).manual_seed(seed)
    if max_new_tokens == 0:
        return
    cache = model.allocate_cache(input_ids.shape[0])
    logits = model.prefill(input_ids, cache, context_lengths=context_lengths)
    finished = torch.zeros(input_ids.shape[0], dtype=torch.bool, device=device)
    for i in range(max_new_tokens):
        token = sample_next_token(logits, temperature, top_k, top_p, generator)
        if eos_token_id is not None:
            token = torch.where(finished, torch.full_like(token, eos_token_id), token)
            finished |= token == eos_token_id
        yield token
        if i + 1 == max_new_tokens or bool(finished.all()):
            return
        logits = model.step(token, cache)


def generate(model, input_ids: Tensor, **kwargs) -> Tensor:
    """Prompt followed by the generated tokens, ``(B, P + n)``; arguments as :func:`stream_ids`."""
    if not isinstance(input_ids, Tensor):
        input_ids = torch.as_tensor(input_ids, dtype=torch.long)
    if input_ids.dim() == 1:
        input_ids = input_ids[None]
    new = list(stream_ids(model, input_ids, **kwargs))
    device = model.backbone.embeddings.weight.device
    tail = torch.stack(new, dim=1) if new else input_ids.new_zeros((input_ids.shape[0], 0))
    return torch.cat([input_ids.to(device), tail.to(device)], dim=1)


def stream_text(
    model, tokenizer, prompt: str, *, use_template: bool = False, max_prompt_tokens: int | None = 4096, **kwargs
) -> Iterator[str]:
    """Yield the continuation of ``prompt`` as text pieces while tokens are produced.

    Args:
        model: :class:`~grootvl_core.models.GrootL`.
        tokenizer: from :func:`grootvl_core.tokenizer.load_tokenizer`.
        prompt: the text (or the instruction, with ``use_template``).
        use_template: wrap ``prompt`` in the fine-tuning template (:func:`format_instruction`).
        max_prompt_tokens: refuse longer prompts (``None``: no limit).
        **kwargs: :func:`stream_ids` arguments; ``eos_token_id`` defaults to the tokenizer's.

    Yields:
        ``str`` pieces; their concatenation is the decoded continuation (special tokens dropped).
    """
    if not isinstance(prompt, str):
        raise TypeError(f"prompt must be a str, got {type(prompt).__name__}")
    if not prompt.strip():
        raise ValueError("the prompt is empty: type some text")
    text = format_instruction(prompt) if use_template else prompt
    ids = tokenizer.encode(text)
    if not ids:
        raise ValueError("the prompt encodes to no tokens")
    if max_prompt_tokens is not None and len(ids) > max_prompt_tokens:
        raise ValueError(f"the prompt is {len(ids)} tokens long; the limit is {max_prompt_tokens}")
    kwargs.setdefault("eos_token_id", tokenizer.eos_token_id)
    decoder = IncrementalDecoder(tokenizer)
    for token in stream_ids(model, torch.tensor([ids]), **kwargs):
        piece = decoder.push(int(token[0]))
        if piece:
            yield piece
    rest = decoder.flush()
    if rest:
        yield rest


def generate_text(model, tokenizer, prompt: str, **kwargs) -> str:
    """The whole continuation of ``prompt`` at once; arguments as :func:`stream_text`."""
    return "".join(stream_text(model, tokenizer, prompt, **kwargs))
