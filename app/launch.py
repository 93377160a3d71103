"""``python app.py``: parse the options, build the demo, start the server."""

from __future__ import annotations

import argparse
import logging
import os

__all__ = ["main", "parse_args"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py", description="GrootVL demo (Gradio).")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
                   help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)")
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
                   help="port (default 7860; the next free one is NOT picked automatically)")
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (opt-in)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument("--max-models", type=int, default=int(os.environ.get("GROOTVL_APP_MAX_MODELS", 3)),
                   help="models kept in memory at once (least recently used dropped; default 3)")
    p.add_argument("--concurrency", type=int, default=int(os.environ.get("GROOTVL_APP_CONCURRENCY", 2)),
                   help="requests run at once; the rest wait in the queue (default 2)")
    p.add_argument("--queue-size", type=int, default=64, help="requests that may wait; more are refused (64)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    args = p.parse_args(argv)
    for name in ("max_models", "concurrency", "queue_size"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    # Gradio's queue rebuilds a pandas summary of every recorded event (up to 10,000) after each
    # request, for its monitoring page: an O(events) cost per request that grows with uptime.
    # Recompute it every 100 requests over the last 1,000 instead (an operator may override both).
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "100")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")
    from .allocator import tune_malloc

    tune_malloc()  # before the first large allocation (see app/allocator.py)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from .limits import launch_kwargs
    from .model_cache import ModelCache, default_device
    from .shutdown import stop_on_sigterm
    from .ui import CSS, build_demo

    _prepare_op(args.device or default_device())
    demo = build_demo(ModelCache(args.max_models, args.device))
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    stop_on_sigterm()  # a SIGTERM stops it like Ctrl-C: caches and temporary folders are removed
    demo.launch(server_name=args.host, server_port=args.port, share=args.share, css=CSS,
                footer_links=["api", "gradio"], **launch_kwargs())


def _prepare_op(device: str) -> None:
    """Load (building if needed) the native tree-scan op for ``device`` before the first request,
    so a GPU Space compiles its CUDA kernels at start-up, not while a user waits."""
    import importlib
    import time

    import torch

    log = logging.getLogger("grootvl.app")
    start = time.perf_counter()
    kind = importlib.import_module("grootvl_core.ops.backend").backend(torch.device(device))
    log.info("tree-scan op for %s: %s backend (%.1f s)", device, kind, time.perf_counter() - start)
