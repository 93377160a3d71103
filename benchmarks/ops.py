"""Native CPU tree-scan op vs the pure-PyTorch reference, at GrootV-T stage shapes (reference 1.2, 1.8).

For every stage of GrootV-T at 224x224 input (56x56 D=160, 28x28 D=320, 14x14 D=640, 7x7 D=1280),
float32, batch 1 and 8, median times (``torch.utils.benchmark``, after warm-up) of

- ``copy``: a plain memory copy of the same bytes as the forward: ``torch.empty_like(xa).copy_(xa)``
  of a buffer holding ``x`` and ``a`` (the forward reads ``x`` and ``a`` and writes ``y`` and ``u``,
  the same number of bytes);
- ``fwd``: ``scan_full_fwd`` of the backend (native: ``grootvl_core.ops.backend.implementation``;
  reference: ``grootvl_core.ops.reference``);
- ``fwd+bwd``: ``scan_full_fwd`` then ``scan_full_bwd`` (both gradients).

and, per 56x56 image, MST + BFS of the grid (6160 edges) against ``torch.sort`` of its 6160 weights.
Prints one table of RATIOS measured in this run (``ref/nat``: > 1 means native is faster;
``nat/copy``: how far the native forward is from a plain copy). The reference is slow (a Python
loop over BFS depth levels): it runs with a short time budget, and at batch 8 only without
``--quick``.

    python benchmarks/ops.py            # batch 1 and 8, reference at both
    python benchmarks/ops.py --quick    # batch 1 only, shorter timings
"""

from __future__ import annotations

import argparse
import platform
import sys
from pathlib import Path

import torch
from torch.utils import benchmark

ROOT = Path(__file__).resolve().parent.parent
try:
    from grootvl_core import ops
except ImportError:  # running from a checkout that is not installed
    sys.path.insert(0, str(ROOT))
    from grootvl_core import ops

from grootvl_core.ops import reference
from grootvl_core.ops.backend import implementation, native_error

STAGES = {1: (56, 56, 160), 2: (28, 28, 320), 3: (14, 14, 640), 4: (7, 7, 1280)}


def median_ms(fn, min_run_time: float) -> float:
    """Median wall time of ``fn()`` in ms (warm-up included in ``blocked_autorange``)."""
    fn()  # warm-up (first-touch allocations, caches)
    timer = benchmark.Timer(stmt="fn()", globals={"fn": fn})
    return timer.blocked_autorange(min_run_time=min_run_time).median * 1e3


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


def bench_stage(native, stage: int, batch: int, run_ref: bool, t_nat: float, t_ref: float) -> dict:
    h, w, d = STAGES[stage]
    order, parent, depth = grid_tree(h, w, batch, native)
    g = torch.Generator().manual_seed(stage)
    v = h * w
    x = torch.randn(batch, d, v, generator=g)
    a = torch.rand(batch, d, v, generator=g) * 0.9 + 0.05
    gy = torch.randn(batch, d, v, generator=g)
    xa = torch.stack([x, a])
    row = {"stage": stage, "shape": f"{h}x{w}", "D": d, "B": batch}
    row["copy"] = median_ms(lambda: torch.empty_like(xa).copy_(xa), t_nat)
    nat_fwd, nat_fb = scan_case(native, x, a, order, parent, depth, gy)
    row["nat_fwd"] = median_ms(nat_fwd, t_nat)
    row["nat_fb"] = median_ms(nat_fb, t_nat)
    if run_ref:
        ref_fwd, ref_fb = scan_case(reference, x, a, order, parent, depth, gy)
        row["ref_fwd"] = median_ms(ref_fwd, t_ref)
        row["ref_fb"] = median_ms(ref_fb, t_ref)
        y_n = nat_fwd()[0]
        y_r = ref_fwd()[0]
        row["max_diff"] = float((y_n - y_r).abs().max() / y_r.abs().max())
    return row


def bench_tree(native, batch: int, t_nat: float, t_ref: float, run_ref: bool) -> dict:
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

    row = {"B": batch, "E": edges.shape[1]}
    row["sort"] = median_ms(lambda: torch.sort(weights, dim=1, stable=True), t_nat) / batch
    row["mst"] = median_ms(lambda: native.mst(edges, weights, h * w), t_nat) / batch
    row["nat"] = median_ms(nat, t_nat) / batch
    if run_ref:
        row["ref"] = median_ms(ref, t_ref) / batch
    return row


def fmt(v, spec=".3f"):
    return "-" if v is None else format(v, spec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="batch 1 only, shorter timing budgets")
    parser.add_argument("--stages", default="1,2,3,4", help="comma-separated GrootV-T stages (1-4)")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,8)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    native = implementation("cpu")
    if native is reference:
        print(f"native CPU build unavailable ({native_error('cpu')}); nothing to compare", file=sys.stderr)
        return 1
    batches = [int(b) for b in (args.batches or ("1" if args.quick else "1,8")).split(",")]
    stages = [int(s) for s in args.stages.split(",")]
    t_nat, t_ref = (0.2, 0.3) if args.quick else (1.0, 1.5)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"float32, median of torch.utils.benchmark blocked_autorange")
    print("ratios: ref/nat > 1 means the native op is faster; nat/copy = native forward / plain copy of "
          "the same bytes\n")

    head = (f"{'stage':>5} {'shape':>6} {'D':>5} {'B':>3} | {'copy ms':>8} {'nat fwd':>8} {'nat/copy':>8} | "
            f"{'ref fwd':>8} {'ref/nat':>8} | {'nat f+b':>8} {'ref f+b':>8} {'ref/nat':>8} | {'rel diff':>8}")
    print(head)
    print("-" * len(head))
    for batch in batches:
        for stage in stages:
            run_ref = batch == 1 or not args.quick
            r = bench_stage(native, stage, batch, run_ref, t_nat, t_ref)
            ref_fwd, ref_fb = r.get("ref_fwd"), r.get("ref_fb")
            print(f"{r['stage']:>5} {r['shape']:>6} {r['D']:>5} {r['B']:>3} | {r['copy']:8.3f} {r['nat_fwd']:8.3f} "
                  f"{r['nat_fwd'] / r['copy']:8.2f} | {fmt(ref_fwd, '8.2f')} "
                  f"{fmt(ref_fwd and ref_fwd / r['nat_fwd'], '8.1f')} | {r['nat_fb']:8.3f} {fmt(ref_fb, '8.2f')} "
                  f"{fmt(ref_fb and ref_fb / r['nat_fb'], '8.1f')} | {fmt(r.get('max_diff'), '8.1e')}", flush=True)

    print("\nMST + BFS of a 56x56 grid (6160 edges), per image")
    head = f"{'B':>3} | {'sort ms':>8} {'mst ms':>8} {'mst+bfs':>8} {'/sort':>6} | {'ref ms':>8} {'ref/nat':>8}"
    print(head)
    print("-" * len(head))
    for batch in batches:
        r = bench_tree(native, batch, t_nat, t_ref, run_ref=batch == 1)
        print(f"{r['B']:>3} | {r['sort']:8.4f} {r['mst']:8.4f} {r['nat']:8.4f} {r['nat'] / r['sort']:6.2f} | "
              f"{fmt(r.get('ref'), '8.2f')} {fmt(r.get('ref') and r['ref'] / r['nat'], '8.0f')}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
