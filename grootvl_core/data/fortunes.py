"""English text from Debian's ``fortunes`` package (the BSD fortune cookie files), split by cookie
into train/validation deterministically, for the project's byte-level language model.

Never downloads: the project's setup (``scripts/setup.sh``) installs the package.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

__all__ = ["default_root", "load_cookies", "split_cookies"]

_INSTALL_HINT = (
    "install it with `sudo apt-get install fortunes` (Debian/Ubuntu; bash scripts/setup.sh "
    "does this), or point GROOTVL_FORTUNES / root= at a folder of fortune cookie files"
)


def default_root() -> Path:
    """``$GROOTVL_FORTUNES`` or Debian's ``/usr/share/games/fortunes``."""
    return Path(os.environ.get("GROOTVL_FORTUNES", "/usr/share/games/fortunes"))


def load_cookies(root: str | os.PathLike | None = None) -> list[str]:
    """Every cookie of every cookie file in ``root`` (sorted file names; ``.dat`` indexes, ``.u8``
    duplicates and the ``off/`` folder skipped), stripped, empty ones dropped."""
    root = Path(root) if root is not None else default_root()
    if not root.is_dir():
        raise FileNotFoundError(f"fortunes folder {root} does not exist: {_INSTALL_HINT}")
    files = sorted(
        p for p in root.iterdir() if p.is_file() and p.suffix not in (".dat", ".u8") and not p.name.startswith(".")
    )
    cookies: list[str] = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        cookies += [c.strip("\n") for c in text.split("\n%\n")]
    cookies = [c.strip() for c in cookies if c.strip() and c.strip() != "%"]
    if not cookies:
        raise FileNotFoundError(f"no fortune cookies found in {root}: {_INSTALL_HINT}")
    return cookies


def split_cookies(cookies: list[str], validation_fraction: float = 0.05) -> tuple[list[str], list[str]]:
    """Deterministic split by cookie: a cookie goes to validation when the SHA-1 of its text falls
    in the first ``validation_fraction`` of the hash range, so the split never depends on order,
    and identical cookies always land on the same side."""
    if not 0.0 < validation_fraction < 1.0:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}")
    cut = int(validation_fraction * 2**32)
    train, val = [], []
    for c in cookies:
        h = int.from_bytes(hashlib.sha1(c.encode("utf-8")).digest()[:4], "big")
        (val if h < cut else train).append(c)
    return train, val
