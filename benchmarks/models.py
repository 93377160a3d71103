"""GrootV-T image-classification latency on CPU versus timm's ConvNeXt-T (same FLOP class).

Both models are random-initialised, in eval mode, float32, batch 1 (default) at 224x224; runs are
interleaved and the median and the best run are reported, with the ratios GrootV-T / ConvNeXt-T
from the same run (the best-run ratio is the robust one on a shared, loaded machine).
One extra profiled GrootV-T forward splits its time into tree building (grid edge weights, MST,
BFS: ``grootvl.tree_build``), the tree scan (``grootvl.tree_scan``) and the rest, from the
``torch.profiler`` ranges recorded by ``TreeSSM``.

    python benchmarks/models.py                       # batch 1, 224, 5 repeats
    python benchmarks/models.py --batch 8 --threads 4 --repeats 3
    python benchmarks/models.py --unfused             # also GrootV-T with PyTorch's elementwise ops

``--unfused`` times, in the same interleaved rounds, a third model: the same GrootV-T with TreeSSM's
discretisation and output step run by PyTorch's ops (``ops.reference.ssm_discretize`` /
``ssm_output``, the gate's SiLU separate) instead of the fused native CPU kernels.

Target (issue 3/7): GrootV-T within a small factor of ConvNeXt-T on CPU; say which op backend ran.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch

from grootvl_core import ops
from grootvl_core.models import grootv_tiny


def _time(model: torch.nn.Module, x: torch.Tensor) -> float:
    start = time.perf_counter()
    model(x)
    return time.perf_counter() - start


def _breakdown(model: torch.nn.Module, x: torch.Tensor) -> dict[str, float]:
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        model(x)
        total = time.perf_counter() - start
    # the custom ops keep their names in profiles (ops.backend.eager_native steps aside)
    ranges = {
        "tree_build": ("grootvl::grid_spanning_tree",),
        "tree_scan": ("grootvl::tree_scan_full", "grootvl::tree_scan_subtree"),
    }
    out = {"total": total}
    for part, keys in ranges.items():
        # NOTE: events(), not key_averages(), which drops some top-level custom-op events
        out[part] = sum(evt.cpu_time_total for evt in prof.events() if evt.name in keys) / 1e6
    out["rest"] = total - out["tree_build"] - out["tree_scan"]
    return out


class _PyTorchElementwise:
    """Context: TreeSSM's discretisation and output step through PyTorch's ops (the oracles in
    ``ops.reference``) instead of the fused native kernels; the tree and the scan stay native."""

    def __enter__(self):
        from grootvl_core.ops import reference

        self._saved = ops.ssm_discretize, ops.ssm_output

        def output(h, u, c, ds, h_norm, out_norm, z, *, silu_gate=False):
            hw, hb = (h_norm.weight, h_norm.bias) if h_norm is not None else (None, None)
            return reference.ssm_output(
                h,
                u,
                c,
                ds,
                hw,
                hb,
                h_norm.eps if h_norm is not None else 0.0,
                out_norm.weight,
                out_norm.bias,
                out_norm.eps,
                z,
                silu_gate,
            )

        ops.ssm_discretize, ops.ssm_output = reference.ssm_discretize, output
        return self

    def __exit__(self, *exc):
        ops.ssm_discretize, ops.ssm_output = self._saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave default)")
    parser.add_argument(
        "--unfused",
        action="store_true",
        help="also time GrootV-T with PyTorch's elementwise ops in TreeSSM (see above)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    grootv = grootv_tiny().eval()
    convnext = timm.create_model("convnext_tiny").eval()
    x = torch.randn(args.batch, 3, args.size, args.size)
    print(f"op backend: {ops.backend('cpu')}, torch threads: {torch.get_num_threads()}, input {tuple(x.shape)}")

    times = {"grootv_tiny": [], "convnext_tiny": []}
    if args.unfused:
        times["grootv_tiny_unfused"] = []
    with torch.inference_mode():
        for model in (grootv, convnext):  # warm-up (native build, allocator, caches)
            model(x)
        for _ in range(args.repeats):
            times["grootv_tiny"].append(_time(grootv, x))
            times["convnext_tiny"].append(_time(convnext, x))
            if args.unfused:
                with _PyTorchElementwise():
                    times["grootv_tiny_unfused"].append(_time(grootv, x))
        parts = _breakdown(grootv, x)

    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    for name, t in med.items():
        print(
            f"{name:20s} median {t * 1e3:9.1f} ms, best {best[name] * 1e3:9.1f} ms  (runs: "
            f"{', '.join(f'{s * 1e3:.0f}' for s in times[name])})"
        )
    for name in [k for k in times if k.startswith("grootv")]:
        print(
            f"ratio {name} / convnext_tiny: median {med[name] / med['convnext_tiny']:.2f}x, "
            f"best {best[name] / best['convnext_tiny']:.2f}x"
        )
    total = parts["total"]
    print(
        f"grootv_tiny breakdown (one profiled run, {total * 1e3:.1f} ms): "
        + ", ".join(
            f"{k} {parts[k] * 1e3:.1f} ms ({100 * parts[k] / total:.0f}%)" for k in ("tree_build", "tree_scan", "rest")
        )
    )


if __name__ == "__main__":
    main()
