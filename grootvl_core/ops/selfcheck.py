"""The self-check a GPU backend passes before it serves a device (design.md "Op API").

A small adversarial batch, the same every time: grid MSTs with tied, signed, infinite and NaN
weights, graphs with duplicate edges and self-loops, BFS of chains, stars and random trees from
several roots (1x1, 1xN, Nx1 and odd grids among them), and both scan modes forward and backward
in float32, float64 and float16, on trees whose order is breadth-first and on one that is not.
The backend runs it on the device; :mod:`.reference` runs it on CPU copies. Tree rows and BFS
tables must be equal, values within float rounding. A mismatch or any exception (a kernel image
missing for the card, a compile error, a launch failure) fails the check, and
:mod:`.backend` then takes that backend out for that device.

``python -m grootvl_core.ops.selfcheck`` checks every backend on every device here and prints the
table (backend, device, max error, pass/fail, time); it exits 1 when a backend that could be
loaded disagrees with the reference.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass
from types import ModuleType

import torch

from . import reference

__all__ = ["SelfCheck", "run", "results", "table", "main"]

# relative tolerances against the float64 reference, per dtype the backend computes in
_TOL = {torch.float64: 1e-10, torch.float32: 2e-5, torch.float16: 2e-2}

_lock = threading.Lock()
_results: list[SelfCheck] = []


@dataclass(frozen=True)
class SelfCheck:
    """One backend's check on one device."""

    backend: str
    device: str
    passed: bool
    max_error: float  # largest relative error of the value comparisons (0 when all exact)
    seconds: float
    detail: str  # why it failed, or what it covered

    def row(self) -> str:
        err = f"{self.max_error:.2e}" if self.max_error == self.max_error else "-"
        return (
            f"{self.backend:<10} {self.device:<8} {err:>9} {'pass' if self.passed else 'FAIL':<5} "
            f"{self.seconds:7.2f}s  {self.detail}"
        )


class _Mismatch(AssertionError):
    pass


# ----------------------------------------------------------------------------------------------
# The batch (CPU, deterministic)
# ----------------------------------------------------------------------------------------------


def _tree_rows(kind: str, v: int, rng: random.Random) -> list[tuple[int, int]]:
    perm = list(range(v))
    rng.shuffle(perm)
    if kind == "chain":
        rows = [(perm[i], perm[i + 1]) for i in range(v - 1)]
    elif kind == "star":
        rows = [(perm[0], perm[i]) for i in range(1, v)]
    else:
        rows = [(perm[k], perm[rng.randrange(k)]) for k in range(1, v)]
    rows = [(s, t) if rng.random() < 0.5 else (t, s) for s, t in rows]
    rng.shuffle(rows)
    return rows


def _preorder(rows: list[tuple[int, int]], v: int, root: int):
    """A parent-before-child order that is not breadth-first (depth-first preorder)."""
    adj = [[] for _ in range(v)]
    for s, t in rows:
        adj[s].append(t)
        adj[t].append(s)
    order, parent, depth, pos = [], [], [], {}
    stack = [(root, -1, 0)]
    while stack:
        cur, par, dep = stack.pop()
        pos[cur] = len(order)
        order.append(cur)
        parent.append(pos[par] if par >= 0 else 0)
        depth.append(dep)
        stack.extend((nb, cur, dep + 1) for nb in reversed(adj[cur]) if nb != par)
    return tuple(torch.tensor([t]) for t in (order, parent, depth))


def _mst_cases():
    from .graph import grid_edges

    g = torch.Generator().manual_seed(0)
    special = torch.tensor([float("nan"), 0.0, -0.0, float("inf"), float("-inf"), -1.5, 1.0, 1.0])
    for h, w in ((1, 1), (1, 6), (5, 1), (3, 5), (6, 7)):
        edges = grid_edges(h, w).expand(2, -1, -1).contiguous()
        n = edges.shape[1]
        yield f"mst {h}x{w} ties", edges, torch.randint(0, 3, (2, n), generator=g).float(), h * w
        yield f"mst {h}x{w} special", edges, special[torch.randint(0, 8, (2, n), generator=g)], h * w
    rng = random.Random(1)
    rows = [
        _tree_rows("random", 12, rng)
        + [(rng.randrange(12), rng.randrange(12)) for _ in range(9)]
        + [(3, 3), (0, 1), (0, 1)]
        for _ in range(2)
    ]
    edges = torch.tensor(rows)
    yield "mst duplicates+loops", edges, torch.randint(0, 4, edges.shape[:2], generator=g).float(), 12
    yield "mst disconnected", torch.tensor([[[0, 1], [1, 2], [3, 4], [0, 2]]]), torch.rand(1, 4, generator=g), 5


def _trees():
    """``(name, rows (B, V-1, 2), root)`` of adversarial spanning trees."""
    rng = random.Random(2)
    yield "1 vertex", torch.zeros(2, 0, 2, dtype=torch.int64), 0
    for kind, v in (("chain", 7), ("star", 9), ("random", 13), ("chain", 2)):
        rows = torch.tensor([_tree_rows(kind, v, rng) for _ in range(2)])
        yield f"{kind} V={v}", rows, rng.randrange(v)
    g = torch.Generator().manual_seed(3)
    from .graph import grid_edges

    for h, w in ((1, 6), (6, 1), (3, 5)):
        edges = grid_edges(h, w).expand(2, -1, -1).contiguous()
        tree, _ = reference.mst(edges, torch.randint(0, 2, (2, edges.shape[1]), generator=g).float(), h * w)
        yield f"grid {h}x{w}", tree.long(), 0


# ----------------------------------------------------------------------------------------------
# Comparisons
# ----------------------------------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _same(what: str, got: torch.Tensor, want: torch.Tensor) -> None:
    if got.shape != want.shape or not torch.equal(got.cpu().to(want.dtype), want):
        raise _Mismatch(f"{what}: differs from the reference")


def _close(what: str, got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype) -> float:
    got, want = got.detach().cpu().double(), want.detach().double()
    if got.shape != want.shape:
        raise _Mismatch(f"{what}: shape {tuple(got.shape)}, the reference's {tuple(want.shape)}")
    scale = want.abs().max().clamp_min(1.0) if want.numel() else torch.tensor(1.0)
    err = float((got - want).abs().max() / scale) if want.numel() else 0.0
    if not err <= _TOL[dtype]:  # NaN fails too
        raise _Mismatch(f"{what}: relative error {err:.3g} > {_TOL[dtype]:.0e}")
    return err


def _check_scans(mod, device, what, order, parent, depth, dtype, seed) -> float:
    b, v = order.shape
    g = torch.Generator().manual_seed(seed)
    d = 3
    x = torch.randn(b, d, v, generator=g, dtype=torch.float64)
    a = torch.rand(b, d, v, generator=g, dtype=torch.float64) * 0.9 + 0.05
    gy = torch.randn(b, d, v, generator=g, dtype=torch.float64)
    if dtype == torch.float16:  # the reference sees the values the backend reads
        x, a, gy = (t.half().double() for t in (x, a, gy))
    idx = [t.to(device) for t in (order, parent, depth)]
    xd, ad, gd = (t.to(device, dtype) for t in (x, a, gy))
    originals = [t.clone() for t in (xd, ad, gd)]
    err = 0.0
    y_ref, u_ref = reference.scan_full_fwd(x, a, order, parent, depth)
    y, u = mod.scan_full_fwd(xd, ad, *idx)
    err = max(err, _close(f"{what} full y", y, y_ref, dtype), _close(f"{what} full u", u, u_ref, dtype))
    gx_ref, ga_ref = reference.scan_full_bwd(gy, a, order, parent, depth, y_ref, u_ref)
    gx, ga = mod.scan_full_bwd(gd, ad, *idx, y, u)
    err = max(err, _close(f"{what} full dx", gx, gx_ref, dtype), _close(f"{what} full da", ga, ga_ref, dtype))
    ys_ref = reference.scan_subtree_fwd(x, a, order, parent, depth)
    ys = mod.scan_subtree_fwd(xd, ad, *idx)
    err = max(err, _close(f"{what} subtree y", ys, ys_ref, dtype))
    gx_ref, ga_ref = reference.scan_subtree_bwd(gy, a, order, parent, depth, ys_ref)
    gx, ga = mod.scan_subtree_bwd(gd, ad, *idx, ys)
    err = max(err, _close(f"{what} subtree dx", gx, gx_ref, dtype), _close(f"{what} subtree da", ga, ga_ref, dtype))
    _sync(device)
    if not all(torch.equal(p, q) for p, q in zip(originals, (xd, ad, gd))):
        raise _Mismatch(f"{what}: the scan mutated its inputs")
    return err


def _check(mod: ModuleType, device: torch.device) -> tuple[float, int]:
    err, n = 0.0, 0
    for what, edges, weights, v in _mst_cases():
        got = mod.mst(edges.to(device), weights.to(device), v)
        want = reference.mst(edges, weights, v)
        _same(f"{what} rows", got[0], want[0])
        _same(f"{what} connected", got[1], want[1])
        n += 1
    for what, rows, root in _trees():
        got = mod.bfs(rows.to(device), root)
        want = reference.bfs(rows, root)
        for name, p, q in zip(("order", "parent", "depth", "ok"), got, want):
            _same(f"bfs {what} root {root} {name}", p, q)
        order, parent, depth, _ = want
        for dtype in (torch.float32, torch.float64, torch.float16):
            err = max(err, _check_scans(mod, device, f"{what} {dtype}", order, parent, depth, dtype, n))
        n += 1
    rows = _tree_rows("random", 11, random.Random(4))
    err = max(err, _check_scans(mod, device, "preorder", *_preorder(rows, 11, 5), torch.float32, 99))
    if hasattr(mod, "grid_cosine_weights") and getattr(mod, "NAME", "") == "triton":
        feature = torch.randn(2, 5, 3, 7, generator=torch.Generator().manual_seed(5))
        feature[0, :, 1, 2] = 0  # a zero vector: eps clamps its norm
        err = max(
            err,
            _close(
                "grid cosine weights",
                mod.grid_cosine_weights(feature.to(device)),
                reference.grid_cosine_weights(feature),
                torch.float32,
            ),
        )
    _sync(device)
    return err, n


def run(mod: ModuleType, device, name: str) -> SelfCheck:
    """Check backend ``mod`` (named ``name``) on ``device``; never raises for what it finds."""
    device = torch.device(device)
    label = str(device) if device.type != "cuda" or device.index is not None else "cuda:0"
    start = time.perf_counter()
    try:
        err, n = _check(mod, device)
        result = SelfCheck(
            name,
            label,
            True,
            err,
            time.perf_counter() - start,
            f"{n} trees and graphs, both scan modes, fwd+bwd, fp32/fp64/fp16",
        )
    except _Mismatch as exc:
        result = SelfCheck(name, label, False, float("nan"), time.perf_counter() - start, str(exc))
    except Exception as exc:  # a missing kernel image, a compile or launch error, ...
        first = (str(exc).strip().splitlines() or [""])[0][:300]
        result = SelfCheck(
            name, label, False, float("nan"), time.perf_counter() - start, f"{type(exc).__name__}: {first}"
        )
    with _lock:
        _results.append(result)
    return result


def results() -> list[SelfCheck]:
    """Every check run in this process, in order."""
    with _lock:
        return list(_results)


def table(rows: list[SelfCheck] | None = None) -> str:
    """The checks as a text table (default: every check run in this process)."""
    rows = results() if rows is None else rows
    head = f"{'backend':<10} {'device':<8} {'max err':>9} {'check':<5} {'time':>8}  detail"
    return "\n".join([head] + [r.row() for r in rows]) if rows else head + "\n(no GPU backend checked yet)"


def main(argv: list[str] | None = None) -> int:
    from .backend import load_gpu_backend, triton_interpreted

    parser = argparse.ArgumentParser(
        prog="python -m grootvl_core.ops.selfcheck",
        description="Check the GPU tree-scan backends against the reference.",
    )
    parser.add_argument(
        "--device", action="append", help="device to check (default: every GPU; the CPU too under TRITON_INTERPRET=1)"
    )
    parser.add_argument(
        "--backend", choices=("cuda", "triton"), action="append", help="backend to check (default: both)"
    )
    args = parser.parse_args(argv)
    devices = args.device or [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if not args.device and triton_interpreted():
        devices.append("cpu")
    rows: list[SelfCheck] = []
    for dev in devices:
        for name in args.backend or ("cuda", "triton"):
            if name == "cuda" and torch.device(dev).type != "cuda":
                continue
            mod, why = load_gpu_backend(name, torch.device(dev))
            if mod is None:
                print(f"{name:<10} {dev:<8} unavailable: {why}")
                continue
            rows.append(run(mod, dev, name))
    print(table(rows))
    if not devices:
        print("no GPU here (set TRITON_INTERPRET=1 to check the Triton kernels on the CPU)")
    return 0 if all(r.passed for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
