"""CUDA tree-scan op vs the published design, at GrootV-T stage shapes (reference-grootvl.md 1.8).

For every stage of GrootV-T at 224x224 input (56x56 D=160, 28x28 D=320, 14x14 D=640, 7x7 D=1280),
batch 128 by default, times with CUDA events (after warm-up):

- ``mst+bfs``: tree construction from the grid's edge weights (ours: device Boruvka + device BFS;
  published: host Boruvka with device<->host copies + spin-wait BFS kernel);
- ``scan fwd``: the full tree scan forward (published: gather of the weights into sorted order +
  the two refine kernels, grid (B, D), 64 threads);
- ``scan fwd+bwd``: forward and backward through autograd (published: its two backward functions
  and the gather's backward).

Prints one table with both times and the ratio published / ours (> 1: ours is faster), plus the
largest difference between the two implementations' outputs as a sanity check. The published
design is rebuilt from ``benchmarks/published_baseline/`` by ``torch.utils.cpp_extension.load``.

    python benchmarks/ops_cuda.py [--batch 128] [--iters 10] [--stages 1,2,3,4]
"""

from __future__ import annotations

import argparse
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

from grootvl_core.ops.backend import implementation, native_error

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
    return cpp_extension.load(name="grootvl_published_baseline", sources=[str(src)],
                              extra_include_paths=_pip_cuda_includes(),
                              extra_cuda_cflags=["-O3"], verbose=False)


def cuda_and_baseline(script: str):
    """The published-design extension once a GPU and our CUDA build are there; otherwise None,
    after printing why (``script`` names the caller)."""
    if not torch.cuda.is_available():
        print(f"{script}: no CUDA device; nothing to measure")
        return None
    implementation("cuda")
    if native_error("cuda"):
        print(f"{script}: the CUDA build of grootvl failed: {native_error('cuda')}")
        return None
    t0 = time.time()
    ext = load_published()
    print(f"# published baseline built/loaded in {time.time() - t0:.1f} s")
    return ext


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


def run_stage(ext, stage: int, batch: int, warmup: int, iters: int, dtype=torch.float32):
    h, w, d = STAGES[stage]
    v = h * w
    dev = "cuda"
    gen = torch.Generator(device=dev).manual_seed(stage)
    feat = torch.randn(batch, d, h, w, device=dev, generator=gen)
    edges = ops.grid_edges(h, w, device=dev)
    weights = ops.cosine_edge_weights(feat)
    edges_b = edges.expand(batch, -1, -1).contiguous()
    edges32 = edges_b.int()

    def ours_tree():
        return ops.bfs(ops.minimum_spanning_tree(edges_b, weights, v, validate=False), validate=False)

    tree = ops.bfs(ops.minimum_spanning_tree(edges_b, weights, v))  # validated once
    tables = published_tree(ext, edges32, weights, v)
    x = torch.randn(batch, d, v, device=dev, generator=gen, dtype=dtype)
    a = torch.sigmoid(torch.randn(batch, d, v, device=dev, generator=gen, dtype=dtype))
    g = torch.randn_like(x)

    # sanity: same MST edge set, same scan output and gradients (different BFS orders)
    tree_rows = ops.minimum_spanning_tree(edges_b, weights, v)
    pub_rows = ext.mst_forward(edges32, weights, v)
    same_tree = torch.equal(edge_set_keys(tree_rows, v), edge_set_keys(pub_rows, v))
    xr, ar = x.clone().requires_grad_(), a.clone().requires_grad_()
    xp, ap = x.clone().requires_grad_(), a.clone().requires_grad_()
    y_ours = ops.tree_scan(xr, ar, tree)
    y_pub = published_scan(ext, xp, ap, tables)
    (y_ours * g).sum().backward()
    (y_pub * g).sum().backward()
    diffs = [(y_ours - y_pub).abs().max().item() / max(y_pub.abs().max().item(), 1e-30),
             (xr.grad - xp.grad).abs().max().item() / max(xp.grad.abs().max().item(), 1e-30),
             (ar.grad - ap.grad).abs().max().item() / max(ap.grad.abs().max().item(), 1e-30)]

    def ours_fwd():
        with torch.no_grad():
            ops.tree_scan(x, a, tree)

    def pub_fwd():
        with torch.no_grad():
            published_scan(ext, x, a, tables)

    def ours_fwd_bwd():
        xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
        torch.autograd.backward(ops.tree_scan(xx, aa, tree), g)

    def pub_fwd_bwd():
        xx, aa = x.detach().requires_grad_(), a.detach().requires_grad_()
        torch.autograd.backward(published_scan(ext, xx, aa, tables), g)

    rows = []
    for name, ours, pub in (("mst+bfs", ours_tree, lambda: published_tree(ext, edges32, weights, v)),
                            ("scan fwd", ours_fwd, pub_fwd),
                            ("scan fwd+bwd", ours_fwd_bwd, pub_fwd_bwd)):
        t_ours = cuda_time(ours, warmup, iters)
        t_pub = cuda_time(pub, warmup, iters)
        rows.append((f"{h}x{w} D={d}", name, t_ours, t_pub))
    return rows, same_tree, diffs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--stages", default="1,2,3,4", help="comma-separated stage numbers (1-4)")
    parser.add_argument("--dtype", default="float32", choices=("float32", "float16", "bfloat16"),
                        help="scan inputs (half precision: ours reads it directly, the published "
                             "kernels get float32 copies)")
    args = parser.parse_args(argv)
    dtype = getattr(torch, args.dtype)
    ext = cuda_and_baseline("ops_cuda.py")
    if ext is None:
        return 1
    print(f"# device: {torch.cuda.get_device_name()}, torch {torch.__version__}, CUDA {torch.version.cuda}, "
          f"batch {args.batch}, scan inputs {args.dtype}, mean of {args.iters} after {args.warmup} warm-up calls")
    print(f"{'shape':<16} {'op':<14} {'ours ms':>10} {'published ms':>13} {'published/ours':>15}")
    checks = []
    for stage in (int(s) for s in args.stages.split(",")):
        rows, same_tree, diffs = run_stage(ext, stage, args.batch, args.warmup, args.iters, dtype)
        for shape, name, t_ours, t_pub in rows:
            print(f"{shape:<16} {name:<14} {t_ours:>10.3f} {t_pub:>13.3f} {t_pub / t_ours:>14.2f}x", flush=True)
        checks.append((rows[0][0], same_tree, diffs))
    print("# sanity (ours vs published): same MST edge set; max relative difference of y, grad x, grad a")
    for shape, same_tree, diffs in checks:
        print(f"#   {shape:<16} same tree: {same_tree}  diffs: " + ", ".join(f"{x:.2e}" for x in diffs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
