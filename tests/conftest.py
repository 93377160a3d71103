"""Test-wide settings: offline Hub, no telemetry, deterministic seeds."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402
import torch  # noqa: E402

# Without a GPU, the Triton backend's kernels run on CPU tensors in Triton's interpreter, so the
# suite executes every one of them (tests/ops/test_gpu_backends.py). Triton reads the variable when
# a kernel is defined, i.e. when grootvl_core.ops.triton_backend is first imported: after this.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


# The native CPU extension, for the tests that compare its kernels with the reference
# (tests/ops/test_native_cpu.py) and the models' fused inference paths (tests/models/).
@pytest.fixture(scope="module")
def native():
    """The built native CPU module; the test is skipped, with the build error, where it cannot build."""
    import importlib

    backend_mod = importlib.import_module("grootvl_core.ops.backend")  # (ops.backend is a function)
    mod = backend_mod._load("cpu")
    if mod is None:
        pytest.skip(f"native CPU build unavailable: {backend_mod.native_error('cpu')}")
    return mod


@pytest.fixture
def use_native(native, monkeypatch):
    """``GROOTVL_OPS=native`` for this test (the public ops serve from the native CPU module)."""
    from grootvl_core import ops

    monkeypatch.setenv("GROOTVL_OPS", "native")
    assert ops.backend("cpu") == "cpu"
    return native
