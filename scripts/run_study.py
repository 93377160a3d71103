"""The tree-vs-raster study (issue 5): train each task with every arm and seed on the same budget,
then tabulate mean and spread.

Each (task, arm, seed) is one ``python -m grootvl_core train ...`` run (so every run records its
own command, metrics and checkpoints, and an interrupted study resumes where it stopped);
``--jobs`` runs go at once, each with ``--threads`` torch threads.

    python scripts/run_study.py --task classify --steps 1000 --seeds 0 1 2 --out runs/study
    python scripts/run_study.py --task segment  --steps 600  --seeds 0 1 2 --out runs/study
    python scripts/run_study.py --task lm       --steps 600  --seeds 0 1 2 --out runs/study
    python scripts/run_study.py --table --out runs/study        # the markdown table of all results

Arms: vision ``tree`` (the published minimum-spanning-tree scan) and ``raster`` (the same model with
the tree replaced by the row-major chain: a plain causal scan); language ``tree`` (GrootL),
``chain`` (tree 2 replaced by the chain) and ``plain`` (``tree_scale=0``: exactly Mamba).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ARMS = {"classify": ("tree", "raster"), "segment": ("tree", "raster"), "lm": ("tree", "chain", "plain")}
METRIC = {
    "classify": ("top1", "Fashion-MNIST test top-1 (%)", 100.0, "higher"),
    "segment": ("mIoU", "scenes test mIoU (%)", 100.0, "higher"),
    "lm": ("bits_per_byte", "fortunes validation bits/byte", 1.0, "lower"),
}


def run_one(task: str, arm: str, seed: int, steps: int, out: Path, threads: int) -> dict:
    folder = out / task / f"{arm}-s{seed}"
    result = folder / "result.json"
    if result.is_file():
        return json.loads(result.read_text())
    cmd = [
        sys.executable,
        "-m",
        "grootvl_core",
        "train",
        task,
        "--out",
        str(folder),
        "--arm",
        arm,
        "--seed",
        str(seed),
        "--steps",
        str(steps),
        "--threads",
        str(threads),
        "--resume",
    ]
    folder.mkdir(parents=True, exist_ok=True)
    start = time.time()
    with open(folder / "train.log", "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {proc.returncode}); see {folder / 'train.log'}")
    print(f"{task} {arm} seed {seed}: done in {time.time() - start:.0f} s", flush=True)
    return json.loads(result.read_text())


def table(out: Path) -> str:
    """Markdown: one row per (task, arm), mean +- sample std over seeds, and the seeds' values."""
    lines = ["| task | arm | steps | seeds | metric | mean ± std | per seed |", "|---|---|---|---|---|---|---|"]
    for task, arms in ARMS.items():
        key, label, scale, _ = METRIC[task]
        for arm in arms:
            results = []
            for f in sorted((out / task).glob(f"{arm}-s*/result.json")):
                r = json.loads(f.read_text())
                results.append((int(f.parent.name.split("-s")[-1]), r["step"], r["final_metrics"][key] * scale))
            if not results:
                continue
            values = [v for _, _, v in results]
            digits = 2 if scale == 100.0 else 3
            spread = f"{statistics.stdev(values):.{digits}f}" if len(values) > 1 else "n/a"
            steps = sorted({s for _, s, _ in results})
            lines.append(
                f"| {task} | {arm} | {'/'.join(map(str, steps))} | {len(values)} | {label} | "
                f"{statistics.mean(values):.{digits}f} ± {spread} | "
                + ", ".join(f"{v:.{digits}f}" for _, _, v in sorted(results))
                + " |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=sorted(ARMS))
    p.add_argument("--arms", nargs="+", help="default: every arm of the task")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, help="training steps of every run (the same budget for every arm)")
    p.add_argument("--out", type=Path, default=Path("runs/study"))
    p.add_argument("--jobs", type=int, default=2, help="runs at once")
    p.add_argument("--threads", type=int, default=1, help="torch threads per run")
    p.add_argument("--table", action="store_true", help="print the table of the finished runs and exit")
    args = p.parse_args(argv)
    if args.table:
        text = table(args.out)
        print(text)
        (args.out / "study.md").write_text(text + "\n")
        return 0
    if not args.task or not args.steps:
        p.error("--task and --steps are required (or --table)")
    arms = args.arms or ARMS[args.task]
    bad = [a for a in arms if a not in ARMS[args.task]]
    if bad:
        p.error(f"unknown arm(s) {bad} for {args.task}; choose from {ARMS[args.task]}")
    runs = [(arm, seed) for seed in args.seeds for arm in arms]
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = [pool.submit(run_one, args.task, arm, seed, args.steps, args.out, args.threads) for arm, seed in runs]
        for f in futures:
            f.result()
    print(table(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
