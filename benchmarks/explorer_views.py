"""Time each tree-explorer view (issue 20) takes on this machine for the bundled models.

The app's own functions, no server: the scans side by side (tree vs raster chain, both pictures
and the reading) and the tree export (PNG + JSON) for a recorded block of the classifier and the
segmenter, the effective receptive field per model (computed, not cached), and the segment tab
with and without flip test-time augmentation (ratio flip / plain). Medians over ``--repeats``.

    python benchmarks/explorer_views.py [--repeats 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the app package (not installed by pip)


def _median_ms(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    args = p.parse_args()
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from app import ModelCache
    from app.examples import fashion_examples, scene_examples
    from app.explorer.export import export_tree
    from app.explorer.scans import render_scans
    from app.tabs import erf
    from app.tabs.classify import record_trees
    from app.tabs.segment import segment
    from grootvl_core import ops

    cache = ModelCache(capacity=3, device="cpu")
    print(f"op backend {ops.backend('cpu')}, torch threads {torch.get_num_threads()}, median of {args.repeats}")
    classify_state = record_trees(cache, fashion_examples()[0], "grootv-nano-fmnist")[0]
    segment(cache, scene_examples()[0], "grootv-nano-scenes", 0.5)  # warm-up
    plain = _median_ms(lambda: segment(cache, scene_examples()[0], "grootv-nano-scenes", 0.5), args.repeats)
    flip = _median_ms(lambda: segment(cache, scene_examples()[0], "grootv-nano-scenes", 0.5, True), args.repeats)
    segment_state = segment(cache, scene_examples()[0], "grootv-nano-scenes", 0.5)[4]
    for name, state in (("grootv-nano-fmnist", classify_state), ("grootv-nano-scenes", segment_state)):
        for stage, block in sorted(state["trees"])[:1] + sorted(state["trees"])[-1:]:
            rec = state["trees"][(stage, block)]
            where = f"{name} stage {stage + 1} block {block + 1} ({rec.height}x{rec.width})"
            row, col = rec.height // 2, rec.width // 2
            # NOTE: the lambdas run inside this iteration (timed, then dropped)
            scans = _median_ms(lambda: render_scans(state, stage, block, row, col), args.repeats)  # noqa: B023
            export = _median_ms(lambda: export_tree(state, stage, block), args.repeats)  # noqa: B023
            print(f"{where}: scans side by side {scans:.1f} ms, export PNG + JSON {export:.1f} ms")
    for name in ("grootv-nano-fmnist", "grootv-nano-scenes"):
        result = erf.compute_erf(cache, name)
        erf.render_erf(result, cached=False)
        print(
            f"{name}: effective receptive fields, {len(result.stages)} stages over {result.images} images: "
            f"{result.seconds:.2f} s (then cached)"
        )
    print(f"grootv-nano-scenes segment tab: plain {plain:.0f} ms, with flip {flip:.0f} ms, ratio {flip / plain:.2f}")


if __name__ == "__main__":
    main()
