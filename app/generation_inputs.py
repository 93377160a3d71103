"""The Generate tab's sampling controls, checked as the API may send them (any JSON number, NaN
included, or a string): each bad value is refused with a message naming its control."""

from __future__ import annotations

import math
from dataclasses import dataclass

from grootvl_core.generation import MAX_SEED

__all__ = ["Sampling", "sampling_inputs"]


@dataclass(frozen=True)
class Sampling:
    """Checked values for :func:`grootvl_core.generation.stream_ids` (``top_k``/``top_p`` None = off)."""

    max_new_tokens: int
    temperature: float
    top_k: int | None
    top_p: float | None
    seed: int | None


def _number(value, label: str) -> float:
    if isinstance(value, bool):
        raise ValueError(f"{label} must be a number, got {value!r}")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{label} must be a number, got {value!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{label} must be a finite number, got {value!r}")
    return x


def _integer(value, label: str, lo: int, hi: int) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        n = value  # exact, however large (a float would round 2**70)
    else:
        x = _number(value, label)
        if not x.is_integer():
            raise ValueError(f"{label} must be a whole number, got {value!r}")
        n = int(x)
    if not lo <= n <= hi:
        raise ValueError(f"{label} must lie in [{lo}, {hi}], got {n}")
    return n


def sampling_inputs(max_new_tokens, temperature, top_k, top_p, seed, *, max_tokens: int) -> Sampling:
    """The checked controls. ``top_k = 0`` and ``top_p = 1`` mean off; an empty seed means random.

    Raises:
        ValueError: naming the control and its allowed range.
    """
    n = _integer(max_new_tokens, "Max new tokens", 1, max_tokens)
    temp = _number(temperature, "Temperature")
    if temp < 0:
        raise ValueError(f"Temperature must be >= 0 (0 = greedy), got {temp:g}")
    k = _integer(0 if top_k is None else top_k, "Top-k", 0, 1_000_000)
    p = _number(1.0 if top_p is None else top_p, "Top-p")
    if not 0 < p <= 1:
        raise ValueError(f"Top-p must lie in (0, 1] (1 = off), got {p:g}")
    s = None if seed is None or seed == "" else _integer(seed, "Seed", 0, MAX_SEED)
    return Sampling(n, temp, k or None, p if p < 1 else None, s)
