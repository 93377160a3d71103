"""The tree view shared by the vision tabs: the spanning tree a chosen stage and block built, drawn
over the image the model saw, and the affinity map from a clicked pixel.

A prediction records every block's tree in the same forward pass (``capture_trees``); the records
live in the session's ``gr.State``, so switching stage, block or colouring and clicking pixels
never recompute the model. The pure functions (``tree_state``, ``render_tree``,
``render_affinity``, ``pixel_from_click``) carry the logic; :class:`TreePanel` lays out and wires
the components.
"""

from __future__ import annotations

from typing import Any

import gradio as gr
import numpy as np

from grootvl_core.models import TreeRecord, affinity_from
from grootvl_core.viz import draw_tree, overlay_heatmap, vertex_depths

from .errors import user_errors
from .limits import STATE_TTL_S
from .outputs import png

__all__ = ["TreePanel", "pixel_from_click", "record_for", "render_affinity", "render_tree", "tree_state", "VIEW_SIZE"]

VIEW_SIZE = 448  # longer side of the tree and affinity pictures


def tree_state(records: list[TreeRecord], image: np.ndarray, image_index: int = 0) -> dict[str, Any]:
    """What the session keeps: image ``image_index``'s records by ``(stage, block)`` and the
    ``(S, S, 3)`` uint8 image the model saw."""
    trees = {(r.stage, r.block): r for r in records if r.image == image_index}
    if not trees:
        raise ValueError("this model recorded no trees")
    return {"image": np.asarray(image, dtype=np.uint8), "trees": trees}


def stage_choices(state: dict) -> list[tuple[str, int]]:
    stages = sorted({s for s, _ in state["trees"]})
    out = []
    for s in stages:
        rec = next(r for (st, _), r in sorted(state["trees"].items()) if st == s)
        out.append((f"stage {s + 1} · {rec.height}x{rec.width}", s))
    return out


def block_choices(state: dict, stage: int) -> list[tuple[str, int]]:
    return [(f"block {b + 1}", b) for (s, b) in sorted(state["trees"]) if s == stage]


def _record(state: dict | None, stage, block) -> TreeRecord:
    if not state:
        raise ValueError("run the model first: the tree comes from its forward pass")
    key = (int(stage), int(block))
    if key not in state["trees"]:
        raise ValueError(f"no tree for stage {key[0] + 1}, block {key[1] + 1}")
    return state["trees"][key]


def record_for(state: dict | None, stage, block) -> TreeRecord:
    """The session's record of ``(stage, block)``; a ValueError that says what to do otherwise."""
    return _record(state, stage, block)


def _edge_weights(rec: TreeRecord) -> np.ndarray:
    """Each tree edge's transition weight: that of its child vertex (the end farther from the root)."""
    edges = rec.tree_edges.numpy()
    depth = vertex_depths(edges, rec.height * rec.width, 0)
    child = np.where(depth[edges[:, 0]] > depth[edges[:, 1]], edges[:, 0], edges[:, 1])
    w = rec.weights.numpy()
    w = w.mean(axis=0) if w.ndim == 2 else w
    return w[child]


def render_tree(state: dict | None, stage, block, color_by: str = "depth") -> np.ndarray:
    """The tree of ``(stage, block)`` over the image, coloured by depth or edge weight."""
    rec = _record(state, stage, block)
    values = _edge_weights(rec) if color_by == "weight" else None
    return draw_tree(
        state["image"],
        rec.tree_edges.numpy(),
        (rec.height, rec.width),
        color_by=color_by,
        edge_values=values,
        size=VIEW_SIZE,
    )


def render_affinity(state: dict | None, stage, block, row, col) -> np.ndarray:
    """The affinity map from pixel ``(row, col)`` of the block's grid, over the image."""
    rec = _record(state, stage, block)
    if row is None or col is None:
        raise ValueError("pick a pixel: click the tree picture or type a row and a column")
    r, c = int(row), int(col)
    if not (0 <= r < rec.height and 0 <= c < rec.width):
        raise ValueError(f"pixel ({r}, {c}) is outside this block's {rec.height}x{rec.width} grid")
    heat = affinity_from(rec, r * rec.width + c)
    return overlay_heatmap(state["image"], heat, size=VIEW_SIZE, mark=(r, c))


def pixel_from_click(state: dict | None, stage, block, index) -> tuple[int, int]:
    """``(row, col)`` on the block's grid from a click at ``index = (x, y)`` in the tree picture."""
    rec = _record(state, stage, block)
    h_img, w_img = state["image"].shape[:2]
    scale = VIEW_SIZE / max(h_img, w_img)
    shown_h, shown_w = max(1, round(h_img * scale)), max(1, round(w_img * scale))
    x, y = (float(v) for v in index)
    col = min(rec.width - 1, max(0, int(x * rec.width / shown_w)))
    row = min(rec.height - 1, max(0, int(y * rec.height / shown_h)))
    return row, col


def default_view(state: dict) -> tuple[int, int, int, int]:
    """Stage, block and centre pixel shown right after a prediction (the first stage's first block)."""
    stage, block = min(state["trees"])
    rec = state["trees"][(stage, block)]
    return stage, block, rec.height // 2, rec.width // 2


class TreePanel:
    """Components and events of the tree view of one tab.

    Args:
        name: prefix of the API names (``f"{name}_tree"``, ``f"{name}_affinity"``).
    """

    def __init__(self, name: str):
        self.name = name
        with gr.Group():
            gr.Markdown(
                "**The tree.** Each Tree-SSM block builds a minimum spanning tree over its feature "
                "map from this image. Click a pixel of the tree to see its affinity: the product of "
                "the transition weights along the tree path to every other pixel (log scale)."
            )
            with gr.Row():
                self.stage = gr.Dropdown(choices=[], label="Stage", interactive=True)
                self.block = gr.Dropdown(choices=[], label="Block", interactive=True)
                self.color_by = gr.Radio(["depth", "weight"], value="depth", label="Colour edges by")
            with gr.Row():
                self.tree_image = gr.Image(
                    label="Spanning tree (click a pixel)", interactive=False, format="png", elem_id=f"{name}-tree"
                )
                self.affinity_image = gr.Image(
                    label="Affinity from the chosen pixel", interactive=False, format="png", elem_id=f"{name}-affinity"
                )
            with gr.Row():
                self.row = gr.Number(label="Row", precision=0, minimum=0)
                self.col = gr.Number(label="Column", precision=0, minimum=0)
                self.show = gr.Button("Show affinity", elem_id=f"{name}-show-affinity")
            # NOTE: imported here, the views import this module's render functions
            from .explorer.export import ExportView
            from .explorer.scans import ScansView

            self.scans = ScansView(name)
            self.export = ExportView(name)
        self.state = gr.State(None, time_to_live=STATE_TTL_S)

    def outputs(self) -> list:
        """What a prediction fills (with :meth:`updates`), in this order: the recorded trees and the
        view's controls. The pictures follow in a second step (:meth:`draw_after`), so the
        prediction itself returns as soon as the model has answered."""
        return [self.state, self.stage, self.block, self.row, self.col]

    @staticmethod
    def updates(state: dict) -> list:
        stage, block, row, col = default_view(state)
        return [
            state,
            gr.update(choices=stage_choices(state), value=stage),
            gr.update(choices=block_choices(state, stage), value=block),
            row,
            col,
        ]

    def draw_after(self, event) -> None:
        """Draw the tree and the affinity of the current view once ``event`` has finished."""

        def draw(state, stage, block, color_by, row, col):
            if not state:  # the prediction failed: it already said why
                return gr.skip(), gr.skip()
            with user_errors("tree view"):
                return (
                    png(render_tree(state, stage, block, color_by)),
                    png(render_affinity(state, stage, block, row, col)),
                )

        event.success(
            draw,
            [self.state, self.stage, self.block, self.color_by, self.row, self.col],
            [self.tree_image, self.affinity_image],
            api_name=False,
        )

    def wire(self) -> None:
        def on_stage(state, stage, color_by):
            with user_errors("tree view"):
                blocks = block_choices(state, stage) if state else []
                block = blocks[0][1] if blocks else None
                rec = _record(state, stage, block)
                row, col = rec.height // 2, rec.width // 2
                return (
                    gr.update(choices=blocks, value=block),
                    png(render_tree(state, stage, block, color_by)),
                    png(render_affinity(state, stage, block, row, col)),
                    row,
                    col,
                )

        def on_view(state, stage, block, color_by):
            with user_errors("tree view"):
                return png(render_tree(state, stage, block, color_by))

        def on_affinity(state, stage, block, row, col):
            with user_errors("affinity"):
                return png(render_affinity(state, stage, block, row, col))

        def on_click(state, stage, block, evt: gr.SelectData):
            with user_errors("affinity"):
                row, col = pixel_from_click(state, stage, block, evt.index)
                return row, col, png(render_affinity(state, stage, block, row, col))

        self.stage.input(
            on_stage,
            [self.state, self.stage, self.color_by],
            [self.block, self.tree_image, self.affinity_image, self.row, self.col],
            api_name=False,
        )
        self.block.input(
            on_view, [self.state, self.stage, self.block, self.color_by], [self.tree_image], api_name=False
        )
        self.block.input(
            on_affinity, [self.state, self.stage, self.block, self.row, self.col], [self.affinity_image], api_name=False
        )
        self.tree_image.select(
            on_click, [self.state, self.stage, self.block], [self.row, self.col, self.affinity_image], api_name=False
        )
        self.show.click(
            on_affinity,
            [self.state, self.stage, self.block, self.row, self.col],
            [self.affinity_image],
            api_name=f"{self.name}_affinity",
        )
        # for API users: the tree of any stage/block of the last prediction
        self.color_by.change(
            on_view,
            [self.state, self.stage, self.block, self.color_by],
            [self.tree_image],
            api_name=f"{self.name}_tree",
        )
        self.scans.wire(self)
        self.export.wire(self)
