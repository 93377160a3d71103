"""The GPU tree-scan backends side by side with the published design, at GrootV-T stage shapes.

For every stage of GrootV-T at 224x224 input (56x56 D=160, 28x28 D=320, 14x14 D=640, 7x7 D=1280),
at each ``--batch`` (1 and 128 by default), times with CUDA events (after warm-up), for each of our
GPU backends that passes its self-check (``cuda``: the compiled kernels of csrc/cuda; ``triton``: the
Triton kernels, no toolchain) and for the published design:

- ``mst+bfs``: tree construction from the grid's edge weights (cuda: device Boruvka + device BFS;
  triton: fixed-round Boruvka + Euler-tour BFS in tensor ops; published: host Boruvka with
  device<->host copies + spin-wait BFS kernel);
- ``scan fwd``: the full tree scan forward (published: gather of the weights into sorted order +
  the two refine kernels, grid (B, D), 64 threads);
- ``scan fwd+bwd``: forward and backward through autograd (published: its two backward functions
  and the gather's backward).

Prints one table with every time and the ratios published / ours (> 1: ours is faster), so the first
GPU run says which backend should come first in the chain, plus the largest difference between each
backend's outputs and the published ones. The published design is rebuilt from
``benchmarks/published_baseline/`` by ``torch.utils.cpp_extension.load`` (needs nvcc; without it
the published columns are left out).

    python benchmarks/ops_cuda.py [--batch 1,128] [--iters 5] [--stages 1,2,3,4] [--backends cuda,triton]
"""

from __future__ import annotations

import argparse
import contextlib
import os
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

from grootvl_core.ops import selfcheck  # noqa: E402
from grootvl_core.ops.backend import load_gpu_backend  # noqa: E402

STAGES = {1: (56, 56, 160), 2: (28, 28, 320), 3: (14, 14, 640), 4: (7, 7, 1280)}


def load_published():
    """Build/import the published-design baseline extension."""
    from torch.utils import cpp_extension

    from grootvl_core.ops.build import _pip_cuda_includes, cuda_toolkit_home

    home = cuda_toolkit_home()
    if home:
        os.environ["CUDA_HOME"] = home
        cpp_extension.CUDA_HOME = home
    src = ROOT / "benchmarks" / "published_baseline" / "published_tree_scan.cu"
    return cpp_extension.load(
        name="grootvl_published_baseline",
        sources=[str(src)],
        extra_include_paths=_pip_cuda_includes(),
        extra_cuda_cflags=["-O3"],
        verbose=False,
    )


def serving_backends(names, device: str = "cuda") -> list[str]:
    """Those of ``names`` ("cuda", "triton") that load and pass the self-check on ``device``; prints
    the self-check table and why any other is left out."""
    ok = []
    for name in names:
        mod, why = load_gpu_backend(name, torch.device(device))
        if mod is None:
            print(f"# {name}: unavailable: {why}")
            continue
        if selfcheck.run(mod, device, name).passed:
            ok.append(name)
    print("# self-check:\n# " + selfcheck.table().replace("\n", "\n# "))
    return ok


@contextlib.contextmanager
def forced(name: str):
    """``GROOTVL_OPS=name`` inside (the op resolves its backend per mode and device, once)."""
    saved = os.environ.get("GROOTVL_OPS")
    os.environ["GROOTVL_OPS"] = name
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("GROOTVL_OPS", None)
        else:
            os.environ["GROOTVL_OPS"] = saved


def published_or_none(script: str):
    """The published-design extension, or None (printing why) when it cannot be built here."""
    try:
        t0 = time.time()
        ext = load_published()
        print(f"# published baseline built/loaded in {time.time() - t0:.1f} s")
        return ext
    except Exception as exc:  # no nvcc on this machine, ...
        print(f"# {script}: published baseline unavailable ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})")
        return None


class PublishedRefine(torch.autograd.Function):
    """The published ``_Refine`` (reference 1.6/1.7): sorted-space weights, edge_coef, saves U, Y."""

    @staticmethod
    def forward(ctx, x, w_sorted, index, parent, child, coef, ext):
        y, up = ext.refine_forward(x, w_sorted, index, parent, child, coef)
        ctx.save_for_backward(w_sorted, index, parent, child, coef, y, up)
        ctx.ext = ext
        return y

    @staticmethod
    def backward(ctx, g):
        w, index, parent, child, coef, y, up = ctx.saved_tensors
        g = g.contiguous()
        gx = ctx.ext.refine_backward_feature(w, index, parent, child, coef, g)
        gw = ctx.ext.refine_backward_edge_weight(w, index, parent, child, coef, y, up, g)
        return gx, gw, None, None, None, None, None


def published_tree(ext, edges32, weights, v):
    tree = ext.mst_forward(edges32, weights, v)
    return ext.bfs_forward(tree, 4)


def published_scan(ext, x, a, tables):
    """The published scan; its kernels take float32/float64 only, so half-precision inputs are
    cast to float32 first and the result back (as a user of that code would have to)."""
    if x.dtype in (torch.float16, torch.bfloat16):
        return published_scan(ext, x.float(), a.float(), tables).to(x.dtype)
    index, parent, child = tables
    w_sorted = torch.gather(a, 2, index.long()[:, None, :].expand_as(a))  # as GrootV's Python does
    coef = torch.ones(x.shape[0], x.shape[2], device=x.device, dtype=x.dtype)
    return PublishedRefine.apply(x, w_sorted, index, parent, child, coef, ext)


def edge_set_keys(rows: torch.Tensor, v: int) -> torch.Tensor:
    """(B, V-1) sorted keys min*V+max of tree rows: equal iff the edge sets are equal."""
    r = rows.long().sort(dim=2).values
    return (r[..., 0] * v + r[..., 1]).sort(dim=1).values


def cuda_time(fn, warmup: int, iters: int) -> float:
    """Mean milliseconds per call, CUDA events around ``iters`` calls after ``warmup`` calls."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters


def run_stage(ext, backends, stage: int, batch: int, warmup: int, iters: int, dtype=torch.float32):
    """Rows ``(shape, op, {implementation: ms})`` for one stage, and the sanity figures per backend
    (same MST edge set as the published code; relative differences of y, grad x, grad a)."""
    h, w, d = STAGES[stage]
    v = h * w
    dev = "cuda"
    gen = torch.Generator(device=dev).manual_seed(stage)
    feat = torch.randn(batch, d, h, w, device=dev, generator=gen)
    edges = ops.grid_edges(h, w, device=dev)
    edges_b = edges.expand(batch, -1, -1).contiguous()
    edges32 = edges_b.int()
    with forced(backends[0]):
        weights = ops.cosine_edge_weights(feat)
    x = torch.randn(batch, d, v, device=dev, generator=gen, dtype=dtype)
    a = torch.sigmoid(torch.randn(batch, d, v, device=dev, generator=gen, dtype=dtype))
    g = torch.randn_like(x)
    tables = published_tree(ext, edges32, weights, v) if ext is not None else None

    fns: dict[str, dict] = {}
    sanity = {}
    for name in backends:
        with forced(name):
            tree = ops.bfs(ops.minimum_spanning_tree(edges_b, weights, v))  # validated once
            if ext is not None:
                rows = ops.minimum_spanning_tree(edges_b, weights, v)
                same = torch.equal(edge_set_keys(rows, v), edge_set_keys(ext.mst_forward(edges32, weights, v), v))
                xr, ar = x.clone().requires_grad_(), a.clone().requires_grad_()
                xp, ap = x.clone().requires_grad_(), a.clone().requires_grad_()
                y_ours, y_pub = ops.tree_scan(xr, ar, tree), published_scan(ext, xp, ap, tables)
                (y_ours * g).sum().backward()
                (y_pub * g).sum().backward()
                sanity[name] = (
                    same,
                    [
                        (p - q).abs().max().item() / max(q.abs().max().item(), 1e-30)
                        for p, q in ((y_ours, y_pub), (xr.grad, xp.grad), (ar.grad, ap.grad))
                    ],
                )

        def tree_fn(name=name):
            with forced(name):
                ops.bfs(ops.minimum_spanning_tree(edges_b, weights, v, validate=False), validate=False)

        def fwd(name=name, tree=tree):
            with forced(name), torch.no_grad():
                ops.tree_scan(x, a, tree)

        def fwd_bwd(name=name, tree=tree):
            with forced(name):
                xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
                torch.autograd.backward(ops.tree_scan(xx, aa, tree), g)

        fns[name] = {"mst+bfs": tree_fn, "scan fwd": fwd, "scan fwd+bwd": fwd_bwd}
    if ext is not None:

        def pub_fwd_bwd():
            xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
            torch.autograd.backward(published_scan(ext, xx, aa, tables), g)

        def pub_fwd():
            with torch.no_grad():
                published_scan(ext, x, a, tables)

        fns["published"] = {
            "mst+bfs": lambda: published_tree(ext, edges32, weights, v),
            "scan fwd": pub_fwd,
            "scan fwd+bwd": pub_fwd_bwd,
        }
    out = []
    for op in ("mst+bfs", "scan fwd", "scan fwd+bwd"):
        out.append((f"{h}x{w} D={d}", op, {impl: cuda_time(f[op], warmup, iters) for impl, f in fns.items()}))
    return out, sanity


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", default="1,128", help="comma-separated batch sizes")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--stages", default="1,2,3,4", help="comma-separated stage numbers (1-4)")
    parser.add_argument("--backends", default="cuda,triton", help="our GPU backends to time")
    parser.add_argument(
        "--dtype",
        default="float32",
        choices=("float32", "float16", "bfloat16"),
        help="scan inputs (half precision: ours read it directly, the published kernels get float32 copies)",
    )
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    if not torch.cuda.is_available():
        print("ops_cuda.py: no CUDA device; nothing to measure")
        return 1
    backends = serving_backends(args.backends.split(","))
    if not backends:
        print("ops_cuda.py: no GPU backend passed its self-check; nothing of ours to time")
        return 1
    ext = published_or_none("ops_cuda.py")
    impls = backends + (["published"] if ext is not None else [])
    print(
        f"# device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
        f"scan inputs {args.dtype}, mean of {args.iters} after {args.warmup} warm-up calls"
    )
    head = f"{'shape':<16} {'batch':>5} {'op':<14}" + "".join(f" {i + ' ms':>13}" for i in impls)
    if ext is not None:
        head += "".join(f" {'published/' + b:>17}" for b in backends)
    print(head)
    checks = []
    for batch in (int(b) for b in args.batch.split(",")):
        for stage in (int(s) for s in args.stages.split(",")):
            rows, sanity = run_stage(ext, backends, stage, batch, args.warmup, args.iters, dtype)
            for shape, op, ms in rows:
                line = f"{shape:<16} {batch:>5} {op:<14}" + "".join(f" {ms[i]:>13.3f}" for i in impls)
                if ext is not None:
                    line += "".join(f" {ms['published'] / ms[b]:>16.2f}x" for b in backends)
                print(line, flush=True)
            checks.append((rows[0][0], batch, sanity))
            torch.cuda.empty_cache()
    if ext is not None:
        print("# sanity (each backend vs published): same MST edge set; max relative difference of y, grad x, grad a")
        for shape, batch, sanity in checks:
            for name, (same, diffs) in sanity.items():
                print(
                    f"#   {shape:<16} b{batch:<4} {name:<7} same tree: {same}  diffs: "
                    + ", ".join(f"{x:.2e}" for x in diffs)
                )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
