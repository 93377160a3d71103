"""benchmarks/soak.py with a small N: new sessions on every endpoint, hostile requests mixed in;
no good request fails, every hostile one is refused with its message, memory stays bounded, the
upload limit holds and the server leaves no folder of its own behind."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("gradio")
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import soak  # noqa: E402


def test_png_bomb_is_small_and_huge(tmp_path):
    from PIL import Image

    path = soak.png_bomb(tmp_path / "bomb.png", 4000)
    assert path.stat().st_size < 100_000
    with Image.open(path) as im:
        assert im.size == (4000, 4000) and im.mode == "RGBA"


@pytest.mark.slow
def test_small_soak_meets_every_target(tmp_path, capsys):
    report_path = tmp_path / "soak.json"
    # 8 sessions x 5 requests; about 30 % hostile; 1,000-character prompts for /generate
    status = soak.main(
        [
            "--sessions",
            "8",
            "--requests",
            "5",
            "--clients",
            "2",
            "--hostile",
            "0.3",
            "--duration",
            "240",
            "--work-dir",
            str(tmp_path / "work"),
            "--json",
            str(report_path),
            "--strict",
        ]
    )
    out = capsys.readouterr().out
    report = json.loads(report_path.read_text())
    s = report["summary"]
    assert s["good"] > 10 and s["hostile"] > 3, out
    assert s["good_failed"] == 0 and s["hostile_not_refused"] == 0, json.dumps(s["failures"], indent=1)
    assert report["oversized_upload_refused"], out
    assert s["rss_mb"]["growth"] < s["rss_mb"]["growth_limit"], out
    assert not any(n.startswith("grootvl-app-") for n in report["disk"]["left_after_stop"]), out
    assert status == 0, out
