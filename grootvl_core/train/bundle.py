"""Write a trained model as a bundled checkpoint folder: ``config.json`` + ``model.safetensors``
(the model's own ``save_pretrained``), a model card (``README.md``), ``metrics.json`` (the card's
numbers, machine-readable) and ``reference_outputs.json`` (fixed inputs and the exact outputs the
model gave, checked by the tests)."""

from __future__ import annotations

import json
import platform
from pathlib import Path
from typing import Any

import torch

__all__ = ["machine_description", "write_bundle"]


def machine_description(device: str | torch.device | None = None) -> str:
    """One line: the CPU model (or the GPU's name when ``device`` is a CUDA device), core count,
    torch version."""
    device = torch.device(device) if device is not None else torch.device("cpu")
    if device.type == "cuda":
        dev = torch.cuda.get_device_name(device)
    else:
        dev = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    dev = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
    import os

    return f"{dev}, {os.cpu_count()} cores, torch {torch.__version__}"


def write_bundle(
    model,
    folder: str | Path,
    *,
    title: str,
    summary: str,
    data: str,
    command: str,
    train_seconds: float,
    metrics: dict[str, float],
    reference_outputs: dict[str, Any],
    extra_sections: dict[str, str] | None = None,
    tokenizer=None,
    device: str | torch.device | None = None,
) -> Path:
    """Save ``model`` into ``folder`` with its card and reference outputs.

    Args:
        model: a model with ``save_pretrained(folder)``.
        title, summary: card heading and first paragraph.
        data: where the training and evaluation data came from (and their licences).
        command: the exact command that trained it.
        train_seconds: training wall time.
        metrics: final evaluation metrics.
        reference_outputs: JSON-serialisable inputs and outputs to reproduce in tests.
        extra_sections: more card sections, ``{heading: markdown}``.
        tokenizer: saved beside the model when given (``tokenizer.save(folder)``).
        device: the device it was trained on (the card names that machine; default the CPU).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    if tokenizer is not None:
        tokenizer.save(folder)
    with open(folder / "reference_outputs.json", "w") as fh:
        json.dump(reference_outputs, fh, indent=1)
    params = sum(p.numel() for p in model.parameters())
    with open(folder / "metrics.json", "w") as fh:  # machine-readable card numbers (the zoo reports them)
        json.dump(
            {
                "metrics": metrics,
                "parameters": params,
                "train_seconds": round(train_seconds, 1),
                "machine": machine_description(device),
                "command": command,
            },
            fh,
            indent=1,
        )
    lines = [
        "---",
        "library_name: grootvl",
        "license: apache-2.0",
        "---",
        "",
        f"# {title}",
        "",
        summary,
        "",
        "## Training data",
        "",
        data,
        "",
        "## How it was trained",
        "",
        "```bash",
        command,
        "```",
        "",
        f"- training time: {train_seconds / 60:.1f} min on {machine_description(device)}",
        f"- parameters: {params:,}",
        "",
        "## Evaluation",
        "",
        "| metric | value |",
        "|---|---|",
        *[f"| {k} | {v:.4f} |" for k, v in metrics.items()],
        "",
    ]
    for heading, body in (extra_sections or {}).items():
        lines += [f"## {heading}", "", body, ""]
    lines += ["## Licence", "", "Weights and code: Apache-2.0 (grootvl). Data licences as stated above.", ""]
    (folder / "README.md").write_text("\n".join(lines))
    return folder
