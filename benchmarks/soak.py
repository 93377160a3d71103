"""Soak test of the demo as a public Space sees it: many new sessions, every endpoint, good and
hostile requests mixed, on loopback, bounded in count and time.

Starts ``python app.py`` on a free loopback port (``load.Server``: its own process group, stopped at
the end, also on errors and Ctrl-C) with a fresh ``GRADIO_TEMP_DIR`` and ``TMPDIR``, so the disk it
writes can be measured. Then ``--sessions`` sessions (each a new :class:`gradio_rest.RestClient`,
i.e. a new session hash), ``--clients`` at a time, send ``--requests`` requests each; every request
is hostile with probability ``--hostile`` (fixed ``--seed``), else good. No new request starts after
``--duration`` seconds.

Good requests, cycling over every endpoint: ``/classify`` (batched) + ``/classify_trees`` +
``/classify_tree`` + ``/classify_affinity``, ``/segment`` + ``/segment_tree`` + ``/segment_affinity``,
``/generate`` (a 1,000-character prompt, ``--new-tokens``) + ``/token_tree``, ``/pixel_tree``,
``/zoo``; each answer is checked (labels, a picture, text). Hostile requests: a file that is not an
image, a 13,300 x 13,300 PNG of under 1 MB (an image bomb; also sent inline as a ``data:`` URL), a
server path that was never uploaded, an integer where an image goes, an unknown model, NaN
temperature, a 2**70 seed, an over-long prompt, an affinity outside the grid. Each must come back
as an error message (or, from the batched ``/classify``, a note saying why), never as a success,
and never fail a good request; one upload above the size limit must be refused (HTTP 413).

Reported: good requests and their failures (target 0), hostile requests and how many were not
refused, latency p50/p95/max of good vs hostile requests, the server's RSS over time (sampled every
0.5 s; growth from after the warm-up to the end, target < 400 MB over 500 requests), bytes under
the server's temp folders before and after, and temp folders left behind once it stopped.

Usage (from the repository root)::

    python benchmarks/soak.py                                  # 50 sessions x 10 requests
    python benchmarks/soak.py --sessions 10 --requests 6 --json soak.json
    python benchmarks/soak.py --url http://127.0.0.1:7860/ --server-pid 1234   # a running server

Exit status: 0 when the run finished (even with missed targets; ``--strict`` makes those exit 1),
2 when the server could not be started, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import random
import shutil
import struct
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import load  # noqa: E402  (next to this script)
from gradio_rest import GradioError, RestClient, file_data  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"
TARGET_RSS_GROWTH_MB_PER_500 = 400.0
LONG_PROMPT = ("All work and no play makes Jack a dull boy. " * 30)[:1000]
BOMB_SIDE = 13_300


# ---------------------------------------------------------------------------------------------
# inputs


def png_bomb(path: Path, side: int = BOMB_SIDE) -> Path:
    """A ``side`` x ``side`` RGBA PNG of zeros: under 1 MB on disk, ``4 * side**2`` bytes decoded."""
    if path.is_file():
        return path

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    comp = zlib.compressobj(9)
    row = b"\x00" * (1 + 4 * side)  # filter byte + pixels
    idat = b"".join(comp.compress(row) for _ in range(side)) + comp.flush()
    header = struct.pack(">IIBBBBB", side, side, 8, 6, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b""))
    return path


@dataclass
class Inputs:
    fashion: list[str]
    scenes: list[str]
    photos: list[str]
    not_image: str
    bomb: str
    too_big: str


def make_inputs(folder: Path) -> Inputs:
    folder.mkdir(parents=True, exist_ok=True)
    not_image = folder / "notes.png"
    not_image.write_bytes(b"this is not an image")
    too_big = folder / "too-big.bin"
    if not too_big.is_file():
        with open(too_big, "wb") as f:  # sparse: above the 32 MB upload limit, nothing on disk
            f.truncate(40 * 1024 * 1024)
    return Inputs(
        sorted(str(p) for p in (ASSETS / "fashion").glob("*.png")),
        sorted(str(p) for p in (ASSETS / "scenes").glob("*.png")),
        sorted(str(p) for p in (ASSETS / "photos").glob("*.jpg")),
        str(not_image),
        str(png_bomb(folder / "bomb.png")),
        str(too_big),
    )


# ---------------------------------------------------------------------------------------------
# requests: each a function (client, inputs, rng) -> None that raises AssertionError when the
# answer is wrong (good requests) or was not refused (hostile ones)


def _pic(value) -> bool:
    return isinstance(value, dict) and bool(value.get("path") or value.get("url"))


def good_classify(c: RestClient, inp: Inputs, rng: random.Random) -> None:
    image = c.upload(rng.choice(inp.fashion))
    labels, note = c.predict("/classify", [image, "grootv-nano-fmnist"])
    assert isinstance(labels, dict) and labels.get("confidences"), f"no labels: {note!r}"
    row, col = c.predict("/classify_trees", [image, "grootv-nano-fmnist"])[-2:]
    assert _pic(c.predict("/classify_tree", [0, 0, "weight"])[0])
    assert _pic(c.predict("/classify_affinity", [0, 0, row, col])[0])


def good_segment(c: RestClient, inp: Inputs, rng: random.Random) -> None:
    out = c.predict("/segment", [c.upload(rng.choice(inp.scenes)), "grootv-nano-scenes", 0.5, False])
    assert _pic(out[0]) and "legend" in out[1]
    assert _pic(c.predict("/segment_tree", [0, 0, "depth"])[0])
    assert _pic(c.predict("/segment_affinity", [0, 0, 2, 2])[0])


def good_generate(c: RestClient, inp: Inputs, rng: random.Random, new_tokens: int = 4) -> None:
    text, stats, *_ = c.predict(
        "/generate", [LONG_PROMPT, "grootl-nano-fortunes", new_tokens, 0.7, 40, 0.95, rng.randrange(1000)]
    )
    assert isinstance(text, str) and "new tokens" in stats, stats
    picture, spans = c.predict("/token_tree", [1])
    assert _pic(picture) and spans


def good_pixel_tree(c: RestClient, inp: Inputs, rng: random.Random) -> None:
    picture, note = c.predict("/pixel_tree", [c.upload(rng.choice(inp.photos)), 32, "l2", "depth"])
    assert _pic(picture) and "grid" in note


def good_zoo(c: RestClient, inp: Inputs, rng: random.Random) -> None:
    table = c.predict("/zoo", [])[0]
    assert table and "grootv-nano-fmnist" in json.dumps(table)


GOOD = {
    "classify": good_classify,
    "segment": good_segment,
    "generate": good_generate,
    "pixel_tree": good_pixel_tree,
    "zoo": good_zoo,
}


def _refused(call, *, note_says: str | None = None) -> str:
    """Run ``call``; it must raise GradioError (an error event) or, for ``/classify``, answer with no
    labels and a note containing ``note_says``. Returns the message."""
    try:
        out = call()
    except GradioError as exc:
        message = str(exc)
        assert "the app raised an error" not in message and not message.rstrip().endswith(": Error"), (
            f"an error without its message: {message!r}"
        )
        return message
    if note_says is not None and isinstance(out, (list, tuple)) and len(out) == 2:
        labels, note = out
        assert not (labels or {}).get("confidences") and note_says in str(note), f"not refused: {out!r}"[:300]
        return str(note)
    raise AssertionError(f"not refused: {str(out)[:300]}")


def hostile_not_image(c, inp, rng):
    image = c.upload(inp.not_image)
    _refused(lambda: c.predict("/classify", [image, "grootv-nano-fmnist"]), note_says="not an image")
    _refused(lambda: c.predict("/pixel_tree", [image, 32, "l2", "depth"]))


def hostile_bomb(c, inp, rng):
    image = c.upload(inp.bomb)
    _refused(lambda: c.predict("/classify", [image, "grootv-nano-fmnist"]), note_says="megapixels")
    api, data = rng.choice(
        [("/segment", [image, "grootv-nano-scenes", 0.5, False]), ("/pixel_tree", [image, 32, "l2", "depth"])]
    )
    _refused(lambda: c.predict(api, data))


def hostile_inline_bomb(c, inp, rng):
    url = "data:image/png;base64," + base64.b64encode(Path(inp.bomb).read_bytes()).decode()
    _refused(lambda: c.predict("/pixel_tree", [{"url": url, "meta": {"_type": "gradio.FileData"}}, 32, "l2", "depth"]))


def hostile_path(c, inp, rng):
    _refused(lambda: c.predict("/classify", [file_data("/etc/hostname"), "grootv-nano-fmnist"]), note_says="upload")


def hostile_integer(c, inp, rng):
    _refused(lambda: c.predict("/classify", [12345, "grootv-nano-fmnist"]), note_says="Cannot classify")
    _refused(lambda: c.predict("/segment", [12345, "grootv-nano-scenes", 0.5, False]))


def hostile_model(c, inp, rng):
    image = c.upload(rng.choice(inp.fashion))
    _refused(lambda: c.predict("/classify", [image, "no-such-model"]), note_says="Cannot classify")


def hostile_sampling(c, inp, rng):
    bad = rng.choice(
        [
            [LONG_PROMPT, "grootl-nano-fortunes", 4, math.nan, 40, 0.95, 0],
            [LONG_PROMPT, "grootl-nano-fortunes", 4, 0.7, 40, math.nan, 0],
            [LONG_PROMPT, "grootl-nano-fortunes", 4, 0.7, 40, 0.95, 2**70],
            ["x" * 5000, "grootl-nano-fortunes", 4, 0.7, 40, 0.95, 0],
            ["   ", "grootl-nano-fortunes", 4, 0.7, 40, 0.95, 0],
        ]
    )
    message = _refused(lambda: c.predict("/generate", bad))
    assert "internal error" not in message, message


def hostile_affinity(c, inp, rng):
    c.predict("/classify_trees", [c.upload(inp.fashion[0]), "grootv-nano-fmnist"])
    _refused(lambda: c.predict("/classify_affinity", [0, 0, 99, 99]))


HOSTILE = {
    "not_image": hostile_not_image,
    "bomb": hostile_bomb,
    "inline_bomb": hostile_inline_bomb,
    "path": hostile_path,
    "integer": hostile_integer,
    "model": hostile_model,
    "sampling": hostile_sampling,
    "affinity": hostile_affinity,
}


# ---------------------------------------------------------------------------------------------
# the run


@dataclass
class Outcome:
    session: int
    kind: str  # "good" or "hostile"
    name: str
    ok: bool  # good: answered correctly; hostile: refused with a message
    latency_s: float
    error: str | None = None


def run_session(
    url: str,
    session: int,
    requests: int,
    inp: Inputs,
    hostile: float,
    seed: int,
    deadline: float,
    timeout: float,
    new_tokens: int,
) -> list[Outcome]:
    rng = random.Random(seed * 100_003 + session)
    out = []
    goods = list(GOOD)
    with RestClient(url, timeout=timeout) as client:
        for i in range(requests):
            if time.monotonic() > deadline:
                break
            if rng.random() < hostile:
                kind, name = "hostile", rng.choice(list(HOSTILE))
                fn = HOSTILE[name]
            else:
                kind, name = "good", goods[(session + i) % len(goods)]
                fn = GOOD[name]
            start = time.perf_counter()
            try:
                if name == "generate":
                    fn(client, inp, rng, new_tokens)
                else:
                    fn(client, inp, rng)
                ok, error = True, None
            except (AssertionError, GradioError, OSError, ValueError) as exc:
                ok, error = False, f"{type(exc).__name__}: {str(exc)[:300]}"
            out.append(Outcome(session, kind, name, ok, time.perf_counter() - start, error))
    return out


def oversized_upload_refused(url: str, inp: Inputs) -> bool:
    with RestClient(url, timeout=60) as client:
        try:
            client.upload(inp.too_big)
        except GradioError as exc:
            return "413" in str(exc)
    return False


def folder_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


class RssSeries(threading.Thread):
    """``(seconds since start, RSS bytes)`` of a process tree every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.5):
        super().__init__(daemon=True, name="rss-series")
        self.pid, self.interval = pid, interval
        self.points: list[tuple[float, int]] = []
        self._stop_event = threading.Event()
        self._t0 = time.monotonic()

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = load.tree_rss(self.pid)
            if rss:
                self.points.append((time.monotonic() - self._t0, rss))
            self._stop_event.wait(self.interval)

    def now(self) -> int:
        return load.tree_rss(self.pid)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)


def percentile(values: list[float], q: float) -> float | None:
    return load.percentile(values, q)


def summarize(outcomes: list[Outcome], rss_start: int, rss_end: int, series: list[tuple[float, int]]) -> dict:
    good = [o for o in outcomes if o.kind == "good"]
    bad = [o for o in outcomes if o.kind == "hostile"]
    n = len(outcomes)
    growth_mb = (rss_end - rss_start) / 1e6
    step = max(1, len(series) // 12)
    return {
        "requests": n,
        "good": len(good),
        "good_failed": sum(not o.ok for o in good),
        "hostile": len(bad),
        "hostile_not_refused": sum(not o.ok for o in bad),
        "good_latency_s": {
            "p50": percentile([o.latency_s for o in good], 50),
            "p95": percentile([o.latency_s for o in good], 95),
            "max": max((o.latency_s for o in good), default=None),
        },
        "hostile_latency_s": {
            "p50": percentile([o.latency_s for o in bad], 50),
            "p95": percentile([o.latency_s for o in bad], 95),
            "max": max((o.latency_s for o in bad), default=None),
        },
        "rss_mb": {
            "after_warmup": rss_start / 1e6,
            "end": rss_end / 1e6,
            "peak": max((r for _, r in series), default=0) / 1e6,
            "growth": growth_mb,
            # the target is per 500 requests; shorter runs are held to it unscaled
            "growth_limit": TARGET_RSS_GROWTH_MB_PER_500 * max(1.0, n / 500),
            "over_time": [(round(t, 1), round(r / 1e6)) for t, r in series[::step]],
        },
        "failures": [asdict(o) for o in outcomes if not o.ok][:20],
    }


def print_report(report: dict) -> None:
    s = report["summary"]
    f = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    print(
        f"\n{report['sessions']} sessions x {report['requests_per_session']} requests "
        f"({report['clients']} at a time, {report['hostile_share']:.0%} hostile), {report['wall_s']:.0f} s"
    )
    print(f"good requests:    {s['good']:5d}, failed {s['good_failed']} (target 0)")
    print(f"hostile requests: {s['hostile']:5d}, not refused {s['hostile_not_refused']} (target 0)")
    print(f"oversized upload refused (HTTP 413): {report['oversized_upload_refused']}")
    for kind in ("good", "hostile"):
        lat = s[f"{kind}_latency_s"]
        print(f"latency {kind:8s} p50 {f(lat['p50'])} s  p95 {f(lat['p95'])} s  max {f(lat['max'])} s")
    r = s["rss_mb"]
    print(
        f"RSS: {r['after_warmup']:.0f} MB after warm-up, {r['end']:.0f} MB at the end, peak {r['peak']:.0f} MB; "
        f"growth {r['growth']:+.0f} MB over {s['requests']} requests (target < {r['growth_limit']:.0f} MB: "
        f"{TARGET_RSS_GROWTH_MB_PER_500:.0f} per 500 requests)"
    )
    print("RSS over time (s, MB): " + ", ".join(f"{t:g}:{m}" for t, m in r["over_time"]))
    d = report["disk"]
    print(
        f"disk: temp folders {d['before'] / 1e6:.1f} MB before, {d['after'] / 1e6:.1f} MB after "
        f"({(d['after'] - d['before']) / 1e6:+.1f} MB)"
        + ("" if d["after_stop"] is None else f", {d['after_stop'] / 1e6:.1f} MB once stopped")
        + f"; left in the server's TMPDIR after the stop: {d['left_after_stop']}"
    )
    for fail in s["failures"][:8]:
        print(f"  failed {fail['kind']} {fail['name']} (session {fail['session']}): {fail['error']}")
    print("targets:", ", ".join(f"{k} {'met' if v else 'MISSED'}" for k, v in report["targets"].items()))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=50, help="new sessions in all (default 50)")
    p.add_argument("--requests", type=int, default=10, help="requests per session (default 10)")
    p.add_argument("--clients", type=int, default=4, help="sessions at a time (default 4)")
    p.add_argument("--hostile", type=float, default=0.2, help="share of hostile requests (default 0.2)")
    p.add_argument("--new-tokens", type=int, default=4, help="tokens per good /generate (default 4)")
    p.add_argument("--duration", type=float, default=900.0, help="no request starts after this many s (900)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds one request may take (120)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--url", help="attach to a running demo instead of starting one")
    p.add_argument(
        "--root",
        help="start the app.py of this checkout instead (e.g. an older commit, for "
        "before/after figures; it gets PYTHONPATH=ROOT)",
    )
    p.add_argument("--server-pid", type=int, help="with --url: the server's pid, for its RSS")
    p.add_argument("--work-dir", help="inputs and the server's temp folders (default: a new temp folder)")
    p.add_argument("--json", help="also write the report here")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = p.parse_args(argv)
    for name in ("sessions", "requests", "clients"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if not 0 <= args.hostile <= 1:
        p.error("--hostile must lie in [0, 1]")
    return args


def warm_up(url: str, inp: Inputs, timeout: float, rounds: int = 2) -> None:
    """``rounds`` good requests per endpoint (model loading, first allocations), not measured."""
    rng = random.Random(0)
    for _ in range(rounds):
        with RestClient(url, timeout=timeout) as client:
            for fn in GOOD.values():
                fn(client, inp, rng)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    own_work = args.work_dir is None
    work = Path(args.work_dir or tempfile.mkdtemp(prefix="grootvl-soak-"))
    inp = make_inputs(work / "inputs")
    server_tmp = work / "server-tmp"
    gradio_tmp = work / "gradio-tmp"
    for folder in (server_tmp, gradio_tmp):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    server = None
    try:
        if args.url:
            url, pid = args.url, args.server_pid
        else:
            env = {"TMPDIR": str(server_tmp), "GRADIO_TEMP_DIR": str(gradio_tmp)}
            root = Path(args.root).resolve() if args.root else ROOT
            if args.root:
                env["PYTHONPATH"] = str(root)
            server = load.Server(load.free_port(), 2, [], work / "server.log", extra_env=env, root=root)
            try:
                server.wait_ready(300)
            except RuntimeError as exc:
                print(f"error: {exc}\n{server.log_tail()}", file=sys.stderr)
                return 2
            url, pid = server.url, server.pid
        warm_up(url, inp, args.timeout)
        disk_before = folder_bytes(server_tmp) + folder_bytes(gradio_tmp)
        series = RssSeries(pid) if pid else None
        rss_start = series.now() if series else 0
        if series:
            series.start()
        start = time.monotonic()
        deadline = start + args.duration
        with ThreadPoolExecutor(args.clients) as pool:
            futures = [
                pool.submit(
                    run_session,
                    url,
                    s,
                    args.requests,
                    inp,
                    args.hostile,
                    args.seed,
                    deadline,
                    args.timeout,
                    args.new_tokens,
                )
                for s in range(args.sessions)
            ]
            outcomes = [o for f in futures for o in f.result()]
        wall = time.monotonic() - start
        refused_413 = oversized_upload_refused(url, inp)
        rss_end = series.now() if series else 0
        if series:
            series.stop()
        disk_after = folder_bytes(server_tmp) + folder_bytes(gradio_tmp)
        left, disk_after_stop = None, None
        if server is not None:
            server.stop()
            server = None
            left = sorted(p.name for p in server_tmp.iterdir())
            disk_after_stop = folder_bytes(server_tmp) + folder_bytes(gradio_tmp)
        summary = summarize(outcomes, rss_start, rss_end, series.points if series else [])
        rss = summary["rss_mb"]
        report = {
            "sessions": args.sessions,
            "requests_per_session": args.requests,
            "clients": args.clients,
            "hostile_share": args.hostile,
            "wall_s": wall,
            "summary": summary,
            "oversized_upload_refused": refused_413,
            "disk": {
                "before": disk_before,
                "after": disk_after,
                "after_stop": disk_after_stop,
                "left_after_stop": left,
            },
            "targets": {
                "0 good failed": summary["good_failed"] == 0,
                "hostile all refused": summary["hostile_not_refused"] == 0,
                "upload limit": refused_413,
                "RSS growth < 400 MB / 500 requests": bool(pid) and rss["growth"] < rss["growth_limit"],
                "no grootvl-app folder left": not any(n.startswith("grootvl-app-") for n in left or []),
            },
        }
        print_report(report)
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=1))
        return 1 if args.strict and not all(report["targets"].values()) else 0
    except KeyboardInterrupt:
        return 130
    finally:
        if server is not None:
            server.stop()
        if own_work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
