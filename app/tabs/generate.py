"""Generate tab: streamed text from a prompt, and the tree GrootL built over the prompt's tokens."""

from __future__ import annotations

import queue
import threading
import time

import gradio as gr
import numpy as np
import torch

from grootvl_core.generation import stream_ids
from grootvl_core.models import capture_token_trees
from grootvl_core.tokenizer import IncrementalDecoder
from grootvl_core.viz import draw_token_tree

from ..errors import user_errors
from ..examples import prompt_examples
from ..generation_inputs import sampling_inputs
from ..limits import STATE_TTL_S
from ..model_cache import ModelCache
from ..outputs import png
from ..zoo_info import default_model, model_choices

__all__ = [
    "MAX_NEW_TOKENS",
    "MAX_PROMPT_CHARS",
    "MAX_PROMPT_TOKENS",
    "UPDATE_INTERVAL_S",
    "build",
    "generate",
    "render_token_tree",
    "token_labels",
]

MAX_PROMPT_TOKENS = 1024
MAX_PROMPT_CHARS = MAX_PROMPT_TOKENS  # the byte model's limit: one token per byte, so at most one per character
MAX_NEW_TOKENS = 512
UPDATE_INTERVAL_S = 0.05  # streamed updates after the first: at most about 20 a second
TREE_TOKENS = 48  # the picture shows at most the last this-many prompt tokens


def token_labels(tokenizer, ids: list[int]) -> list[str]:
    """Display strings of single tokens (spaces and newlines made visible with characters every
    font has: the token-tree picture is drawn with PIL's default font)."""
    out = []
    for i in ids:
        text = tokenizer.decode([int(i)])
        out.append(text.replace(" ", "·").replace("\n", "\\n").replace("\t", "\\t") or "?")
    return out


def render_token_tree(trees: dict | None, layer) -> tuple[np.ndarray, list[tuple[str, float]]]:
    """The layer's token tree as arcs, and ``(token, reach)`` pairs for the highlighted prompt
    (reach to the last token, scaled to [0, 1] on a log scale)."""
    if not trees:
        raise ValueError("generate first: the tree comes from the prompt's forward pass")
    layer = int(layer)
    if layer not in trees["records"]:
        raise ValueError(f"no layer {layer}; the model has layers 0 to {max(trees['records'])}")
    rec = trees["records"][layer]
    tokens = trees["tokens"]
    picture = draw_token_tree(tokens, rec.edges, strengths=rec.reach, max_tokens=TREE_TOKENS)
    logr = np.log10(np.clip(rec.reach, 1e-12, 1.0))
    lo = float(logr.min())
    scaled = (logr - lo) / (0.0 - lo) if lo < 0 else np.ones_like(logr)
    return picture, [(t, round(float(s), 3)) for t, s in zip(tokens, scaled)]


def _check_prompt(prompt) -> str:
    if not isinstance(prompt, str) or not prompt.strip():
        raise ValueError("the prompt is empty: type some text or pick an example")
    if len(prompt) > MAX_PROMPT_CHARS:
        raise ValueError(f"the prompt has {len(prompt):,} characters; the limit is {MAX_PROMPT_CHARS:,}")
    return prompt


def generate(
    cache: ModelCache,
    prompt: str,
    model_name: str,
    max_new_tokens: int = 64,
    temperature: float = 0.7,
    top_k: int = 50,
    top_p: float = 0.95,
    seed: int | None = 0,
    update_interval: float = UPDATE_INTERVAL_S,
):
    """Yield ``(text, stats, trees)`` while tokens come: the first token at once, then at most one
    update per ``update_interval`` seconds (the tokens in between are decoded meanwhile), and
    always the whole text last. ``stats`` gives the model's decoding rate; ``trees`` (the prompt's
    token trees, for :func:`render_token_tree`) is set from the first yield on."""
    prompt = _check_prompt(prompt)
    sampling = sampling_inputs(max_new_tokens, temperature, top_k, top_p, seed, max_tokens=MAX_NEW_TOKENS)
    loaded = cache.get(model_name, "generation")
    model, tok = loaded.predictor, loaded.tokenizer
    ids = tok.encode(prompt)
    if not ids:
        raise ValueError("the prompt encodes to no tokens")
    if len(ids) > MAX_PROMPT_TOKENS:
        raise ValueError(f"the prompt is {len(ids)} tokens long; the limit is {MAX_PROMPT_TOKENS}")
    stream = stream_ids(
        model,
        torch.tensor([ids]),
        max_new_tokens=sampling.max_new_tokens,
        temperature=sampling.temperature,
        top_k=sampling.top_k,
        top_p=sampling.top_p,
        seed=sampling.seed,
        eos_token_id=tok.eos_token_id,
    )
    decoder = IncrementalDecoder(tok)
    start = time.perf_counter()
    with loaded.lock, capture_token_trees(model) as records:  # the prompt pass records the trees
        token = next(stream, None)
    prefill_ms = (time.perf_counter() - start) * 1000
    trees = {"tokens": token_labels(tok, ids), "records": {r.layer: r for r in records if r.sample == 0}}
    # NOTE: the model decodes ahead in its own thread while this generator is suspended (Gradio
    # sends each update between two next() calls), and the pieces are coalesced by time: the first
    # at once, then at most one update per update_interval. One update per token, each costing the
    # server milliseconds of CPU, capped the stream far below the model's speed. The rate shown
    # counts only the time spent decoding, not the time the consumer takes with each update.
    text, count, decode_s = "", 0, 0.0
    ahead = _DecodeAhead(stream) if token is not None else None
    try:
        items = [] if token is None else [(token, 0.0)]
        while items:
            for item in items:
                if item is _END:
                    ahead = None
                    break
                if isinstance(item, BaseException):
                    raise item
                token, seconds = item
                count, decode_s = count + 1, decode_s + seconds
                if int(token[0]) != tok.eos_token_id:
                    text += decoder.push(int(token[0]))
            if ahead is None:
                break
            rate = (count - 1) / decode_s if count > 1 and decode_s > 0 else 0.0
            yield (
                text,
                (
                    f"{count} new tokens · {rate:.1f} tokens/s · prompt {len(ids)} tokens, "
                    f"prompt pass {prefill_ms:.0f} ms"
                ),
                trees,
            )
            items = ahead.take(until=time.perf_counter() + update_interval)
    finally:
        if ahead is not None:
            ahead.stop()
    text += decoder.flush()
    rate = (count - 1) / decode_s if count > 1 and decode_s > 0 else 0.0
    yield (
        text,
        (
            f"{count} new tokens · {rate:.1f} tokens/s (decoding) · prompt {len(ids)} tokens, "
            f"prompt pass {prefill_ms:.0f} ms"
        ),
        trees,
    )


_END = object()


class _DecodeAhead:
    """The rest of a token stream, decoded in a thread of its own into a queue of
    ``(token, seconds it took)``, then ``_END`` (or the exception the stream raised, then ``_END``).
    At most the stream's ``max_new_tokens`` items, so the queue is bounded."""

    def __init__(self, stream):
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._stop = threading.Event()
        threading.Thread(target=self._run, args=(stream,), name="grootvl-decode", daemon=True).start()

    def _run(self, stream) -> None:
        try:
            with torch.inference_mode():  # grad mode is per thread
                while not self._stop.is_set():
                    start = time.perf_counter()
                    token = next(stream, None)
                    if token is None:
                        break
                    self._queue.put((token, time.perf_counter() - start))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            self._queue.put(exc)
        finally:
            self._queue.put(_END)

    def take(self, until: float) -> list:
        """Everything decoded by the time ``until`` (a ``perf_counter`` value), and at least one item
        (waiting past ``until`` for it when none came); stops early at ``_END``."""
        items: list = []
        while True:
            remaining = until - time.perf_counter()
            try:
                if remaining > 0:
                    item = self._queue.get(timeout=remaining)
                elif items:
                    item = self._queue.get_nowait()
                else:
                    item = self._queue.get()
            except queue.Empty:
                if items:
                    return items
                continue
            items.append(item)
            if item is _END:
                return items

    def stop(self) -> None:
        """Stop decoding after the current token (the consumer went away)."""
        self._stop.set()


def build(cache: ModelCache) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            prompt = gr.Textbox(
                label="Prompt",
                lines=4,
                max_length=MAX_PROMPT_CHARS,
                elem_id="generate-prompt",
                placeholder="Type a prompt, or pick an example below",
            )
            model = gr.Dropdown(
                model_choices("generation"), value=default_model("generation"), label="Model", elem_id="generate-model"
            )
            with gr.Accordion("Sampling", open=False):
                max_new = gr.Slider(1, MAX_NEW_TOKENS, value=80, step=1, label="Max new tokens")
                temperature = gr.Slider(0.0, 2.0, value=0.7, step=0.05, label="Temperature (0 = greedy)")
                top_k = gr.Slider(0, 200, value=40, step=1, label="Top-k (0 = off)")
                top_p = gr.Slider(0.05, 1.0, value=0.95, step=0.05, label="Top-p (1 = off)")
                seed = gr.Number(value=0, precision=0, label="Seed")
            run = gr.Button("Generate", variant="primary", elem_id="generate-run")
        with gr.Column(scale=1):
            output = gr.Textbox(label="Continuation", lines=8, interactive=False, elem_id="generate-output")
            stats = gr.Markdown(elem_id="generate-stats")
    gr.Examples([[p] for p in prompt_examples()], inputs=[prompt], label="Prompts")
    trees = gr.State(None, time_to_live=STATE_TTL_S)
    with gr.Group():
        gr.Markdown(
            "**The tree over the prompt.** Besides the left-to-right chain, each GrootL layer "
            "scans a minimum spanning tree built from the prompt's own features (neighbours up to 3 "
            "tokens apart), rooted at the last token. Arcs are its edges; the colours say how strongly "
            "each token reaches the last token through that tree."
        )
        layer = gr.Slider(0, 1, value=0, step=1, label="Layer", elem_id="generate-layer")
        tree_image = gr.Image(label="Token tree", interactive=False, format="png", elem_id="generate-tree")
        reach = gr.HighlightedText(
            label="Reach to the last token (log scale)", show_legend=False, elem_id="generate-reach"
        )

    def on_run(text, name, n, temp, k, p, s):
        # the token tree goes out with the first and the last update only (not with every token)
        with user_errors("generate"):
            tree_outputs = None
            for piece, info, tr in generate(cache, text, name, n, temp, k, p, s):
                if tree_outputs is None:
                    picture, spans = render_token_tree(tr, 0)
                    tree_outputs = (tr, gr.update(maximum=max(1, len(tr["records"]) - 1), value=0), png(picture), spans)
                    yield (piece, info, *tree_outputs)
                else:
                    yield piece, info, gr.skip(), gr.skip(), gr.skip(), gr.skip()
            yield (piece, info, *tree_outputs)

    def on_layer(tr, k):
        with user_errors("token tree"):
            picture, spans = render_token_tree(tr, k)
            return png(picture), spans

    run.click(
        on_run,
        [prompt, model, max_new, temperature, top_k, top_p, seed],
        [output, stats, trees, layer, tree_image, reach],
        api_name="generate",
    )
    layer.release(on_layer, [trees, layer], [tree_image, reach], api_name="token_tree")
