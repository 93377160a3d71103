"""GrootV-T on CUDA: inference and training-step throughput, our GPU backends vs the published design.

The same GrootV-T (random weights, 224x224 input) is timed in interleaved rounds: as the package
runs it with each of our GPU backends that passes its self-check (``GROOTVL_OPS=cuda``: the
compiled kernels; ``GROOTVL_OPS=triton``: the Triton kernels and tensor-op tree building), and with
every TreeSSM's tree building and tree scan routed through the published design rebuilt in
``published_baseline/published_tree_scan.cu`` (host Boruvka with device<->host copies, spin-wait
BFS, one 64-thread block per (image, channel) scan; see ``ops_cuda.py``; left out without nvcc).
Everything else (the projections, convolutions, norms, the edge-weight formula) is the same
PyTorch code in all.

- ``inference``: ``model.eval()``, ``torch.no_grad()``, batch ``--batch`` (128);
- ``train step``: forward, cross-entropy on random labels, backward, AdamW step, batch
  ``--train-batch`` (64).

Each for every ``--precision`` (``fp32``; ``bf16``: autocast, which TreeSSM's scan ignores: it
computes in float32 as the published code does). Prints images per second, the ratios to the
published design, and the largest relative difference of each backend's logits from the first
one's on one batch (they should agree to float32 rounding: the trees are the same).

    python benchmarks/models_cuda.py [--batch 128] [--train-batch 64] [--iters 5] [--precision fp32,bf16]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
try:
    from grootvl_core import ops
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(ROOT))
    from grootvl_core import ops

from grootvl_core.models import tree_ssm as _tree_ssm  # noqa: E402  (also registers grootv_* with timm)


class PublishedTables(NamedTuple):
    """The published BFS output that its scan kernels take: ``(B, V, max_adj)`` int32 tables."""

    index: torch.Tensor
    parent: torch.Tensor
    child: torch.Tensor


class _OpsWithBaselineScan:
    """``grootvl_core.ops`` as TreeSSM sees it, except that ``tree_scan`` of a
    :class:`PublishedTables` tree goes to the baseline scan."""

    def __init__(self, scan: Callable[[torch.Tensor, torch.Tensor, PublishedTables], torch.Tensor]):
        self._scan = scan

    def __getattr__(self, name):
        return getattr(ops, name)

    def tree_scan(self, x, a, tree, mode="full"):
        if not isinstance(tree, PublishedTables):
            return ops.tree_scan(x, a, tree, mode)
        if mode != "full":
            raise ValueError(f"the published baseline has the full scan only, not mode={mode!r}")
        return self._scan(x, a, tree)


@contextlib.contextmanager
def baseline_kernels(
    build_tree: Callable[[torch.Tensor], PublishedTables],
    scan: Callable[[torch.Tensor, torch.Tensor, PublishedTables], torch.Tensor],
) -> Iterator[None]:
    """Inside, every TreeSSM builds its tree with ``build_tree(feature (B, D, H, W)) ->
    PublishedTables`` and scans with ``scan(x, a, tables) -> y`` (``x``, ``a``, ``y``: ``(B, D, V)``
    in vertex order), instead of ``ops.grid_spanning_tree`` and ``ops.tree_scan``.

    Models with ``tree_per_stage=True`` or ``scan_order="raster"`` are not supported (the shared
    tree's checks and the subtree scan need our tree format)."""
    saved_build, saved_ops = _tree_ssm.build_grid_tree, _tree_ssm.ops

    def build_grid_tree(feature):
        tables = build_tree(feature)
        return _tree_ssm.SpanningTree(None, tables, feature.shape[2], feature.shape[3])

    _tree_ssm.build_grid_tree = build_grid_tree
    _tree_ssm.ops = _OpsWithBaselineScan(scan)
    try:
        yield
    finally:
        _tree_ssm.build_grid_tree, _tree_ssm.ops = saved_build, saved_ops


def published_kernels(ext):
    """``(build_tree, scan)`` for :func:`baseline_kernels` from the published-design extension:
    the edge weights by the same formula (``ops.cosine_edge_weights``), then its host MST and BFS;
    its refine kernels with the gather of the weights into sorted order done in Python, as the
    published GrootV does."""
    from ops_cuda import published_scan, published_tree

    edge_cache: dict = {}

    def build_tree(feature):
        b, _, h, w = feature.shape
        key = (h, w, b, feature.device)
        if key not in edge_cache:  # the published code keeps the grid's edge index too
            edge_cache[key] = ops.grid_edges(h, w, device=feature.device).expand(b, -1, -1).int().contiguous()
        weights = ops.cosine_edge_weights(feature)
        return PublishedTables(*published_tree(ext, edge_cache[key], weights.float().contiguous(), h * w))

    def scan(x, a, tables):
        return published_scan(ext, x.contiguous(), a.contiguous(), tuple(tables))

    return build_tree, scan


def throughput(step: Callable[[], None], batch: int, warmup: int, iters: int) -> float:
    """Images per second of ``step`` (CUDA events around ``iters`` calls after ``warmup``)."""
    from ops_cuda import cuda_time

    return batch / (cuda_time(step, warmup, iters) / 1000.0)


def run(args) -> int:
    import timm
    import torch.nn.functional as F
    from ops_cuda import forced, published_or_none, serving_backends

    if not torch.cuda.is_available():
        print("models_cuda.py: no CUDA device; nothing to measure")
        return 1
    backends = serving_backends(args.backends.split(","))
    if not backends:
        print("models_cuda.py: no GPU backend passed its self-check; nothing of ours to time")
        return 1
    ext = published_or_none("models_cuda.py")
    impls = {name: (lambda name=name: forced(name)) for name in backends}
    if ext is not None:
        build_tree, scan = published_kernels(ext)
        impls["published"] = lambda: baseline_kernels(build_tree, scan)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    model = timm.create_model(args.model).cuda()
    if getattr(model, "tree_per_stage", False):
        raise SystemExit("models_cuda.py: tree_per_stage models are not supported by the baseline swap")
    gen = torch.Generator(device="cuda").manual_seed(0)
    print(
        f"# device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"{args.model}, 224x224, TF32 on, images/s from the mean of {args.iters} calls after {args.warmup} "
        f"warm-up calls, {args.rounds} interleaved rounds (median)"
    )

    # sanity: the same logits (float32, eval) with every set of kernels
    x = torch.randn(min(args.batch, 16), 3, 224, 224, device="cuda", generator=gen)
    model.eval()
    logits = {}
    with torch.no_grad():
        for name, ctx in impls.items():
            with ctx():
                logits[name] = model(x)
    first = logits[backends[0]]
    for name, out in logits.items():
        diff = ((out - first).abs().max() / first.abs().max().clamp(min=1e-30)).item()
        print(f"# sanity: max |logits {name} - {backends[0]}| / max |logits| = {diff:.2e} (batch {x.shape[0]}, fp32)")

    names = list(impls)
    head = f"{'phase':<12} {'precision':<9} {'batch':>5}" + "".join(f" {n + ' img/s':>16}" for n in names)
    if ext is not None:
        head += "".join(f" {b + '/published':>17}" for b in backends)
    print(head)
    for precision in args.precision.split(","):
        if precision not in ("fp32", "bf16"):
            raise SystemExit(f"models_cuda.py: --precision takes fp32 and/or bf16, got {precision!r}")
        autocast = torch.autocast("cuda", dtype=torch.bfloat16, enabled=precision == "bf16")
        xi = torch.randn(args.batch, 3, 224, 224, device="cuda", generator=gen)
        xt = torch.randn(args.train_batch, 3, 224, 224, device="cuda", generator=gen)
        yt = torch.randint(0, model.num_classes, (args.train_batch,), device="cuda", generator=gen)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def infer(xi=xi, autocast=autocast):  # (bound now: this precision's inputs)
            with torch.no_grad(), autocast:
                model(xi)

        def train_step(xt=xt, yt=yt, opt=opt, autocast=autocast):
            with autocast:
                loss = F.cross_entropy(model(xt), yt)
            loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)

        for phase, fn, batch, mode in (
            ("inference", infer, args.batch, False),
            ("train step", train_step, args.train_batch, True),
        ):
            model.train(mode)
            rounds = {n: [] for n in names}
            for _ in range(args.rounds):
                for n, ctx in impls.items():
                    with ctx():
                        rounds[n].append(throughput(fn, batch, args.warmup, args.iters))
            med = {n: sorted(r)[len(r) // 2] for n, r in rounds.items()}
            line = f"{phase:<12} {precision:<9} {batch:>5}" + "".join(f" {med[n]:>16.1f}" for n in names)
            if ext is not None:
                line += "".join(f" {med[b] / med['published']:>16.2f}x" for b in backends)
            print(line, flush=True)
        torch.cuda.empty_cache()
    print(f"# peak memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="grootv_tiny")
    parser.add_argument("--batch", type=int, default=128, help="inference batch")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--precision", default="fp32,bf16", help="comma-separated: fp32, bf16")
    parser.add_argument("--backends", default="cuda,triton", help="our GPU backends to time")
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
