"""Generate tab streaming: the tokens/s a client of ``/generate`` receives vs the model alone.

One process, one run: the demo is built and served on a free loopback port, and, in alternating
rounds with the same prompt, the same model and the same number of greedy tokens,

* **model alone**: ``grootvl_core.generation.stream_ids`` on the model the app loaded, timed from
  the first new token to the last (the decode rate, prompt pass excluded);
* **client**: one ``/generate`` call over Gradio's plain HTTP API (``gradio_rest.RestClient``, a
  few ms of client CPU per call), timed from the first streamed update to the one with the most
  tokens, the token counts read from the stats line each update carries ("N new tokens").

The ratio client / model is what the Generate tab's streaming costs (1.0 = the client sees the
model's speed). Medians over ``--rounds``; each round's pair is printed too.

    python benchmarks/streaming.py                         # 300 tokens, 5 rounds
    python benchmarks/streaming.py --tokens 300 --rounds 3 --threads 2

Target (issue 20): ratio >= 0.8 for the bundled ``grootl-nano-fortunes``.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(1, str(Path(__file__).resolve().parent.parent))  # the app package (not installed by pip)
from gradio_rest import RestClient  # noqa: E402  (next to this script)
from load import _Stream  # noqa: E402

MODEL = "grootl-nano-fortunes"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def model_alone(loaded, prompt: str, tokens: int) -> tuple[int, float]:
    """``(new tokens, decode tokens/s)`` of the bare stream, first token to last."""
    import torch

    from grootvl_core.generation import stream_ids

    tok = loaded.tokenizer
    stream = stream_ids(
        loaded.predictor,
        torch.tensor([tok.encode(prompt)]),
        max_new_tokens=tokens,
        temperature=0.0,
        eos_token_id=tok.eos_token_id,
    )
    with torch.inference_mode():
        next(stream)
        t0, count = time.perf_counter(), 1
        for _ in stream:
            count += 1
        elapsed = time.perf_counter() - t0
    return count, (count - 1) / elapsed if count > 1 else 0.0


def client_sees(url: str, prompt: str, tokens: int) -> tuple[int, float, int]:
    """``(new tokens, tokens/s between the first and the fullest update, updates received)``."""
    stream = _Stream()
    with RestClient(url, timeout=120) as client:
        client.predict("/generate", [prompt, MODEL, tokens, 0.0, 0, 1.0, 0], on_update=stream.update)
    if stream.first_t is None or stream.last_t is None or stream.last_t <= stream.first_t:
        return stream.max_count, 0.0, stream.seen
    return stream.max_count, (stream.max_count - stream.first_count) / (stream.last_t - stream.first_t), stream.seen


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=300, help="greedy new tokens per call (300)")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--prompt", default="The meaning of life")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from app import ModelCache, build_demo

    cache = ModelCache(capacity=1, device="cpu")
    demo = build_demo(cache)
    demo.queue(default_concurrency_limit=2, max_size=16)
    port = _free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    url = f"http://127.0.0.1:{port}/"
    try:
        loaded = cache.get(MODEL, "generation")
        client_sees(url, args.prompt, 8), model_alone(loaded, args.prompt, 8)  # warm-up
        print(f"{MODEL}, prompt {args.prompt!r}, {args.tokens} greedy tokens, torch threads {torch.get_num_threads()}")
        ratios, client_rates, model_rates = [], [], []
        for r in range(args.rounds):
            n_model, model_rate = model_alone(loaded, args.prompt, args.tokens)
            n_client, client_rate, updates = client_sees(url, args.prompt, args.tokens)
            ratio = client_rate / model_rate if model_rate else 0.0
            ratios.append(ratio)
            client_rates.append(client_rate)
            model_rates.append(model_rate)
            print(
                f"round {r + 1}: model alone {model_rate:7.1f} tokens/s ({n_model} tokens) · client "
                f"{client_rate:7.1f} tokens/s ({n_client} tokens, {updates} updates) · ratio {ratio:.2f}"
            )
        print(
            f"median: model alone {statistics.median(model_rates):.1f} tokens/s, client "
            f"{statistics.median(client_rates):.1f} tokens/s, ratio client/model "
            f"{statistics.median(ratios):.2f} (target >= 0.8)"
        )
    finally:
        demo.close()


if __name__ == "__main__":
    main()
