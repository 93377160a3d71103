"""Export of the shown tree: the picture as PNG and the tree as JSON (grid size, edges, depth,
parents, transition weights; ``grootvl_core.viz.tree_to_dict``), from a button and the API."""

from __future__ import annotations

import gradio as gr

from grootvl_core.viz import tree_to_json

from ..errors import user_errors
from ..outputs import png, text_file
from ..tree_panel import record_for, render_tree

__all__ = ["ExportView", "export_tree"]


def export_tree(state: dict | None, stage, block, color_by: str = "depth", prefix: str = "tree") -> tuple[str, str]:
    """``(PNG path, JSON path)`` of the ``(stage, block)`` tree, named after ``prefix``, stage and block."""
    rec = record_for(state, stage, block)
    base = f"{prefix}-stage{rec.stage + 1}-block{rec.block + 1}"
    return (
        png(render_tree(state, stage, block, color_by), name=f"{base}.png"),
        text_file(tree_to_json(rec), name=f"{base}.json"),
    )


class ExportView:
    """The export button and files of a :class:`~app.tree_panel.TreePanel` (API ``f"{name}_export"``)."""

    def __init__(self, name: str):
        self.name = name
        with gr.Row(elem_id=f"{name}-export-row"):
            self.button = gr.Button("Export this tree (PNG + JSON)", elem_id=f"{name}-export", scale=0)
            self.png = gr.File(label="Tree picture (PNG)", interactive=False, elem_id=f"{name}-export-png")
            self.json = gr.File(label="Tree data (JSON)", interactive=False, elem_id=f"{name}-export-json")

    def wire(self, panel) -> None:
        def on_export(state, stage, block, color_by):
            with user_errors("tree export"):
                return export_tree(state, stage, block, color_by, prefix=self.name)

        self.button.click(
            on_export,
            [panel.state, panel.stage, panel.block, panel.color_by],
            [self.png, self.json],
            api_name=f"{self.name}_export",
        )
