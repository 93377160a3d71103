"""The demo's layout: one tab per task, each showing the tree its input produced."""

from __future__ import annotations

import gradio as gr

from .input_guard import GuardedBlocks
from .limits import LIMITS_TEXT, blocks_kwargs
from .model_cache import ModelCache
from .tabs import classify, erf, generate, pixel_tree, segment, zoo_table

__all__ = ["CSS", "build_demo"]

CSS = """
.legend { display: flex; flex-wrap: wrap; gap: 0.4em 1em; }
.legend-item { display: inline-flex; align-items: center; gap: 0.35em; }
.legend-swatch { width: 1em; height: 1em; border-radius: 2px; display: inline-block; border: 1px solid #0003; }
"""

INTRO = """# GrootVL: tree scanning state space models
GrootV (vision) and GrootL (language) scan their inputs along a **tree** built from the input itself: a
minimum spanning tree over the feature map, or over nearby tokens. Every tab shows the tree its input
produced. The bundled models (trained by this project on Fashion-MNIST and fortune cookies) work offline."""


def build_demo(cache: ModelCache | None = None) -> gr.Blocks:
    """The Gradio app (not launched). ``cache`` holds the loaded models (default: 3 models)."""
    cache = cache or ModelCache()
    with GuardedBlocks(title="GrootVL demo", **blocks_kwargs()) as demo:
        gr.Markdown(f"{INTRO}\n\n{LIMITS_TEXT}", elem_id="intro")
        with gr.Tabs():
            with gr.Tab("Classify", id="classify"):
                classify.build(cache)
            with gr.Tab("Segment", id="segment"):
                segment.build(cache)
            with gr.Tab("Generate", id="generate"):
                generate.build(cache)
            with gr.Tab("Receptive field", id="erf"):
                erf.build(cache)
            with gr.Tab("Tree on pixels", id="pixels"):
                pixel_tree.build()
            with gr.Tab("Zoo", id="zoo"):
                zoo_table.build()
    demo.grootvl_cache = cache  # for tests and tooling
    return demo
