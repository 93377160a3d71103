"""Zoo tab: every model of the registry, where its weights come from and whether it works offline."""

from __future__ import annotations

import gradio as gr

from ..errors import user_errors
from ..zoo_info import ZOO_COLUMNS, zoo_rows

__all__ = ["build"]


def build() -> None:
    gr.Markdown(
        "Bundled models were trained by this project and work offline. The published GrootV and "
        "GrootL weights download on first use from the authors' Google Drive files and are converted "
        "once; Mamba-130m downloads from its Hugging Face Hub repo. Both are then cached. Metrics are "
        "those reported for each model."
    )
    table = gr.Dataframe(value=zoo_rows(), headers=ZOO_COLUMNS, interactive=False, wrap=True, elem_id="zoo-table")
    refresh = gr.Button("Refresh")

    def on_refresh():
        with user_errors("zoo"):
            return zoo_rows()

    refresh.click(on_refresh, None, [table], api_name="zoo")
