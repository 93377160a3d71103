"""Shared by the deployment tests: a clean copy of the checkout, a child environment that cannot
see the checkout, and running a command with its output in the failure message."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_IGNORED = shutil.ignore_patterns(
    ".git", ".cache", "build", "dist", "*.egg-info", "__pycache__", "*.pyc", "*.so", ".pytest_cache", "runs", ".venv"
)


def copy_checkout(dest: Path) -> Path:
    """The files git tracks (every file, outside a git checkout), as a fresh clone would have."""
    try:
        tracked = (
            subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60)
            .stdout.decode()
            .split("\0")
        )
    except (OSError, subprocess.CalledProcessError):
        shutil.copytree(ROOT, dest, ignore=_IGNORED)
        return dest
    for rel in filter(None, tracked):
        src = ROOT / rel
        if src.is_file():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dest / rel)
    return dest


def isolated_env(**extra: str) -> dict[str, str]:
    """This environment without anything that points at the checkout (PYTHONPATH), offline."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GROOTVL_CHECKPOINTS", "GROOTVL_OPS")}
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        GRADIO_ANALYTICS_ENABLED="False",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PYTHONDONTWRITEBYTECODE="1",
        **extra,
    )
    return env


def run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, (
        f"{' '.join(map(str, cmd))} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}"
    )
    return out
