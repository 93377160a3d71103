"""A demo server on a free loopback port for the endpoint and browser tests (one per module)."""

from __future__ import annotations

import socket

import pytest

gradio = pytest.importorskip("gradio")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def demo_url():
    from app import ModelCache, build_demo
    from app.limits import launch_kwargs
    from app.ui import CSS

    demo = build_demo(ModelCache(capacity=3, device="cpu"))
    demo.queue(default_concurrency_limit=2, max_size=64)
    port = free_port()
    demo.launch(
        server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True, css=CSS, **launch_kwargs()
    )
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        demo.close()
