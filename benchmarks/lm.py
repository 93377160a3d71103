"""GrootL speed on CPU: tree scanning (tree_scale=0.3) versus plain Mamba (tree_scale=0).

A random model with mamba-130m's shapes (reference 4.1) prefills a prompt (default 512 tokens, the
whole prompt is the tree-2 context) and then decodes tokens one at a time from the cache. Both
variants share the same weights; prefills are interleaved, decoding alternates the two models token by
token, and the best (minimum) time of each is reported, the usual choice on a shared, noisy machine.

    python benchmarks/lm.py                      # 24 layers, prompt 512, 32 decoded tokens
    python benchmarks/lm.py --layers 4 --repeats 2

Targets: decode with the tree <= 1.2x plain per token; prefill <= 2x.
"""

from __future__ import annotations

import argparse
import time

import torch

from grootvl_core import ops
from grootvl_core.models.grootl import GrootL, GrootLConfig


def _prefill(model: GrootL, ids: torch.Tensor) -> float:
    cache = model.allocate_cache(ids.shape[0])
    start = time.perf_counter()
    model.prefill(ids, cache)
    return time.perf_counter() - start


def _decode_interleaved(models: dict[str, GrootL], ids: torch.Tensor, steps: int) -> dict[str, list[float]]:
    """Per-token step times, alternating the models token by token (shared noise hits both)."""
    state = {}
    for name, model in models.items():
        cache = model.allocate_cache(ids.shape[0])
        state[name] = (cache, model.prefill(ids, cache))
    times: dict[str, list[float]] = {name: [] for name in models}
    names = list(models)
    for i in range(steps):
        for name in names if i % 2 == 0 else names[::-1]:
            cache, logits = state[name]
            start = time.perf_counter()
            logits = models[name].step(logits.argmax(-1), cache)
            times[name].append(time.perf_counter() - start)
            state[name] = (cache, logits)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prompt-len", type=int, default=512)
    parser.add_argument("--new-tokens", type=int, default=32)
    parser.add_argument("--layers", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    tree = GrootL(GrootLConfig(num_hidden_layers=args.layers, tree_scale=0.3)).eval()
    plain = GrootL(GrootLConfig(num_hidden_layers=args.layers, tree_scale=0.0)).eval()
    plain.load_state_dict(tree.state_dict())
    ids = torch.randint(0, tree.config.vocab_size, (1, args.prompt_len))
    print(
        f"op backend: {ops.backend('cpu')}, torch threads: {torch.get_num_threads()}, "
        f"layers: {args.layers}, prompt: {args.prompt_len}, decoded: {args.new_tokens}"
    )

    times: dict[str, list[float]] = {"prefill_tree": [], "prefill_plain": []}
    with torch.inference_mode():
        _prefill(tree, ids[:, :16]), _prefill(plain, ids[:, :16])  # warm-up (native build, allocs)
        for _ in range(args.repeats):
            times["prefill_tree"].append(_prefill(tree, ids))
            times["prefill_plain"].append(_prefill(plain, ids))
        decode = _decode_interleaved({"tree": tree, "plain": plain}, ids[:, :8], args.new_tokens)
    times["decode_tree"], times["decode_plain"] = decode["tree"][2:], decode["plain"][2:]
    med = {k: min(v) for k, v in times.items()}
    print(
        f"prefill {args.prompt_len} tokens: tree {med['prefill_tree']:.3f} s, "
        f"plain {med['prefill_plain']:.3f} s, ratio {med['prefill_tree'] / med['prefill_plain']:.2f}x "
        "(target <= 2x)"
    )
    print(
        f"decode: tree {1 / med['decode_tree']:.1f} tok/s, plain {1 / med['decode_plain']:.1f} tok/s, "
        f"per-token ratio {med['decode_tree'] / med['decode_plain']:.2f}x (target <= 1.2x)"
    )


if __name__ == "__main__":
    main()
