"""benchmarks/gradio_rest.py (the load test's client) and benchmarks/load.py's request path, against
the demo on a free local port."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from app.examples import fashion_examples

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import load  # noqa: E402
from gradio_rest import GradioError, RestClient  # noqa: E402


def test_rest_client_classify_generate_and_errors(demo_url, tmp_path):
    with RestClient(demo_url, timeout=60) as client:
        labels, info = client.predict("/classify", [client.upload(fashion_examples()[0]), "grootv-nano-fmnist"])
        assert labels["label"] == "Ankle boot" and "ms (forward pass" in info
        updates = []
        text, stats, *_ = client.predict(
            "/generate",
            ["A fortune:", "grootl-nano-fortunes", 6, 0.0, 40, 0.95, 0],
            on_update=lambda t, value: updates.append(value),
        )
        assert isinstance(text, str) and "6 new tokens" in stats
        assert updates and all(isinstance(u, list) for u in updates)  # streamed as it decodes
        with pytest.raises(GradioError, match="prompt is empty"):  # a gr.Error's message
            client.predict("/generate", ["  ", "grootl-nano-fortunes", 6, 0.0, 40, 0.95, 0])
        # the same keep-alive connection still serves requests after an error
        assert client.predict("/classify", [client.upload(fashion_examples()[1]), "grootv-nano-fmnist"])[0]
        with pytest.raises(GradioError, match=r"HTTP [45]\d\d"):
            client.predict("/no_such_endpoint", [])
    with pytest.raises(ValueError, match="http"):
        RestClient("ftp://example.org/")


def test_load_request_path_judges_answers(demo_url):
    work = load.Workload("classify", "grootv-nano-fmnist", images=fashion_examples()[:2])
    with RestClient(demo_url) as client:
        ok = load.one_request(client, work, 0, 0, 60.0)
        assert ok.ok and ok.latency_s > 0 and ok.server_ms is not None
        slow = load.one_request(client, work, 0, 1, 1e-4)  # no answer can come this fast
        assert not slow.ok and slow.error.startswith("timeout")
        again = load.one_request(client, work, 0, 1, 60.0)  # reconnects after the dropped stream
        assert again.ok
    bad = load.Workload("classify", "grootv-nano-scenes", images=fashion_examples()[:1])
    with RestClient(demo_url) as client:
        res = load.one_request(client, bad, 0, 0, 60.0)
        assert not res.ok and "unexpected result" in res.error
