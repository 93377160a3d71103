"""Write a folder that is a complete Gradio Space for the demo: ``python scripts/make_space.py OUT``.

The folder holds ``README.md`` (the Space's front matter: ``sdk: gradio``, the Gradio version this
checkout runs, ``app_file: app.py``, suggested hardware), ``app.py`` and ``app/``, the package
(``grootvl_core/`` and the op's sources ``csrc/``, built on the Space's first start), the bundled
models (``checkpoints/``), the example inputs (``assets/``), a ``requirements.txt`` that installs
on its own (a Space installs it before the rest of the repository is copied in, so it names
packages only: no ``-e .``, no local paths; Gradio itself comes from ``sdk_version``) and a
``packages.txt`` (Debian packages: the C++ compiler for the native CPU op). Publishing it is one
upload of the folder (docs/gpu-space.md).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COPIED = ("app.py", "app", "grootvl_core", "csrc", "checkpoints", "assets")
IGNORED = shutil.ignore_patterns(
    "__pycache__", "*.pyc", "*.so", "*.o", "build.ninja", ".ninja_*", "_csrc", "_checkpoints"
)
PACKAGES = ("build-essential",)  # g++ for the native CPU tree-scan op (ninja comes from pip)
HARDWARE = (
    "cpu-basic",
    "cpu-upgrade",
    "t4-small",
    "t4-medium",
    "l4x1",
    "a10g-small",
    "a10g-large",
    "a100-large",
    "l40sx1",
    "h100",
    "zero-a10g",
)

FRONT_MATTER = """---
title: GrootVL demo
emoji: 🌳
colorFrom: green
colorTo: blue
sdk: gradio
sdk_version: {gradio}
python_version: "{python}"
app_file: app.py
suggested_hardware: {hardware}
startup_duration_timeout: 1h
pinned: false
license: apache-2.0
short_description: Tree-topology state space models (GrootVL, NeurIPS 2024)
---

# GrootVL demo

GrootV (vision) and GrootL (language) scan their inputs along a tree built from the input itself.
Classify, segment and generate with the bundled models (trained by the grootvl project on
Fashion-MNIST and fortune cookies) and look at the tree each input produced; the published
GrootV-T/S/B and GrootL-130m weights download on first use.

The first start compiles the native tree-scan op (a few minutes; the log says so). Made with
`python scripts/make_space.py` from the grootvl repository; see its `docs/gpu-space.md`.
"""


def requirements() -> list[str]:
    """The runtime requirements of the package (the repository's ``requirements.txt``), without
    comments. They are plain PyPI names, which is what lets the file install on its own."""
    lines = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith(("-e", ".", "/", "file:", "-r", "--editable")):
            raise ValueError(
                f"requirements.txt line {line!r} refers to local files; a Space installs the file "
                "before the repository is there"
            )
        lines.append(line)
    return lines


def make_space(out: Path, hardware: str = "t4-small", force: bool = False) -> Path:
    """Write the Space folder ``out`` (which must not exist or be empty, unless ``force``)."""
    import gradio

    out = Path(out)
    if hardware not in HARDWARE:
        raise ValueError(f"unknown hardware {hardware!r}; choose one of {', '.join(HARDWARE)}")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} exists and is not empty; pick a new folder or pass --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)
    for name in COPIED:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, out / name, ignore=IGNORED)
        else:
            shutil.copy2(src, out / name)
    py = f"{sys.version_info.major}.{sys.version_info.minor}"
    (out / "README.md").write_text(FRONT_MATTER.format(gradio=gradio.__version__, python=py, hardware=hardware))
    (out / "requirements.txt").write_text(
        "# Installed by the Space before the rest of the repository is copied in: package names only.\n"
        "# Gradio comes from sdk_version in README.md.\n" + "\n".join(requirements()) + "\n"
    )
    (out / "packages.txt").write_text("\n".join(PACKAGES) + "\n")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("out", type=Path, help="the folder to write (new or empty)")
    p.add_argument(
        "--hardware",
        default="t4-small",
        choices=HARDWARE,
        help="suggested_hardware in the front matter (default t4-small; the owner picks the real one)",
    )
    p.add_argument("--force", action="store_true", help="replace OUT if it is not empty")
    args = p.parse_args(argv)
    try:
        out = make_space(args.out, args.hardware, args.force)
    except (FileExistsError, ValueError) as exc:
        p.error(str(exc))
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"wrote the Space folder {out} ({size / 1e6:.1f} MB); publish it with the upload in docs/gpu-space.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
