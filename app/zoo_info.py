"""What the model pickers and the Zoo tab show, read from the zoo registry only."""

from __future__ import annotations

from grootvl_core import zoo

__all__ = ["SOURCE_TEXT", "default_model", "model_choices", "zoo_rows", "ZOO_COLUMNS"]

SOURCE_TEXT = {
    "bundled": "bundled (offline)",
    "cache": "converted, cached (offline)",
    "hub-cache": "Hub, cached (offline)",
    "official-downloaded": "official file downloaded (offline)",
    "hub": "Hugging Face Hub (downloads on first use)",
    "official": "authors' Google Drive file (downloads + converts on first use)",
    "none": "no weights",
}

ZOO_COLUMNS = ["model", "task", "parameters", "reported metrics", "available offline", "weights from",
               "description"]


def model_choices(task: str) -> list[tuple[str, str]]:
    """``(label, name)`` of the task's models, offline-ready first."""
    names = zoo.list_models(task)
    ready = [n for n in names if zoo.weights_source(n) in zoo.OFFLINE_SOURCES]
    rest = [n for n in names if n not in ready]
    return [(f"{n} · {SOURCE_TEXT[zoo.weights_source(n)]}", n) for n in ready + rest]


def default_model(task: str) -> str | None:
    """The first offline-ready model of the task (the bundled one), else the first listed."""
    choices = model_choices(task)
    return choices[0][1] if choices else None


def _params(entry: zoo.ZooEntry) -> str:
    if entry.params is None:
        return "?"
    p = entry.params
    return f"{p / 1e6:.1f}M" if p >= 1e6 else f"{p / 1e3:.0f}k"


def zoo_rows() -> list[list[str]]:
    rows = []
    for name in zoo.list_models():
        entry = zoo.get_entry(name)
        source = zoo.weights_source(entry)
        metrics = ", ".join(f"{k} {v:g}" for k, v in entry.metrics.items()) or "-"
        rows.append([name, entry.task, _params(entry), metrics,
                     "yes" if source in zoo.OFFLINE_SOURCES else "no", SOURCE_TEXT[source], entry.description])
    return rows
