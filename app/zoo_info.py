"""What the model pickers and the Zoo tab show, read from the zoo registry only."""

from __future__ import annotations

from grootvl_core import zoo

__all__ = ["source_text", "default_model", "model_choices", "zoo_rows", "ZOO_COLUMNS"]


def source_text(name: str | zoo.ZooEntry) -> str:
    """Where the model's weights come from now, naming the real source (:func:`zoo.locate_weights`)."""
    return zoo.locate_weights(name).describe()


ZOO_COLUMNS = ["model", "task", "parameters", "reported metrics", "available offline", "weights from", "description"]


def model_choices(task: str) -> list[tuple[str, str]]:
    """``(label, name)`` of the task's models, offline-ready first."""
    found = {n: zoo.locate_weights(n) for n in zoo.list_models(task)}
    order = [n for n, loc in found.items() if loc.offline] + [n for n, loc in found.items() if not loc.offline]
    return [(f"{n} · {found[n].describe()}", n) for n in order]


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
        loc = zoo.locate_weights(entry)
        metrics = ", ".join(f"{k} {v:g}" for k, v in entry.metrics.items()) or "-"
        rows.append(
            [
                name,
                entry.task,
                _params(entry),
                metrics,
                "yes" if loc.offline else "no",
                loc.describe(),
                entry.description,
            ]
        )
    return rows
