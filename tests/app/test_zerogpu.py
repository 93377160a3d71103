"""ZeroGPU (app/zerogpu.py, app/launch.py): with a stand-in ``spaces`` module that records what it
wraps, the app's GPU events and the CUDA op's preparation run inside ``spaces.GPU`` and CUDA is
touched nowhere else; without ZeroGPU nothing is wrapped. "CUDA work" is detected where it
enters torch: any torch function or tensor method given a CUDA device or tensor (a
``TorchFunctionMode``), safetensors' ``load_file`` to a CUDA device (the weights' path, which
bypasses Python), and torch's lazy CUDA initialisation. Each is recorded (inside a ``spaces.GPU``
call or not) and fails, as CUDA does outside ``spaces.GPU`` on a ZeroGPU Space."""

from __future__ import annotations

import functools
import inspect
import sys
import types

import gradio as gr
import pytest
import safetensors.torch
import torch
from torch.overrides import TorchFunctionMode

import app.launch as launch
from app import ModelCache, build_demo
from app.examples import fashion_examples, scene_examples
from app.zerogpu import CPU_EVENTS, GPU_EVENTS, event_key, wrap_gpu_events


class FakeSpaces(types.ModuleType):
    """Stand-in for Hugging Face's ``spaces``: ``GPU(fn, duration=...)`` records the call and
    counts how deep inside wrapped functions the caller is."""

    def __init__(self):
        super().__init__("spaces")
        self.wrapped: list[tuple[str, int]] = []
        self.depth = 0

    def GPU(self, fn=None, *, duration=60):  # noqa: N802 - the real package's name
        if fn is None:
            return lambda f: self.GPU(f, duration=duration)
        self.wrapped.append((getattr(fn, "__name__", "?"), duration))
        spaces = self
        if inspect.isgeneratorfunction(fn):

            @functools.wraps(fn)
            def gen(*args, **kwargs):
                spaces.depth += 1
                try:
                    yield from fn(*args, **kwargs)
                finally:
                    spaces.depth -= 1

            return gen

        @functools.wraps(fn)
        def call(*args, **kwargs):
            spaces.depth += 1
            try:
                return fn(*args, **kwargs)
            finally:
                spaces.depth -= 1

        return call


@pytest.fixture
def spaces(monkeypatch):
    fake = FakeSpaces()
    monkeypatch.setitem(sys.modules, "spaces", fake)
    return fake


def _mentions_cuda(value) -> bool:
    if isinstance(value, torch.device):
        return value.type == "cuda"
    if isinstance(value, str):
        return value.startswith("cuda")
    if isinstance(value, torch.Tensor):
        return value.is_cuda
    if isinstance(value, (list, tuple)):
        return any(_mentions_cuda(v) for v in value)
    if isinstance(value, dict):
        return any(_mentions_cuda(v) for v in value.values())
    return False


class _CudaWatch(TorchFunctionMode):
    def __init__(self, record):
        super().__init__()
        self.record = record

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func is torch.device:  # naming a device is no CUDA work
            return func(*args, **kwargs)
        if _mentions_cuda(args) or _mentions_cuda(kwargs) or getattr(func, "__name__", "") == "cuda":
            self.record(getattr(func, "__name__", str(func)))
        return func(*args, **kwargs)


@pytest.fixture
def zero_gpu(spaces, monkeypatch):
    """A ZeroGPU Space without a GPU in this process: every CUDA attempt is recorded as
    ``(where, inside spaces.GPU)`` and fails."""
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    spaces.cuda_inits = []

    def record(where):
        spaces.cuda_inits.append((where, spaces.depth > 0))
        raise RuntimeError(f"no GPU in this test process ({where})")

    real_load_file = safetensors.torch.load_file

    def load_file(filename, device="cpu", **kwargs):
        if _mentions_cuda(device if isinstance(device, (str, torch.device)) else str(device)):
            record("safetensors.load_file")
        return real_load_file(filename, device=device, **kwargs)

    monkeypatch.setattr(torch.cuda, "_lazy_init", lambda: record("torch.cuda._lazy_init"))
    monkeypatch.setattr(safetensors.torch, "load_file", load_file)
    with _CudaWatch(record):
        yield spaces


@pytest.fixture
def started(zero_gpu, monkeypatch):
    """``main()`` as on a ZeroGPU Space, up to the launch (recorded, not served)."""
    prepared = []

    def backend(device):
        prepared.append((str(device), zero_gpu.depth > 0))
        return "reference"

    monkeypatch.setattr("grootvl_core.ops.backend", backend)
    launched = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append(self))
    launch.main(["--max-models", "2"])
    zero_gpu.prepared = prepared
    return launched[0]


def _event(demo, key):
    return next(f for f in demo.fns.values() if event_key(f) == key)


def test_every_event_is_listed_as_gpu_or_cpu_work():
    keys = {event_key(f) for f in build_demo(ModelCache(1, "cpu")).fns.values() if f.fn is not None}
    assert not set(GPU_EVENTS) & CPU_EVENTS
    assert keys <= set(GPU_EVENTS) | CPU_EVENTS, (
        f"new events without a ZeroGPU decision: {keys - set(GPU_EVENTS) - CPU_EVENTS}"
    )
    assert set(GPU_EVENTS) <= keys  # no stale names


def test_start_up_wraps_gpu_events_and_prepares_the_op_inside(started, zero_gpu):
    wrapped = {name for name, _ in zero_gpu.wrapped}
    assert {event_key(f) for f in started.fns.values() if f.fn is not None and f.fn.__name__ in wrapped} >= set(
        GPU_EVENTS
    )
    for f in started.fns.values():
        if f.fn is not None and event_key(f) in CPU_EVENTS:
            assert not hasattr(f.fn, "__wrapped__"), event_key(f)  # CPU work costs no GPU time
    assert all(0 < d <= 300 for _, d in zero_gpu.wrapped)
    assert _event(started, "generate").types_generator and inspect.isgeneratorfunction(_event(started, "generate").fn)
    # the op for every device the app uses: the CPU (pixel trees) outside, CUDA inside spaces.GPU
    assert zero_gpu.prepared == [("cpu", False), ("cuda", True)]
    assert started.grootvl_cache.device == "cuda"
    assert zero_gpu.cuda_inits == []  # nothing touched CUDA while starting


def test_gpu_work_happens_only_inside_spaces_gpu(started, zero_gpu):
    image, scene = fashion_examples()[0], scene_examples()[0]
    calls = {
        "on_model": ("grootv-nano-fmnist",),
        "classify": ([image], ["grootv-nano-fmnist"]),
        "classify_trees": (image, "grootv-nano-fmnist"),
        "segment": (scene, "grootv-nano-scenes", 0.5),
        "generate": ("A fortune", "grootl-nano-fortunes", 4, 0.7, 40, 0.95, 0),
        "erf": ("grootv-nano-fmnist",),
    }
    assert set(calls) == set(GPU_EVENTS)
    for key, args in calls.items():
        before = len(zero_gpu.cuda_inits)
        fn = _event(started, key).fn
        try:
            out = fn(*args)
            if inspect.isgenerator(out):
                list(out)
        except gr.Error:
            pass  # CUDA is missing in this process; what matters is where it was asked for
        inits = zero_gpu.cuda_inits[before:]
        assert inits, f"{key} never reached CUDA (the test would prove nothing)"
        assert all(inside for _, inside in inits), f"{key} touched CUDA outside spaces.GPU: {inits}"
    # CPU events run outside and never touch CUDA
    before = len(zero_gpu.cuda_inits)
    picture, note = _event(started, "pixel_tree").fn(image, 16, "l2", "depth")
    assert picture is not None and "grid" in note and zero_gpu.cuda_inits[before:] == []


def test_nothing_changes_off_zero_gpu(spaces, monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    demo = build_demo(ModelCache(1, "cpu"))
    before = {k: f.fn for k, f in demo.fns.items()}
    assert wrap_gpu_events(demo) == {}
    assert {k: f.fn for k, f in demo.fns.items()} == before and spaces.wrapped == []
    monkeypatch.setenv("SPACES_ZERO_GPU", "true")
    monkeypatch.delitem(sys.modules, "spaces")
    monkeypatch.setattr("app.zerogpu.spaces_module", lambda: None)  # `spaces` not installed
    assert wrap_gpu_events(demo) == {}


def test_the_op_is_prepared_for_every_device_the_app_uses(monkeypatch):
    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    assert launch.op_devices("cpu") == ["cpu"]
    assert launch.op_devices("cuda:1") == ["cpu", "cuda:1"]
    seen = []
    monkeypatch.setattr("grootvl_core.ops.backend", lambda d: seen.append(str(d)) or "cpu")
    assert launch.prepare_op(["cpu", "cuda"]) == {"cpu": "cpu", "cuda": "cpu"}
    assert seen == ["cpu", "cuda"]

    def failing(d):
        raise RuntimeError("self-check failed")

    monkeypatch.setattr("grootvl_core.ops.backend", failing)
    assert launch.prepare_op(["cuda"]) == {}  # logged; the app still starts
    with pytest.raises(RuntimeError, match="self-check"):  # the CPU op is what GROOTVL_OPS asks for
        launch.prepare_op(["cpu"])


def test_start_up_logs_the_gpu_self_check_table(monkeypatch, caplog):
    from grootvl_core.ops import selfcheck

    monkeypatch.delenv("SPACES_ZERO_GPU", raising=False)
    row = selfcheck.SelfCheck("triton", "cuda:0", True, 3e-7, 1.5, "20 trees and graphs")
    monkeypatch.setattr("grootvl_core.ops.backend", lambda d: "triton" if d.type == "cuda" else "cpu")
    monkeypatch.setattr(selfcheck, "results", lambda: [row])
    with caplog.at_level("INFO", logger="grootvl.app"):
        assert launch.prepare_op(["cpu", "cuda"]) == {"cpu": "cpu", "cuda": "triton"}
    logged = caplog.text
    assert "self-check" in logged and "triton" in logged and "cuda:0" in logged and "pass" in logged
    assert logged.count("self-check against the reference") == 1  # for the GPU only
