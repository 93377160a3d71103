"""Load test of the demo on loopback: many clients hammering one endpoint at once.

Starts the demo itself (``python app.py --host 127.0.0.1 --port <free> --concurrency C`` from the
repository root, with ``HF_HUB_OFFLINE=1`` and ``GRADIO_ANALYTICS_ENABLED=False`` added to the
inherited environment; stopped at the end, also on errors and Ctrl-C), or attaches to a running one
with ``--url``. Then ``--clients`` threads, each with its own client (``--client rest``, the default:
:class:`gradio_rest.RestClient`, plain HTTP on Gradio's REST API, a few ms of CPU per request;
``--client gradio``: ``gradio_client.Client``, far heavier, which on one small machine competes
with the server for the cores), send ``--requests`` requests each to one endpoint:

* ``--task classify``: ``/classify`` with the bundled ``grootv-nano-fmnist`` on the Fashion-MNIST
  example images in ``assets/fashion`` (cycling);
* ``--task generate``: ``/generate`` with the bundled ``grootl-nano-fortunes`` on the prompts in
  ``assets/prompts.json`` (cycling), ``--max-new-tokens`` (48), temperature 0.7, top-k 40,
  top-p 0.95, seed = request number.

``--warmup`` requests (2) go first, one after the other, and are not measured (model loading).

Reported: requests, failures (errors, answers over ``--timeout`` and requests not started before the
``--deadline``; the first few messages are printed), latency p50/p95/max per request as the client
sees it (submit to result, queueing and file downloads included), throughput (successful requests
per second of the measured phase), and the peak RSS of the server process tree (sampled every
0.1 s; psutil if installed, else /proc; with ``--url`` only when ``--server-pid`` is given). For
generate also the per-request decoding rate: new tokens after the first streamed update divided by
the time from that update to the one that carried the last token (token counts parsed from the
stats string, "N new tokens · X tokens/s"), its p50, and the aggregate rate (all new tokens / wall
time), next to the rate the server's stats string reports. Targets are printed beside the numbers:
classify p50 < 300 ms, generate decoding p50 >= 30 tokens/s (judged on the lower of the client's and
the server's p50: clients short of CPU receive the stream in bursts and over-estimate), 0 failures.

Usage (from the repository root)::

    python benchmarks/load.py --task classify                      # 16 clients x 5 requests
    python benchmarks/load.py --task generate --json load_generate.json
    python benchmarks/load.py --task classify --clients 4 --requests 2 --concurrency 4
    python benchmarks/load.py --task classify --url http://127.0.0.1:7860/ --server-pid 1234

The exit status is 0 when the run finished (even with failures or missed targets; ``--strict``
makes those exit 1), 2 when the server could not be started or reached, 130 on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from gradio_rest import RestClient  # noqa: E402  (next to this script)

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "assets"

DEFAULT_MODELS = {"classify": "grootv-nano-fmnist", "generate": "grootl-nano-fortunes"}
TARGET_CLASSIFY_P50_MS = 300.0
TARGET_GENERATE_TOKENS_S = 30.0
POLL_S = 0.004  # how often a generate client looks for new streamed updates
STATS_RE = re.compile(r"(\d+) new tokens · ([\d.]+) tokens/s")
FORWARD_RE = re.compile(r"(\d+) ms \(forward")


# ---------------------------------------------------------------------------------------------
# server process: start, wait, stop, memory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """``python app.py`` in its own process group; output goes to a log file."""

    def __init__(
        self,
        port: int,
        concurrency: int,
        extra_args: list[str],
        log_path: Path,
        extra_env: dict[str, str] | None = None,
        root: Path = ROOT,
    ):
        env = dict(os.environ, HF_HUB_OFFLINE="1", GRADIO_ANALYTICS_ENABLED="False", **(extra_env or {}))
        cmd = [
            sys.executable,
            "app.py",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--concurrency",
            str(concurrency),
            *extra_args,
        ]
        self.cmd = cmd
        self.url = f"http://127.0.0.1:{port}/"
        self.log_path = log_path
        self._log = open(log_path, "wb")
        # own session: Ctrl-C in the terminal reaches this script only; we stop the server ourselves
        self.proc = subprocess.Popen(
            cmd,
            cwd=root,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )

    @property
    def pid(self) -> int:
        return self.proc.pid

    def wait_ready(self, timeout: float) -> None:
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited with status {self.proc.returncode} before answering")
            if url_answers(self.url):
                return
            time.sleep(0.25)
        raise RuntimeError(f"the server did not answer at {self.url} within {timeout:.0f} s")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
                try:
                    os.killpg(self.proc.pid, sig)  # the group: also any worker the server started
                except ProcessLookupError:
                    break
                try:
                    self.proc.wait(wait)
                    break
                except subprocess.TimeoutExpired:
                    continue
        self._log.close()


def url_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status < 500
    except Exception:  # noqa: BLE001 - not up yet
        return False


def _proc_children() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat[stat.rfind(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(d))
    return children


def _proc_rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def tree_rss(pid: int) -> int:
    """Bytes resident in ``pid`` and all its descendants (0 when it is gone)."""
    try:
        import psutil
    except ImportError:
        psutil = None
    if psutil is not None:
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0
        total = 0
        for p in procs:
            try:
                total += p.memory_info().rss
            except psutil.Error:
                pass
        return total
    children = _proc_children()
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        total += _proc_rss(p)
        todo.extend(children.get(p, []))
    return total


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by ``pid`` and its live descendants (/proc; 0 when gone)."""
    tick = os.sysconf("SC_CLK_TCK")
    children = _proc_children()
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        try:
            with open(f"/proc/{p}/stat", "rb") as f:
                stat = f.read()
            fields = stat[stat.rfind(b")") + 2 :].split()
            total += (int(fields[11]) + int(fields[12])) / tick
        except (OSError, ValueError, IndexError):
            pass
        todo.extend(children.get(p, []))
    return total


def own_cpu_seconds() -> float:
    """CPU seconds used so far by this process (the load generator's clients)."""
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class MemorySampler(threading.Thread):
    """Peak RSS of a process tree, sampled every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.1):
        super().__init__(daemon=True, name="rss-sampler")
        self.pid, self.interval = pid, interval
        self.peak = 0
        self.last = 0
        self.samples = 0
        self._stop_event = threading.Event()
        try:
            import psutil  # noqa: F401

            self.method = "psutil"
        except ImportError:
            self.method = "/proc"

    def run(self) -> None:
        while not self._stop_event.is_set():
            rss = tree_rss(self.pid)
            if rss:
                self.last = rss
                self.peak = max(self.peak, rss)
                self.samples += 1
            self._stop_event.wait(self.interval)

    def stop(self) -> None:
        self._stop_event.set()
        self.join(2)


# ---------------------------------------------------------------------------------------------
# requests


@dataclass
class Result:
    client: int
    index: int
    ok: bool
    latency_s: float | None = None  # submit to result (None when not started)
    error: str | None = None
    new_tokens: int | None = None
    decode_tokens_s: float | None = None  # client side: tokens after the first update / their time
    server_tokens_s: float | None = None  # what the server's stats string says
    server_ms: float | None = None  # classify: the forward pass time the server reports
    updates: int | None = None


@dataclass
class Workload:
    task: str
    model: str
    images: list[str] = field(default_factory=list)
    prompts: list[str] = field(default_factory=list)
    max_new_tokens: int = 48
    temperature: float = 0.7
    top_k: int = 40
    top_p: float = 0.95

    def args(self, i: int) -> tuple:
        if self.task == "classify":
            from gradio_client import handle_file

            return handle_file(self.images[i % len(self.images)]), self.model
        return (
            self.prompts[i % len(self.prompts)],
            self.model,
            self.max_new_tokens,
            self.temperature,
            self.top_k,
            self.top_p,
            i,
        )

    @property
    def api_name(self) -> str:
        return "/" + self.task


def _short(exc: BaseException) -> str:
    msg = str(exc).strip().replace("\n", " ") or type(exc).__name__
    return f"{type(exc).__name__}: {msg[:300]}"


def _parse_stats(stats) -> tuple[int, float] | None:
    m = STATS_RE.search(stats) if isinstance(stats, str) else None
    return (int(m.group(1)), float(m.group(2))) if m else None


def one_request(client, work: Workload, client_id: int, i: int, limit: float) -> Result:
    """Send request ``i``; wait at most ``limit`` seconds for its result."""
    if isinstance(client, RestClient):
        return _rest_request(client, work, client_id, i, limit)
    return _gradio_client_request(client, work, client_id, i, limit)


@dataclass
class _Stream:
    """What a generate client saw of the streamed updates: the time and token count of the first
    one and of the one with the most tokens."""

    first_t: float | None = None
    first_count: int | None = None
    last_t: float | None = None
    max_count: int = 0
    seen: int = 0

    def update(self, now: float, out) -> None:
        self.seen += 1
        parsed = _parse_stats(out[1]) if isinstance(out, (tuple, list)) and len(out) > 1 else None
        if parsed is None:
            return
        if self.first_t is None:
            self.first_t, self.first_count = now, parsed[0]
        if parsed[0] > self.max_count:
            self.max_count, self.last_t = parsed[0], now


def _rest_request(client: RestClient, work: Workload, client_id: int, i: int, limit: float) -> Result:
    start = time.perf_counter()
    stream = _Stream()
    client.set_timeout(limit)
    try:
        if work.task == "classify":
            data = [client.upload(work.images[i % len(work.images)]), work.model]
        else:
            data = list(work.args(i))
        result = client.predict(work.api_name, data, on_update=stream.update)
    except TimeoutError:
        client.close()  # drop the stream: the server stops sending to it
        return Result(client_id, i, False, time.perf_counter() - start, f"timeout: no result within {limit:.1f} s")
    except Exception as exc:  # noqa: BLE001 - the endpoint's error, a dropped connection, ...
        client.close()
        return Result(client_id, i, False, time.perf_counter() - start, _short(exc))
    return _judge(work, client_id, i, time.perf_counter() - start, limit, result, stream)


def _gradio_client_request(client, work: Workload, client_id: int, i: int, limit: float) -> Result:
    start = time.perf_counter()
    done_at: list[float] = []
    try:
        job = client.submit(*work.args(i), api_name=work.api_name)
    except Exception as exc:  # noqa: BLE001
        return Result(client_id, i, False, time.perf_counter() - start, _short(exc))
    job.add_done_callback(lambda _f: done_at.append(time.perf_counter()))
    stream = _Stream()
    try:
        if work.task == "generate":
            # poll the streamed updates
            while True:
                outs = job.outputs()
                now = time.perf_counter()
                while stream.seen < len(outs):
                    stream.update(now, outs[stream.seen])
                if job.done():
                    if stream.seen >= len(job.outputs()):
                        break
                    continue
                if now - start > limit:
                    raise TimeoutError
                time.sleep(POLL_S)
        result = job.result(timeout=max(0.0, limit - (time.perf_counter() - start)))
    except TimeoutError:
        job.cancel()
        return Result(client_id, i, False, time.perf_counter() - start, f"timeout: no result within {limit:.1f} s")
    except Exception as exc:  # noqa: BLE001 - the endpoint's error, a dropped connection, ...
        return Result(client_id, i, False, time.perf_counter() - start, _short(exc))
    latency = (done_at[0] if done_at else time.perf_counter()) - start
    return _judge(work, client_id, i, latency, limit, result, stream)


def _judge(work: Workload, client_id: int, i: int, latency: float, limit: float, result, stream: _Stream) -> Result:
    """A finished request's :class:`Result`: checks the answer's shape and reads the server's figures."""
    if latency > limit:
        return Result(client_id, i, False, latency, f"timeout: result after {latency:.1f} s (limit {limit:.1f} s)")
    if work.task == "classify":
        labels = result[0] if isinstance(result, (tuple, list)) and result else None
        if not (isinstance(labels, dict) and labels.get("confidences")):
            return Result(client_id, i, False, latency, f"unexpected result: {str(result)[:200]}")
        m = FORWARD_RE.search(result[1]) if len(result) > 1 and isinstance(result[1], str) else None
        return Result(client_id, i, True, latency, server_ms=float(m.group(1)) if m else None)
    parsed = _parse_stats(result[1]) if isinstance(result, (tuple, list)) and len(result) > 1 else None
    if parsed is None or not isinstance(result[0], str):
        return Result(client_id, i, False, latency, f"unexpected result: {str(result)[:200]}")
    count, server_rate = parsed
    rate = None
    if (
        stream.first_t is not None
        and stream.last_t is not None
        and stream.last_t > stream.first_t
        and stream.max_count > stream.first_count
    ):
        rate = (stream.max_count - stream.first_count) / (stream.last_t - stream.first_t)
    return Result(
        client_id,
        i,
        True,
        latency,
        new_tokens=count,
        decode_tokens_s=rate,
        server_tokens_s=server_rate,
        updates=stream.seen,
    )


def make_client(kind: str, url: str, download_dir: str):
    """``"rest"``: a :class:`RestClient` (plain HTTP, a few ms of CPU per request); ``"gradio"``: a
    ``gradio_client.Client`` (what Python users of the app run; far heavier on the client side)."""
    if kind == "rest":
        return RestClient(url)
    from gradio_client import Client

    return Client(url, verbose=False, download_files=download_dir, analytics_enabled=False)


def run_load(
    url: str,
    work: Workload,
    clients: int,
    requests: int,
    timeout: float,
    deadline: float,
    download_dir: str,
    stop: threading.Event,
    made: list,
    client_kind: str = "rest",
) -> tuple[list[Result], float, list[str]]:
    """All clients at once; returns the results, the measured wall time and client set-up errors (the
    clients go to ``made``)."""
    results: list[Result] = []
    setup_errors: list[str] = []
    lock = threading.Lock()
    ready = threading.Barrier(clients + 1)

    def worker(cid: int) -> None:
        client = None
        try:
            client = make_client(client_kind, url, download_dir)
            with lock:
                made.append(client)
        except Exception as exc:  # noqa: BLE001
            with lock:
                setup_errors.append(f"client {cid}: {_short(exc)}")
        try:
            ready.wait()
        except threading.BrokenBarrierError:
            return
        for j in range(requests):
            i = cid * requests + j
            left = deadline - time.monotonic()
            if client is None:
                res = Result(cid, i, False, None, "client could not connect")
            elif stop.is_set() or left <= 0:
                res = Result(cid, i, False, None, "not started: overall deadline reached")
            else:
                res = one_request(client, work, cid, i, min(timeout, left))
            with lock:
                results.append(res)

    threads = [threading.Thread(target=worker, args=(c,), daemon=True, name=f"client-{c}") for c in range(clients)]
    for t in threads:
        t.start()
    try:
        ready.wait(timeout=max(1.0, deadline - time.monotonic()))
    except threading.BrokenBarrierError:
        pass
    t0 = time.perf_counter()
    while any(t.is_alive() for t in threads):
        for t in threads:
            t.join(0.2)  # short joins: Ctrl-C reaches the main thread
        if time.monotonic() > deadline + timeout + 30:
            break  # a client is stuck past every limit: report what we have
    wall = time.perf_counter() - t0
    with lock:
        return sorted(results, key=lambda r: r.index), wall, setup_errors


def warmup(
    url: str, work: Workload, n: int, timeout: float, download_dir: str, made: list, client_kind: str = "rest"
) -> list[str]:
    if n <= 0:
        return []
    client = make_client(client_kind, url, download_dir)
    made.append(client)
    errors = []
    for k in range(n):
        res = one_request(client, work, -1, k, timeout)
        if not res.ok:
            errors.append(res.error or "?")
    return errors


def drain(clients: list, limit: float) -> None:
    """Wait (at most ``limit`` s) until no client listens for results any more: the server is still
    finishing the requests that timed out, and stopping it under an open stream makes gradio_client
    print a traceback."""
    end = time.monotonic() + limit
    while time.monotonic() < end and any(getattr(c, "stream_open", False) for c in clients):
        time.sleep(0.1)
    for c in clients:
        try:
            c.close()
        except Exception:  # noqa: BLE001
            pass


class _MainThreadOnly:
    """stderr for the main thread only: drops what client threads print once the server is gone."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text):
        return self.stream.write(text) if threading.current_thread() is threading.main_thread() else len(text)

    def flush(self):
        self.stream.flush()

    def __getattr__(self, name):
        return getattr(self.stream, name)


# ---------------------------------------------------------------------------------------------
# report


def percentile(values: list[float], q: float) -> float | None:
    """Linear-interpolated percentile (``q`` in [0, 100]); None for no values."""
    if not values:
        return None
    v = sorted(values)
    pos = (len(v) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (v[hi] - v[lo]) * (pos - lo)


def summarize(results: list[Result], wall: float, work: Workload) -> dict:
    ok = [r for r in results if r.ok]
    lat = [r.latency_s * 1000 for r in ok]
    out = {
        "requests": len(results),
        "ok": len(ok),
        "failures": len(results) - len(ok),
        "timeouts": sum(1 for r in results if not r.ok and (r.error or "").startswith("timeout")),
        "not_started": sum(1 for r in results if not r.ok and r.latency_s is None),
        "latency_ms": {
            "p50": percentile(lat, 50),
            "p95": percentile(lat, 95),
            "max": max(lat) if lat else None,
            "mean": statistics.fmean(lat) if lat else None,
        },
        "wall_s": wall,
        "throughput_req_s": len(ok) / wall if wall > 0 else None,
    }
    if work.task == "classify":
        fwd = [r.server_ms for r in ok if r.server_ms is not None]
        out["server_forward_ms"] = {"p50": percentile(fwd, 50), "max": max(fwd) if fwd else None}
    if work.task == "generate":
        rates = [r.decode_tokens_s for r in ok if r.decode_tokens_s is not None]
        server = [r.server_tokens_s for r in ok if r.server_tokens_s]
        tokens = sum(r.new_tokens or 0 for r in ok)
        out["tokens"] = {
            "new_tokens_total": tokens,
            "new_tokens_per_request_mean": tokens / len(ok) if ok else None,
            "decode_tokens_s_p50": percentile(rates, 50),
            "decode_tokens_s_p5": percentile(rates, 5),
            "decode_tokens_s_min": min(rates) if rates else None,
            "requests_with_rate": len(rates),
            "server_reported_tokens_s_p50": percentile(server, 50),
            "aggregate_tokens_s": tokens / wall if wall > 0 else None,
        }
        # the target is judged on the lower of the two p50s: a client short of CPU receives the
        # stream in bursts, which makes its own rate look higher than the decoding was
        both = [
            v
            for v in (out["tokens"]["decode_tokens_s_p50"], out["tokens"]["server_reported_tokens_s_p50"])
            if v is not None
        ]
        out["tokens"]["judged_tokens_s_p50"] = min(both) if both else None
    return out


def _fmt(v, unit: str = "", digits: int = 1) -> str:
    return "n/a" if v is None else f"{v:,.{digits}f}{unit}"


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("PASS" if ok else "FAIL")


def targets(summary: dict, task: str) -> dict:
    t = {"failures == 0": summary["failures"] == 0}
    if task == "classify":
        p50 = summary["latency_ms"]["p50"]
        t[f"latency p50 < {TARGET_CLASSIFY_P50_MS:.0f} ms"] = None if p50 is None else p50 < TARGET_CLASSIFY_P50_MS
    else:
        rate = summary["tokens"]["judged_tokens_s_p50"]
        t[f"decoding p50 >= {TARGET_GENERATE_TOKENS_S:.0f} tokens/s"] = (
            None if rate is None else rate >= TARGET_GENERATE_TOKENS_S
        )
    return t


def print_report(report: dict) -> None:
    s, task = report["summary"], report["config"]["task"]
    lat = s["latency_ms"]
    rows = [
        ("requests", f"{s['requests']}  ({report['config']['clients']} clients x {report['config']['requests']})", ""),
        (
            "failures",
            f"{s['failures']}  (timeouts {s['timeouts']}, not started {s['not_started']})",
            f"target 0: {_verdict(s['failures'] == 0)}",
        ),
    ]
    lat_target = ""
    if task == "classify":
        ok = None if lat["p50"] is None else lat["p50"] < TARGET_CLASSIFY_P50_MS
        lat_target = f"target p50 < {TARGET_CLASSIFY_P50_MS:.0f} ms: {_verdict(ok)}"
    rows += [
        (
            "latency p50/p95/max",
            f"{_fmt(lat['p50'], ' ms', 0)} / {_fmt(lat['p95'], ' ms', 0)} / {_fmt(lat['max'], ' ms', 0)}",
            lat_target,
        ),
        ("throughput", f"{_fmt(s['throughput_req_s'], ' req/s', 2)}  (wall {s['wall_s']:.1f} s)", ""),
    ]
    if task == "classify":
        fwd = s["server_forward_ms"]
        rows.append(
            (
                "server forward p50/max",
                f"{_fmt(fwd['p50'], ' ms', 0)} / {_fmt(fwd['max'], ' ms', 0)}"
                "  (as the app reports it: model time without queueing or transfer)",
                "",
            )
        )
    if task == "generate":
        tk = s["tokens"]
        judged = tk["judged_tokens_s_p50"]
        ok = None if judged is None else judged >= TARGET_GENERATE_TOKENS_S
        rows += [
            (
                "decoding tokens/s p50",
                f"{_fmt(tk['decode_tokens_s_p50'])}  (min {_fmt(tk['decode_tokens_s_min'])}, "
                f"server says p50 {_fmt(tk['server_reported_tokens_s_p50'])})",
                f"target >= {TARGET_GENERATE_TOKENS_S:.0f} (lower p50 of the two): {_verdict(ok)}",
            ),
            (
                "aggregate tokens/s",
                f"{_fmt(tk['aggregate_tokens_s'])}  ({tk['new_tokens_total']} new tokens, "
                f"{_fmt(tk['new_tokens_per_request_mean'])} per request)",
                "",
            ),
        ]
        client, server = tk["decode_tokens_s_p50"], tk["server_reported_tokens_s_p50"]
        if tk["requests_with_rate"] < s["ok"] or (client and server and abs(client - server) > 0.25 * server):
            rows.append(
                (
                    "note",
                    f"client-side rates for {tk['requests_with_rate']} of {s['ok']} requests; client "
                    "and server disagree or updates arrived in bursts: the clients were short of CPU "
                    "(compare the server's figure)",
                    "",
                )
            )
    cpu = s["cpu_ms_per_request"]
    rows.append(
        (
            "CPU per request",
            f"server {_fmt(cpu['server'], ' ms', 0)}, clients {_fmt(cpu['clients'], ' ms', 0)}"
            f"  ({report['config']['client']} clients, same machine: both share the cores)",
            "",
        )
    )
    mem = report["server_memory"]
    mib = 2**20
    rows.append(
        (
            "server peak RSS",
            "n/a"
            if not mem["peak_rss_bytes"]
            else f"{mem['peak_rss_bytes'] / mib:,.0f} MiB  (after warm-up {mem['rss_after_warmup_bytes'] / mib:,.0f}"
            f" MiB; {mem['method']}, {mem['samples']} samples)",
            "",
        )
    )
    cfg = report["config"]
    print(
        f"\n== load test: {task} · {cfg['model']} · {cfg['url']} · server concurrency "
        f"{cfg['concurrency'] if cfg['started_server'] else '?'} =="
    )
    width = max(len(r[0]) for r in rows)
    for name, value, note in rows:
        print(f"  {name:<{width}}  {value}" + (f"   [{note}]" if note else ""))
    if report["errors"]:
        print(f"  first errors ({len(report['errors'])} shown):")
        for e in report["errors"]:
            print(f"    - {e}")
    print("  targets: " + ", ".join(f"{k}: {_verdict(v)}" for k, v in report["targets"].items()))


# ---------------------------------------------------------------------------------------------
# main


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Run from anywhere; the server is started from the repository root.",
    )
    p.add_argument("--task", choices=("classify", "generate"), default="classify")
    p.add_argument("--model", default=None, help="zoo model (default: grootv-nano-fmnist / grootl-nano-fortunes)")
    p.add_argument("--clients", type=int, default=16, help="concurrent clients, one thread each (16)")
    p.add_argument(
        "--client",
        choices=("rest", "gradio"),
        default="rest",
        help="rest (default): plain HTTP on Gradio's REST API, ~2 ms of client CPU per request; "
        "gradio: gradio_client.Client, ~170 ms of client CPU per request on the same cores",
    )
    p.add_argument("--requests", type=int, default=5, help="requests per client (5)")
    p.add_argument("--warmup", type=int, default=2, help="unmeasured requests first, one at a time (2)")
    p.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds one request may take, queueing included; longer counts as a failure (120)",
    )
    p.add_argument(
        "--deadline",
        type=float,
        default=900.0,
        help="seconds for warm-up plus measurement; requests not started by then are failures (900)",
    )
    p.add_argument("--max-new-tokens", type=int, default=48, help="generate: tokens per request (48)")
    p.add_argument("--url", default=None, help="use a running demo instead of starting one")
    p.add_argument("--server-pid", type=int, default=None, help="with --url: the server's pid, for its memory")
    p.add_argument(
        "--concurrency",
        type=int,
        default=2,
        help="started server: requests it runs at once (app.py --concurrency; 2, the app's default)",
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for app.py (repeatable), e.g. --server-arg=--threads --server-arg=2",
    )
    p.add_argument("--startup-timeout", type=float, default=180.0, help="seconds to wait for the server (180)")
    p.add_argument("--json", type=Path, default=None, metavar="PATH", help="also write the report as JSON")
    p.add_argument("--max-errors", type=int, default=5, help="error messages printed (5)")
    p.add_argument("--strict", action="store_true", help="exit 1 on failures or a missed target")
    args = p.parse_args(argv)
    for name in ("clients", "requests"):
        if getattr(args, name) < 1:
            p.error(f"--{name} must be >= 1")
    if args.warmup < 0 or args.timeout <= 0 or args.deadline <= 0 or args.concurrency < 1:
        p.error("--warmup must be >= 0; --timeout, --deadline and --concurrency > 0")
    if not 1 <= args.max_new_tokens <= 512:
        p.error("--max-new-tokens must lie in [1, 512]")
    return args


def build_workload(args: argparse.Namespace) -> Workload:
    work = Workload(args.task, args.model or DEFAULT_MODELS[args.task], max_new_tokens=args.max_new_tokens)
    if args.task == "classify":
        work.images = [str(p) for p in sorted((ASSETS / "fashion").glob("*.png"))]
        if not work.images:
            raise SystemExit(f"no images in {ASSETS / 'fashion'}")
    else:
        work.prompts = json.loads((ASSETS / "prompts.json").read_text())
        if not work.prompts:
            raise SystemExit(f"no prompts in {ASSETS / 'prompts.json'}")
    return work


def _raise_interrupt(signum, frame):  # SIGTERM: clean up like Ctrl-C
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    work = build_workload(args)
    signal.signal(signal.SIGTERM, _raise_interrupt)
    start_wall = time.monotonic()
    deadline = start_wall + args.deadline  # startup is not counted: moved forward once the server answers
    tmp = Path(tempfile.mkdtemp(prefix="grootvl-load-"))
    server: Server | None = None
    sampler: MemorySampler | None = None
    stop = threading.Event()
    clients: list = []
    try:
        if args.url:
            url = args.url if args.url.endswith("/") else args.url + "/"
            if not url_answers(url):
                print(f"load.py: nothing answers at {url}", file=sys.stderr)
                return 2
            pid = args.server_pid
        else:
            server = Server(free_port(), args.concurrency, args.server_arg, tmp / "server.log")
            url, pid = server.url, server.pid
            print(f"starting: {' '.join(server.cmd)}  (log: {server.log_path})", flush=True)
            t = time.monotonic()
            try:
                server.wait_ready(args.startup_timeout)
            except RuntimeError as exc:
                print(f"load.py: {exc}\n--- server log (tail) ---\n{server.log_tail()}", file=sys.stderr)
                return 2
            print(f"server up at {url} in {time.monotonic() - t:.1f} s", flush=True)
        if pid:
            sampler = MemorySampler(pid)
            sampler.start()
        deadline = time.monotonic() + args.deadline
        downloads = str(tmp / "downloads")
        t = time.monotonic()
        warm_errors = warmup(url, work, args.warmup, args.timeout, downloads, clients, args.client)
        if args.warmup:
            print(
                f"warm-up: {args.warmup} request(s) in {time.monotonic() - t:.1f} s"
                + (f", {len(warm_errors)} failed: {warm_errors[0]}" if warm_errors else ""),
                flush=True,
            )
        rss_after_warmup = sampler.last if sampler else 0
        print(f"measuring: {args.clients} clients x {args.requests} requests on {work.api_name} ...", flush=True)
        cpu0 = (tree_cpu_seconds(pid) if pid else None), own_cpu_seconds()
        results, wall, setup_errors = run_load(
            url, work, args.clients, args.requests, args.timeout, deadline, downloads, stop, clients, args.client
        )
        cpu_used = ((tree_cpu_seconds(pid) - cpu0[0]) if pid else None), own_cpu_seconds() - cpu0[1]
        drain(clients, min(args.timeout, 15.0))
    except KeyboardInterrupt:
        stop.set()
        print("\nload.py: interrupted", file=sys.stderr)
        return 130
    finally:
        if sampler:
            sampler.stop()
        if server:
            sys.stderr = _MainThreadOnly(sys.stderr)
            server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    summary = summarize(results, wall, work)
    done = max(1, len(results))
    summary["cpu_ms_per_request"] = {
        "server": None if cpu_used[0] is None else 1000 * cpu_used[0] / done,
        "clients": 1000 * cpu_used[1] / done,
    }
    errors = setup_errors + [f"request {r.index} (client {r.client}): {r.error}" for r in results if not r.ok]
    report = {
        "config": {
            "task": args.task,
            "model": work.model,
            "url": url,
            "started_server": server is not None,
            "concurrency": args.concurrency if server else None,
            "clients": args.clients,
            "client": args.client,
            "requests": args.requests,
            "warmup": args.warmup,
            "timeout_s": args.timeout,
            "deadline_s": args.deadline,
            **(
                {
                    "max_new_tokens": work.max_new_tokens,
                    "temperature": work.temperature,
                    "top_k": work.top_k,
                    "top_p": work.top_p,
                }
                if args.task == "generate"
                else {}
            ),
            "server_args": args.server_arg,
        },
        "host": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "GROOTVL_CHECKPOINTS": os.environ.get("GROOTVL_CHECKPOINTS"),
            "GROOTVL_DEVICE": os.environ.get("GROOTVL_DEVICE"),
        },
        "summary": summary,
        "server_memory": {
            "peak_rss_bytes": sampler.peak if sampler else None,
            "rss_after_warmup_bytes": rss_after_warmup if sampler else None,
            "method": sampler.method if sampler else None,
            "samples": sampler.samples if sampler else 0,
            "interval_s": 0.1,
        },
        "warmup_errors": warm_errors,
        "errors": errors[: args.max_errors],
        "results": [asdict(r) for r in results],
    }
    report["targets"] = targets(summary, args.task)
    print_report(report)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"  wrote {args.json}")
    if args.strict and not all(v for v in report["targets"].values()):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
