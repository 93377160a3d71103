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
