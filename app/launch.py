"""``python app.py``: parse the options, build the demo, start the server."""

from __future__ import annotations

import argparse
import logging
import os

__all__ = ["main", "op_devices", "parse_args", "prepare_op"]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python app.py", description="GrootVL demo (Gradio).")
    p.add_argument(
        "--host",
        default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        help="interface to bind (default 127.0.0.1: this machine only; 0.0.0.0 exposes it)",
    )
    p.add_argument(
        "--port",
        type=int,
        default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)),
        help="port (default 7860; the next free one is NOT picked automatically)",
    )
    p.add_argument("--share", action="store_true", help="also open a public gradio.live link (opt-in)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda when available)")
    p.add_argument(
        "--max-models",
        type=int,
        default=int(os.environ.get("GROOTVL_APP_MAX_MODELS", 3)),
        help="models kept in memory at once (least recently used dropped; default 3)",
    )
    p.add_argument(
        "--concurrency",
        type=int,
        default=int(os.environ.get("GROOTVL_APP_CONCURRENCY", 2)),
        help="requests run at once; the rest wait in the queue (default 2)",
    )
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
    from .zerogpu import on_zero_gpu, wrap_gpu_events

    # on ZeroGPU the main process sees no GPU: models are placed on "cuda" inside spaces.GPU calls
    device = args.device or ("cuda" if on_zero_gpu() else default_device())
    prepare_op(op_devices(device))
    demo = build_demo(ModelCache(args.max_models, device))
    wrap_gpu_events(demo)
    demo.queue(default_concurrency_limit=args.concurrency, max_size=args.queue_size)
    stop_on_sigterm()  # a SIGTERM stops it like Ctrl-C: caches and temporary folders are removed
    demo.launch(
        server_name=args.host,
        server_port=args.port,
        share=args.share,
        css=CSS,
        footer_links=["api", "gradio"],
        **launch_kwargs(),
    )


def op_devices(model_device: str) -> list[str]:
    """Every device the app runs the tree-scan op on: the CPU (the "Tree on pixels" tab and the
    trees' geometry) and the models' device."""
    import torch

    devices = ["cpu"]
    if torch.device(model_device).type != "cpu":
        devices.append(str(model_device))
    return devices


def prepare_op(devices: list[str]) -> dict[str, str]:
    """Load (building if needed, and self-checking on a GPU) the tree-scan op for each device before
    the first request, so no user waits for a build; logs and returns ``{device: backend}``. On
    ZeroGPU a GPU device is prepared inside a ``spaces.GPU`` call. A failure on a GPU is logged
    (the first request there tries again) and does not stop the start; on the CPU it does (as with
    ``GROOTVL_OPS=native`` and no compiler: the setting asks for exactly that)."""
    import time

    import torch

    from grootvl_core import ops
    from grootvl_core.ops import selfcheck

    from .zerogpu import PREPARE_SECONDS, gpu_function

    log = logging.getLogger("grootvl.app")
    chosen = {}
    for device in devices:
        start = time.perf_counter()

        def prepare(device=device):
            # the self-check runs here, on ZeroGPU in the GPU process: its results travel back
            return ops.backend(torch.device(device)), selfcheck.results()

        on_gpu = torch.device(device).type != "cpu"
        if on_gpu:
            prepare = gpu_function(prepare, PREPARE_SECONDS)
        try:
            chosen[device], checks = prepare()
        except Exception as exc:  # noqa: BLE001 - start anyway; the op falls back or the request says why
            if not on_gpu:
                raise
            log.warning(
                "tree-scan op for %s could not be prepared at start-up (%s: %s); the first request "
                "on it will try again",
                device,
                type(exc).__name__,
                exc,
            )
            continue
        log.info("tree-scan op for %s: %s backend (%.1f s)", device, chosen[device], time.perf_counter() - start)
        if on_gpu:
            log.info("GPU tree-scan backends' self-check against the reference:\n%s", selfcheck.table(checks))
    return chosen
