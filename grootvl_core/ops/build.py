"""Build the native tree-scan extension from ``csrc/`` with ``torch.utils.cpp_extension`` + ninja.

Built on first use and cached by torch (``TORCH_EXTENSIONS_DIR``, default
``~/.cache/torch_extensions``); a change in any source triggers a rebuild. Two variants:

- ``grootvl_native``: ``csrc/bindings.cpp`` + ``csrc/cpu/*.cpp`` (needs only a C++ compiler);
- ``grootvl_native_cuda``: the same plus ``csrc/cuda/*.cu``, compiled with ``-DGROOTVL_WITH_CUDA``
  (needs nvcc; ``TORCH_CUDA_ARCH_LIST`` picks the architectures).

Command line (CI uses it to compile the CUDA sources on machines without a GPU)::

    python -m grootvl_core.ops.build [--cuda] [--verbose]
"""

from __future__ import annotations

import argparse
import glob
import os
import shutil
import sys
import sysconfig
from pathlib import Path

__all__ = ["csrc_dir", "build_native", "cuda_toolkit_home"]


def csrc_dir() -> Path:
    """Folder holding the C++/CUDA sources: ``csrc/`` of a source checkout, or the copy installed
    inside the package (``grootvl_core/_csrc``)."""
    here = Path(__file__).resolve().parent
    for cand in (here.parent.parent / "csrc", here.parent / "_csrc"):
        if (cand / "bindings.cpp").is_file():
            return cand
    raise FileNotFoundError(
        "grootvl native build: cannot find csrc/bindings.cpp next to the package; reinstall "
        "grootvl from a source checkout (pip install -e .)"
    )


def cuda_toolkit_home() -> str | None:
    """The CUDA toolkit folder (``CUDA_HOME``/``CUDA_PATH``, else the folder of the real nvcc)."""
    for var in ("CUDA_HOME", "CUDA_PATH"):
        if os.environ.get(var) and Path(os.environ[var], "bin", "nvcc").exists():
            return os.environ[var]
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        return None
    # NOTE: nvcc on PATH may be a symlink or a wrapper script (/usr/local/bin/nvcc runs
    # /usr/local/cuda-13.0/bin/nvcc); its grandparent (/usr/local) is then no toolkit and linking
    # -lcudart fails, so take the first candidate that holds the CUDA runtime headers.
    first = Path(nvcc).resolve().parent.parent
    for cand in (first, Path("/usr/local/cuda"), *sorted(Path("/usr/local").glob("cuda-*"), reverse=True)):
        if (cand / "bin" / "nvcc").exists() and (cand / "include" / "cuda_runtime.h").is_file():
            return str(cand)
    return str(first)


def _pip_cuda_includes() -> list[str]:
    """Headers of torch's pip-installed CUDA libraries (``nvidia/cu13/include`` ...): some toolkits
    lack headers that ``ATen/cuda/CUDAContext.h`` includes (cusparse.h)."""
    out = []
    purelib = Path(sysconfig.get_paths()["purelib"])
    for pattern in ("nvidia/cu*/include", "nvidia/*/include"):
        out += sorted(str(p) for p in purelib.glob(pattern) if p.is_dir())
    return out


def _openmp_flags() -> tuple[list[str], list[str]]:
    # ATen's parallel_for runs serially unless the extension itself is compiled with OpenMP.
    if sys.platform == "darwin":
        return [], []
    return ["-fopenmp"], ["-fopenmp"]


def build_native(cuda: bool = False, verbose: bool = False):
    """Compile (if needed) and import the native extension; returns the Python module."""
    home = cuda_toolkit_home()
    if home is not None and not os.environ.get("CUDA_HOME"):
        # torch guesses (and warns about) CUDA_HOME when its cpp_extension module is imported
        os.environ["CUDA_HOME"] = home
    from torch.utils import cpp_extension

    src = csrc_dir()
    sources = [str(src / "bindings.cpp")] + sorted(glob.glob(str(src / "cpu" / "*.cpp")))
    omp_c, omp_l = _openmp_flags()
    # -fno-trapping-math: without it GCC keeps every loop with a floating-point `?:` scalar (a
    # compare might raise an FP exception flag, which nothing here reads); the fused elementwise
    # kernels rely on those loops vectorising (csrc/cpu/vec_math.h)
    cflags = ["-O3", "-fno-trapping-math"] + omp_c
    include = [str(src)]
    kwargs = {}
    name = "grootvl_native"
    if cuda:
        if home is None:
            raise RuntimeError("grootvl native CUDA build: nvcc not found; install the CUDA toolkit "
                               "or set CUDA_HOME")
        os.environ["CUDA_HOME"] = home
        cpp_extension.CUDA_HOME = home  # torch reads it at import time
        sources += sorted(glob.glob(str(src / "cuda" / "*.cu")))
        cflags.append("-DGROOTVL_WITH_CUDA")
        include += _pip_cuda_includes()
        kwargs["extra_cuda_cflags"] = [
            "-O3",
            "-DGROOTVL_WITH_CUDA",
            "-lineinfo",
        ]
        name = "grootvl_native_cuda"
    return cpp_extension.load(
        name=name,
        sources=sources,
        extra_cflags=cflags,
        extra_ldflags=omp_l,
        extra_include_paths=include,
        with_cuda=cuda,
        verbose=verbose,
        **kwargs,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", action="store_true", help="also compile csrc/cuda/*.cu")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    if args.cuda:
        os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "8.0;9.0")
    mod = build_native(cuda=args.cuda, verbose=args.verbose)
    print(f"built {mod.__name__} from {csrc_dir()} at {mod.__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
