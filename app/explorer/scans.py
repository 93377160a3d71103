"""Scans side by side: from the chosen pixel, the affinity along the block's own tree next to the
affinity along the row-major raster chain with the same transition weights (what
``scan_order="raster"`` scans), on one colour scale, with a one-line reading of what differs."""

from __future__ import annotations

import gradio as gr
import numpy as np

from grootvl_core.viz import compare_scans, overlay_heatmap

from ..errors import user_errors
from ..outputs import png
from ..tree_panel import VIEW_SIZE, record_for

__all__ = ["ScansView", "render_scans"]


def render_scans(state: dict | None, stage, block, row, col) -> tuple[np.ndarray, np.ndarray, str]:
    """``(tree picture, raster picture, reading)`` for pixel ``(row, col)`` of the block's grid."""
    rec = record_for(state, stage, block)
    if row is None or col is None:
        raise ValueError("pick a pixel: click the tree picture or type a row and a column")
    r, c = int(row), int(col)
    if not (0 <= r < rec.height and 0 <= c < rec.width):
        raise ValueError(f"pixel ({r}, {c}) is outside this block's {rec.height}x{rec.width} grid")
    result = compare_scans(rec, r * rec.width + c, image=state["image"])
    lo, hi = result.log_range
    kw = dict(size=VIEW_SIZE, mark=(r, c), value_range=(lo, hi))
    reading = (
        f"{result.reading} Both maps: log10 affinity from {lo:.1f} (dark) to {hi:.1f} (bright); the raster "
        "scan is causal, so a pixel's output draws on the chain before it in row-major order."
    )
    return (
        overlay_heatmap(state["image"], result.tree, **kw),
        overlay_heatmap(state["image"], result.raster, **kw),
        reading,
    )


class ScansView:
    """The side-by-side row of a :class:`~app.tree_panel.TreePanel` (API name ``f"{name}_scans"``)."""

    def __init__(self, name: str):
        self.name = name
        with gr.Column(elem_id=f"{name}-scans"):
            gr.Markdown(
                "**Tree scan vs raster scan.** The same block, the same pixel and the same transition "
                "weights: propagation along the tree this image built (left) and along the row-major "
                "raster chain a fixed scan order uses (right), on one colour scale."
            )
            with gr.Row():
                self.tree = gr.Image(
                    label="Along the tree", interactive=False, format="png", elem_id=f"{name}-scan-tree"
                )
                self.raster = gr.Image(
                    label="Along the raster chain", interactive=False, format="png", elem_id=f"{name}-scan-raster"
                )
            self.reading = gr.Markdown(elem_id=f"{name}-scan-reading")

    def wire(self, panel) -> None:
        """Follow the panel's affinity picture: whenever it changes, compare the scans from its pixel."""

        def on_compare(state, stage, block, row, col):
            if not state:
                return gr.skip(), gr.skip(), gr.skip()
            with user_errors("scan comparison"):
                tree, raster, reading = render_scans(state, stage, block, row, col)
                return png(tree), png(raster), reading

        panel.affinity_image.change(
            on_compare,
            [panel.state, panel.stage, panel.block, panel.row, panel.col],
            [self.tree, self.raster, self.reading],
            api_name=f"{self.name}_scans",
        )
