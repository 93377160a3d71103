"""Recipe: the bundled GrootL-nano byte-level language model on Debian's fortunes (issue 5).

Each training sample is one fortune cookie (UTF-8 bytes, then EOS), cut to ``seq_len`` and
right-padded. A random leading part of ``P`` bytes (3 to 32) is the *context*: GrootL's feature
tree is built over it (reference 4.3), and, as in the published fine-tuning, context positions
carry no loss (their labels are -100), so nothing is learnt from the tree looking ahead inside the
context. Validation: bits per byte of the continuation of every validation cookie after a fixed
16-byte context.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.fortunes import load_cookies, split_cookies
from ..models.grootl import GrootL, GrootLConfig
from ..tokenizer import ByteTokenizer
from .loop import TrainConfig, model_device, train

__all__ = ["LMRecipe", "NANO_LM", "encode_batch", "train_lm"]

# state_size 8 (not Mamba's 16): the reference-path selective scan materialises (B, D, N, L) tensors,
# so N sets the CPU training time; initializer_range 0.02 starts the tied 258-way softmax near uniform.
NANO_LM = dict(
    hidden_size=128, num_hidden_layers=4, state_size=8, expand=2, conv_kernel=4, tree_scale=0.3, initializer_range=0.02
)
EVAL_CONTEXT = 16


@dataclass
class LMRecipe:
    """Settings of :func:`train_lm` (the defaults are the bundled model's).

    ``arm`` picks the study variant: ``"tree"`` (published GrootL mixer), ``"chain"`` (tree 2
    replaced by the chain itself, i.e. the published behaviour for contexts of <= 2 tokens) or
    ``"plain"`` (``tree_scale=0``: exactly Mamba).
    """

    model: dict = field(default_factory=lambda: dict(NANO_LM))
    arm: str = "tree"
    seq_len: int = 128
    batch_size: int = 16
    min_context: int = 3
    max_context: int = 32
    train: TrainConfig = field(
        default_factory=lambda: TrainConfig(steps=1500, lr=3e-3, warmup_steps=100, eval_every=500, checkpoint_every=250)
    )
    eval_cookies: int = 400

    def __post_init__(self):
        if self.arm not in ("tree", "chain", "plain"):
            raise ValueError(f"LMRecipe: arm must be 'tree', 'chain' or 'plain', got {self.arm!r}")


def encode_batch(tok: ByteTokenizer, texts: list[str], contexts: list[int], seq_len: int):
    """``(input_ids, labels)`` ``(B, L)``: bytes + EOS, right-padded; labels -100 on the context and
    the padding (the model reads the per-sample context length from the leading -100s)."""
    ids = torch.full((len(texts), seq_len), tok.pad_token_id, dtype=torch.long)
    labels = torch.full_like(ids, -100)
    for i, (t, p) in enumerate(zip(texts, contexts)):
        seq = (tok.encode(t) + [tok.eos_token_id])[:seq_len]
        ids[i, : len(seq)] = torch.tensor(seq)
        labels[i, p : len(seq)] = ids[i, p : len(seq)]
    return ids, labels


def _context_override(recipe: LMRecipe, labels: torch.Tensor):
    # "chain": a context of 1 token makes tree 2 the chain itself (documented GrootL behaviour).
    return [1] * labels.shape[0] if recipe.arm == "chain" else None


def evaluate_lm(model, tok, cookies: list[str], recipe: LMRecipe, batch_size: int = 32) -> dict[str, float]:
    """Bits per byte of each cookie's continuation after ``EVAL_CONTEXT`` bytes of context."""
    total_nll, total = 0.0, 0
    texts = [c for c in cookies if len(c.encode("utf-8")) > EVAL_CONTEXT][: recipe.eval_cookies]
    device = model_device(model)
    for i in range(0, len(texts), batch_size):
        chunk = texts[i : i + batch_size]
        ids, labels = (t.to(device) for t in encode_batch(tok, chunk, [EVAL_CONTEXT] * len(chunk), recipe.seq_len))
        out = model(ids, labels=labels, context_lengths=_context_override(recipe, labels))
        n = (labels[:, 1:] != -100).sum().item()
        total_nll += out.loss.item() * n
        total += n
    return {"bits_per_byte": total_nll / total / math.log(2), "eval_bytes": float(total)}


def train_lm(
    out_dir: str | Path,
    recipe: LMRecipe,
    resume: bool = False,
    data_root=None,
    progress: bool = True,
    device: str | torch.device = "cpu",
):
    """Train (on ``device``) on the training cookies; returns ``(model, tokenizer, result)``."""
    train_cookies, val_cookies = split_cookies(load_cookies(data_root))
    tok = ByteTokenizer()
    cfg = dict(recipe.model)
    if recipe.arm == "plain":
        cfg["tree_scale"] = 0.0
    model = GrootL(
        GrootLConfig(
            vocab_size=tok.vocab_size,
            pad_token_id=tok.pad_token_id,
            bos_token_id=tok.bos_token_id,
            eos_token_id=tok.eos_token_id,
            **cfg,
        )
    )

    def batch_fn(step: int):
        rng = np.random.default_rng((recipe.train.seed, step))
        idx = rng.integers(0, len(train_cookies), recipe.batch_size)
        texts = [train_cookies[i] for i in idx]
        ctx = [int(rng.integers(recipe.min_context, recipe.max_context + 1)) for _ in texts]
        ctx = [min(p, max(1, len(t.encode("utf-8")))) for p, t in zip(ctx, texts)]
        return encode_batch(tok, texts, ctx, recipe.seq_len)

    def loss_fn(m, batch):
        ids, labels = batch
        return m(ids, labels=labels, context_lengths=_context_override(recipe, labels)).loss

    result = train(
        model,
        batch_fn,
        loss_fn,
        recipe.train,
        out_dir,
        evaluate=lambda m: evaluate_lm(m, tok, val_cookies, recipe),
        resume=resume,
        progress=progress,
        device=device,
    )
    model.eval()
    with torch.no_grad():
        result["final_metrics"] = evaluate_lm(model, tok, val_cookies, recipe)
    result["recipe"] = asdict(recipe)
    return model, tok, result
