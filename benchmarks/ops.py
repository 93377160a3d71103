"""Native CPU tree-scan op vs the pure-PyTorch reference, at GrootV-T stage shapes (reference 1.2, 1.8).

For every stage of GrootV-T at 224x224 input (56x56 D=160, 28x28 D=320, 14x14 D=640, 7x7 D=1280),
float32, batch 1 and 8, median times (after warm-up, interleaved rounds so that the load of a
shared machine hits every candidate alike) of

- ``copy``: a plain memory copy of the same bytes as the forward: ``torch.empty_like(xa).copy_(xa)``
  of a buffer holding ``x`` and ``a`` (the forward reads ``x`` and ``a`` and writes ``y`` and ``u``,
  the same number of bytes);
- ``fwd``: ``scan_full_fwd`` of the backend (native: ``grootvl_core.ops.backend.implementation``;
  reference: ``grootvl_core.ops.reference``);
- ``fwd+bwd``: ``scan_full_fwd`` then ``scan_full_bwd`` (both gradients);
- native ``bwd`` alone (``scan_full_bwd`` on a saved forward) against ``copy bwd``, a plain copy of
  its bytes (it reads ``gy``, ``a``, ``y``, ``u`` and writes both gradients: a copy of a buffer
  of three such tensors moves as many bytes);

and, per 56x56 image, MST + BFS of the grid (6160 edges) against ``torch.sort`` of its 6160 weights.
Prints one table of RATIOS measured in this run (``ref/nat``: > 1 means native is faster;
``nat/copy``: how far the native forward is from a plain copy). The reference is slow (a Python
loop over BFS depth levels): it runs with a short time budget, and at batch 8 only without
``--quick``.

    python benchmarks/ops.py            # batch 1 and 8, reference at both
    python benchmarks/ops.py --quick    # batch 1 only, fewer rounds
    python benchmarks/ops.py --cpu-time # one thread, CPU time of the thread (for a loaded machine)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
try:
    from grootvl_core import ops
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(ROOT))
    from grootvl_core import ops

from grootvl_core.ops import reference  # noqa: E402 - after the import fallback above
from grootvl_core.ops.backend import implementation, native_error  # noqa: E402

STAGES = {1: (56, 56, 160), 2: (28, 28, 320), 3: (14, 14, 640), 4: (7, 7, 1280)}


CLOCK = time.perf_counter  # --cpu-time: time.thread_time (with one torch thread)


def interleaved_ms(fns: dict, rounds: int, block_s: float = 0.02) -> dict:
    """Per-call wall times (ms, one per round) of each ``fns[name]()``, measured in interleaved rounds.

    Every round times one block of each function in turn (a block repeats a fast function until
    it lasts about ``block_s``), so a load change on a shared machine hits all of them alike; the
    ratios reported are medians of per-round ratios (see :func:`summarise`).
    """
    reps = {}
    for name, fn in fns.items():
        fn()  # warm-up
        t0 = CLOCK()
        fn()
        reps[name] = max(1, int(block_s / max(CLOCK() - t0, 1e-6)))
    samples = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            t0 = CLOCK()
            for _ in range(reps[name]):
                fn()
            samples[name].append((CLOCK() - t0) / reps[name] * 1e3)
    return samples


def summarise(samples: dict, ratios: dict) -> dict:
    """Median time of every candidate, plus ``ratios[key] = (num, den)`` as the median over rounds
    of ``num / den`` measured in the same round."""
    out = {name: statistics.median(v) for name, v in samples.items()}
    for key, (num, den) in ratios.items():
        if num in samples and den in samples:
            out[key] = statistics.median(n / d for n, d in zip(samples[num], samples[den]))
    return out


def grid_tree(h: int, w: int, batch: int, native):
    g = torch.Generator().manual_seed(h * w)
    edges = ops.grid_edges(h, w).expand(batch, -1, -1).contiguous()
    weights = torch.rand(batch, edges.shape[1], generator=g)
    tree, ok = native.mst(edges, weights, h * w)
    order, parent, depth, ok2 = native.bfs(tree.long(), 0)
    assert bool(ok.all()) and bool(ok2.all())
    return order, parent, depth


def scan_case(mod, x, a, order, parent, depth, gy):
    def fwd():
        return mod.scan_full_fwd(x, a, order, parent, depth)

    def fwd_bwd():
        y, u = mod.scan_full_fwd(x, a, order, parent, depth)
        return mod.scan_full_bwd(gy, a, order, parent, depth, y.contiguous(), u.contiguous())

    return fwd, fwd_bwd


def bench_stage(native, stage: int, batch: int, run_ref: bool, rounds: int) -> dict:
    h, w, d = STAGES[stage]
    order, parent, depth = grid_tree(h, w, batch, native)
    g = torch.Generator().manual_seed(stage)
    v = h * w
    x = torch.randn(batch, d, v, generator=g)
    a = torch.rand(batch, d, v, generator=g) * 0.9 + 0.05
    gy = torch.randn(batch, d, v, generator=g)
    xa = torch.stack([x, a])
    nat_fwd, nat_fb = scan_case(native, x, a, order, parent, depth, gy)
    y0, u0 = (t.contiguous() for t in nat_fwd())
    bwd_bytes = torch.stack([gy, a, y0])

    def nat_bwd():
        return native.scan_full_bwd(gy, a, order, parent, depth, y0, u0)

    fns = {
        "copy": lambda: torch.empty_like(xa).copy_(xa),
        "nat_fwd": nat_fwd,
        "nat_fb": nat_fb,
        "copy_bwd": lambda: torch.empty_like(bwd_bytes).copy_(bwd_bytes),
        "nat_bwd": nat_bwd,
    }
    if run_ref:
        ref_fwd, ref_fb = scan_case(reference, x, a, order, parent, depth, gy)
        fns.update(ref_fwd=ref_fwd, ref_fb=ref_fb)
    row = {"stage": stage, "shape": f"{h}x{w}", "D": d, "B": batch}
    ratios = {
        "nat/copy": ("nat_fwd", "copy"),
        "bwd/copy": ("nat_bwd", "copy_bwd"),
        "ref/nat fwd": ("ref_fwd", "nat_fwd"),
        "ref/nat fb": ("ref_fb", "nat_fb"),
    }
    row.update(summarise(interleaved_ms(fns, rounds), ratios))
    if run_ref:
        y_n, y_r = nat_fwd()[0], ref_fwd()[0]
        row["max_diff"] = float((y_n - y_r).abs().max() / y_r.abs().max())
    return row


def bench_tree(native, batch: int, rounds: int, run_ref: bool) -> dict:
    h = w = 56
    g = torch.Generator().manual_seed(0)
    edges = ops.grid_edges(h, w).expand(batch, -1, -1).contiguous()
    weights = torch.rand(batch, edges.shape[1], generator=g)

    def nat():
        tree, _ = native.mst(edges, weights, h * w)
        return native.bfs(tree.long(), 0)

    def ref():
        tree, _ = reference.mst(edges, weights, h * w)
        return reference.bfs(tree.long(), 0)

    fns = {
        "sort": lambda: torch.sort(weights, dim=1, stable=True),
        "mst": lambda: native.mst(edges, weights, h * w),
        "nat": nat,
    }
    if run_ref:
        fns["ref"] = ref
    row = {"B": batch, "E": edges.shape[1]}
    samples = {k: [t / batch for t in v] for k, v in interleaved_ms(fns, rounds).items()}
    row.update(summarise(samples, {"nat/sort": ("nat", "sort"), "ref/nat": ("ref", "nat")}))
    return row


def fmt(v, spec: str) -> str:
    """``format(v, spec)``, or a dash of the same width for a measurement that was not run."""
    return format(v, spec) if v is not None else format("-", ">" + spec.split(".")[0])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only, shorter timing budgets")
    parser.add_argument("--stages", default="1,2,3,4", help="comma-separated GrootV-T stages (1-4)")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time the CPU time of the calling thread with ONE torch thread instead of wall "
        "time: robust on a loaded shared machine",
    )
    args = parser.parse_args(argv)
    global CLOCK
    if args.cpu_time:
        CLOCK = time.thread_time
        torch.set_num_threads(1)
    elif args.threads:
        torch.set_num_threads(args.threads)
    native = implementation("cpu")
    if native is reference:
        print(f"native CPU build unavailable ({native_error('cpu')}); nothing to compare", file=sys.stderr)
        return 1
    batches = [int(b) for b in (args.batches or ("1" if args.quick else "1,8")).split(",")]
    stages = [int(s) for s in args.stages.split(",")]
    rounds = 7 if args.quick else 21
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"float32, median over {rounds} interleaved rounds of "
        f"{'thread CPU time' if args.cpu_time else 'wall time'}"
    )
    print(
        "ratios (medians of per-round ratios): ref/nat > 1 means the native op is faster; nat/copy = "
        "native forward / plain copy of the same bytes; bwd/copy = native backward alone / copy of its bytes\n"
    )

    head = (
        f"{'stage':>5} {'shape':>6} {'D':>5} {'B':>3} | {'copy ms':>8} {'nat fwd':>8} {'nat/copy':>8} | "
        f"{'ref fwd':>8} {'ref/nat':>8} | {'nat f+b':>8} {'ref f+b':>8} {'ref/nat':>8} | {'nat bwd':>8} "
        f"{'bwd/copy':>8} | {'rel diff':>8}"
    )
    print(head)
    print("-" * len(head))
    for batch in batches:
        for stage in stages:
            run_ref = batch == 1 or not args.quick
            r = bench_stage(native, stage, batch, run_ref, rounds)
            print(
                f"{r['stage']:>5} {r['shape']:>6} {r['D']:>5} {r['B']:>3} | {r['copy']:8.3f} {r['nat_fwd']:8.3f} "
                f"{r['nat/copy']:8.2f} | {fmt(r.get('ref_fwd'), '8.2f')} {fmt(r.get('ref/nat fwd'), '8.1f')} | "
                f"{r['nat_fb']:8.3f} {fmt(r.get('ref_fb'), '8.2f')} {fmt(r.get('ref/nat fb'), '8.1f')} | "
                f"{r['nat_bwd']:8.3f} {r['bwd/copy']:8.2f} | "
                f"{fmt(r.get('max_diff'), '8.1e')}",
                flush=True,
            )

    print("\nMST + BFS of a 56x56 grid (6160 edges), per image")
    head = f"{'B':>3} | {'sort ms':>8} {'mst ms':>8} {'mst+bfs':>8} {'/sort':>6} | {'ref ms':>8} {'ref/nat':>8}"
    print(head)
    print("-" * len(head))
    for batch in batches:
        r = bench_tree(native, batch, rounds, run_ref=batch == 1)
        print(
            f"{r['B']:>3} | {r['sort']:8.4f} {r['mst']:8.4f} {r['nat']:8.4f} {r['nat/sort']:6.2f} | "
            f"{fmt(r.get('ref'), '8.2f')} {fmt(r.get('ref/nat'), '8.0f')}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
