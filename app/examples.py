"""Example inputs shipped in ``assets/`` (see ``assets/LICENSES.md``)."""

from __future__ import annotations

import json
from pathlib import Path

__all__ = ["ASSETS", "fashion_examples", "photo_examples", "prompt_examples", "scene_examples"]

ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _files(folder: str, pattern: str) -> list[str]:
    return [str(p) for p in sorted((ASSETS / folder).glob(pattern))]


def fashion_examples() -> list[str]:
    """One Fashion-MNIST test image per class."""
    return _files("fashion", "*.png")


def scene_examples() -> list[str]:
    """ "Fashion-MNIST scenes" evaluation scenes."""
    return _files("scenes", "*.png")


def photo_examples() -> list[str]:
    """Public-domain / CC0 photos."""
    return _files("photos", "*.jpg")


def prompt_examples() -> list[str]:
    path = ASSETS / "prompts.json"
    return json.loads(path.read_text()) if path.is_file() else []
