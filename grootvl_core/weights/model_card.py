"""Hub model cards (``README.md`` with YAML metadata) for converted checkpoints."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_model_card"]

# The grootvl_core.models class that loads a Hub folder of each task (a zoo entry's model_class
# or the converted model's class, when known, take precedence).
_TASK_CLASSES = {"classification": "GrootV", "segmentation": "GrootVSegmenter", "generation": "GrootL"}


def _usage(task: str, cls_name: str, repo: str) -> list[str]:
    """The usage snippet of a card: load with the task's class, then one call of that task."""
    load = [f"from grootvl_core.models import {cls_name}", f'model = {cls_name}.from_pretrained("{repo}").eval()']
    if task == "generation":
        return [
            "from grootvl_core.generation import generate_text",
            "from grootvl_core.tokenizer import load_tokenizer",
            *load,
            f'tokenizer = load_tokenizer("{repo}")  # or the base model\'s, e.g. state-spaces/mamba-130m-hf',
            'print(generate_text(model, tokenizer, "The tree", max_new_tokens=32))',
        ]
    if task == "segmentation":
        return [*load, "logits = model(images)  # (B, in_chans, H, W) normalised -> (B, classes, H, W)"]
    return [*load, "logits = model(images)  # (B, in_chans, H, W) normalised -> (B, classes)"]


def write_model_card(folder: str | os.PathLike, info: Mapping[str, Any]) -> Path:
    """Write ``README.md`` (a Hub model card with YAML metadata) into ``folder``.

    Args:
        folder: the Hub folder.
        info: ``title``, ``arch``, ``task`` (``classification`` / ``segmentation`` /
            ``generation``: picks the pipeline tag, the class and the usage snippet),
            ``model_class`` (the loading class; default from ``task``), ``license``, ``metrics``
            (dict), ``source``, ``source_sha256``, ``weights``, ``num_parameters``, ``repo_id``;
            all optional.

    Returns:
        Path of the written file.
    """
    task = info.get("task", "classification")
    pipeline = {
        "classification": "image-classification",
        "segmentation": "image-segmentation",
        "generation": "text-generation",
    }.get(task, task)
    title = info.get("title", info.get("arch", "GrootVL model"))
    lines = [
        "---",
        f"license: {info.get('license', 'other')}",
        "library_name: grootvl",
        f"pipeline_tag: {pipeline}",
        "tags:",
        "- grootvl",
        "- tree-scan",
        "- state-space-model",
        "---",
        "",
        f"# {title}",
        "",
        'GrootVL ("Tree Topology is All You Need in State Space Model", NeurIPS 2024): a state space '
        "model that scans the input along a minimum spanning tree built from the input itself.",
        "",
    ]
    if info.get("arch"):
        lines.append(f"- architecture: `{info['arch']}`")
    if info.get("num_parameters"):
        lines.append(f"- parameters: {int(info['num_parameters']):,}")
    if info.get("source"):
        lines.append(f"- converted from: `{info['source']}` (weights: `{info.get('weights', 'model')}`)")
    if info.get("source_sha256"):
        lines.append(f"- source sha256: `{info['source_sha256']}`")
    metrics = info.get("metrics") or {}
    if metrics:
        lines += [
            "",
            "Reported by the authors (not re-measured here):",
            "",
            "| metric | value |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v} |" for k, v in metrics.items()]
    repo = info.get("repo_id", "<this-repo>")
    cls_name = info.get("model_class") or _TASK_CLASSES.get(task, "GrootV")
    lines += ["", "## Use", "", "```python", *_usage(task, cls_name, repo), "```", ""]
    lines += [
        "## Source",
        "",
        "Paper: GrootVL: Tree Topology is All You Need in State Space Model (NeurIPS 2024, "
        "arXiv:2406.02395). Original code and checkpoints: https://github.com/EasonXiao-888/GrootVL.",
        "",
    ]
    path = Path(folder) / "README.md"
    path.write_text("\n".join(lines))
    return path
