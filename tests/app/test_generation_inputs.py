"""app.generation_inputs: the Generate tab's controls as the API may send them."""

import math

import pytest

from app.generation_inputs import sampling_inputs


def test_defaults_and_off_values():
    s = sampling_inputs(80, 0.7, 40, 0.95, 0, max_tokens=512)
    assert (s.max_new_tokens, s.temperature, s.top_k, s.top_p, s.seed) == (80, 0.7, 40, 0.95, 0)
    off = sampling_inputs(1, 0, 0, 1.0, "", max_tokens=512)
    assert off.top_k is None and off.top_p is None and off.seed is None
    assert sampling_inputs(1, 0, None, None, None, max_tokens=8).top_p is None
    assert sampling_inputs(1, 0, 0, 1, 2**64 - 1, max_tokens=8).seed == 2**64 - 1


@pytest.mark.parametrize(
    "args, match",
    [
        ((8, math.nan, 40, 0.95, 0), "Temperature must be a finite number"),
        ((8, -1, 40, 0.95, 0), "Temperature must be >= 0"),
        ((8, 0.7, 40, math.nan, 0), "Top-p must be a finite number"),  # was: nucleus sampling silently off
        ((8, 0.7, 40, 0.0, 0), r"Top-p must lie in \(0, 1\]"),
        ((8, 0.7, 40, 0.95, 2**70), "Seed must lie in"),  # was: "Overflow when unpacking long long"
        ((8, 0.7, 40, 0.95, -1), "Seed must lie in"),
        ((8, 0.7, 40, 0.95, "abc"), "Seed must be a number"),
        ((0, 0.7, 40, 0.95, 0), r"Max new tokens must lie in \[1, 512\]"),
        ((math.nan, 0.7, 40, 0.95, 0), "Max new tokens must be a finite number"),
        ((8, 0.7, 2.5, 0.95, 0), "Top-k must be a whole number"),
        ((8, True, 40, 0.95, 0), "Temperature must be a number"),
    ],
)
def test_bad_values_name_their_control(args, match):
    with pytest.raises(ValueError, match=match):
        sampling_inputs(*args, max_tokens=512)


def test_the_library_refuses_them_too():
    import torch

    from grootvl_core.generation import check_seed, sample_next_token

    with pytest.raises(ValueError, match="finite number"):
        sample_next_token(torch.zeros(1, 4), temperature=math.nan)
    with pytest.raises(ValueError, match=r"integer in \[0, 2\*\*64 - 1\]"):
        check_seed(2**70)
    assert check_seed(2**64 - 1) == 2**64 - 1 and check_seed(None) is None
