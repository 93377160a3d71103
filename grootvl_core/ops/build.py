"""Build the native tree-scan extension from ``csrc/`` with ``torch.utils.cpp_extension`` + ninja.

Built on first use and cached under ``TORCH_EXTENSIONS_DIR`` (default
``~/.cache/torch_extensions/<python>_<cuda>``). The cache is keyed by the sources' CONTENT (plus the
flags, torch's version and, for CUDA, the architectures), not by their path: each build lives in
``grootvl_native_<key>/`` with its own copy of the sources, so two checkouts (or an installed
wheel and a checkout) with the same sources share one build and never rebuild each other's, and a
change in any source gets a new folder. The least recently used folders beyond
:data:`KEEP_BUILDS` per variant are removed. A build that has to run says so on stderr first, with
how long it usually takes. Two variants:

- ``grootvl_native``: ``csrc/bindings.cpp`` + ``csrc/cpu/*.cpp`` (needs only a C++ compiler);
- ``grootvl_native_cuda``: the same plus ``csrc/cuda/*.cu``, compiled with ``-DGROOTVL_WITH_CUDA``
  (needs nvcc). Architectures: ``TORCH_CUDA_ARCH_LIST`` if set, else the visible cards' (the last
  one also as PTX), else (no card: a compile-only build) :data:`DEFAULT_CUDA_ARCH_LIST`.

The sources are ``csrc/`` of a source checkout, or the copy a wheel carries in
``grootvl_core/_csrc`` (see ``setup.py``).

Command line (CI uses it to compile the CUDA sources on machines without a GPU)::

    python -m grootvl_core.ops.build [--cuda] [--verbose]
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
import shutil
import sys
import sysconfig
import time
from pathlib import Path

__all__ = [
    "DEFAULT_CUDA_ARCH_LIST",
    "KEEP_BUILDS",
    "NativeSourcesMissing",
    "build_dir",
    "build_key",
    "build_native",
    "csrc_dir",
    "cuda_arch_list",
    "cuda_toolkit_home",
    "extensions_root",
]

# Turing (T4) 7.5, Ampere (A100) 8.0 and (A10G, RTX 30xx) 8.6, Ada (L4, L40S) 8.9, Hopper (H100) 9.0,
# and PTX of 9.0 that the driver compiles for newer cards
DEFAULT_CUDA_ARCH_LIST = "7.5;8.0;8.6;8.9;9.0+PTX"
KEEP_BUILDS = 4  # build folders kept per variant (the most recently used)

# what a first build costs, for the announcement. Measured on 2 cores: the C++ part 6.5 min of
# compiler time; csrc/cuda/scan_full.cu about 1 min per architecture (5 .cu files)
_EXPECTED = {
    "grootvl_native": "about 3 minutes on 2 idle cores, 1 on 8; longer on a busy machine",
    "grootvl_native_cuda": "about 3 minutes for the C++ part plus 2-3 per CUDA architecture on 2 idle cores; "
    "less with more cores (MAX_JOBS)",
}


class NativeSourcesMissing(FileNotFoundError):
    """This installation of grootvl has no C++/CUDA sources to build the native op from."""


def csrc_dir() -> Path:
    """Folder holding the C++/CUDA sources: ``csrc/`` of a source checkout, or the copy installed
    inside the package (``grootvl_core/_csrc``).

    Raises:
        NativeSourcesMissing: neither holds ``bindings.cpp``.
    """
    here = Path(__file__).resolve().parent
    candidates = (here.parent / "_csrc", here.parent.parent / "csrc")
    for cand in candidates:
        if (cand / "bindings.cpp").is_file():
            return cand
    raise NativeSourcesMissing(
        "grootvl native build: this installation has no C++ sources to build the op from (looked for "
        f"bindings.cpp in {candidates[0]} and {candidates[1]}); the package was installed without "
        "them, e.g. from a wheel built by an old setup. Reinstall grootvl from a source checkout "
        "(pip install .) or a current wheel; until then the op runs on the pure-PyTorch reference."
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


def cuda_arch_list() -> str:
    """The CUDA architectures to compile: ``TORCH_CUDA_ARCH_LIST`` if set; else every visible
    card's compute capability (capped at the newest that torch was built for), the last one also
    as PTX; else, with no card visible, :data:`DEFAULT_CUDA_ARCH_LIST`."""
    env = os.environ.get("TORCH_CUDA_ARCH_LIST", "").strip()
    if env and env != "native":
        return env
    import torch

    if not torch.cuda.is_available():
        return DEFAULT_CUDA_ARCH_LIST
    built = [int(a.split("_")[1]) for a in torch.cuda.get_arch_list() if a.startswith("sm_") and a[3:].isdigit()]
    newest = max(((sm // 10, sm % 10) for sm in built), default=(99, 9))
    caps = sorted({min(torch.cuda.get_device_capability(i), newest) for i in range(torch.cuda.device_count())})
    archs = [f"{major}.{minor}" for major, minor in caps]
    archs[-1] += "+PTX"
    return ";".join(archs)


def extensions_root() -> Path:
    """Where builds live: ``$TORCH_EXTENSIONS_DIR``, else torch's default root for this Python and
    CUDA version."""
    env = os.environ.get("TORCH_EXTENSIONS_DIR")
    if env:
        return Path(env)
    import torch

    accel = f"cu{torch.version.cuda.replace('.', '')}" if torch.version.cuda else "cpu"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch_extensions"
    return base / f"py{sys.version_info.major}{sys.version_info.minor}{getattr(sys, 'abiflags', '')}_{accel}"


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


def _source_files(src: Path, cuda: bool) -> list[Path]:
    """Every file the variant compiles or includes, relative to ``src``, sorted."""
    files = [p for p in src.rglob("*") if p.is_file() and p.suffix in (".cpp", ".h", ".cu", ".cuh")]
    if not cuda:
        files = [p for p in files if "cuda" not in p.relative_to(src).parts]
    return sorted(p.relative_to(src) for p in files)


def _options(cuda: bool) -> dict:
    """The variant's name and compiler options (what goes into the cache key besides the sources)."""
    omp_c, omp_l = _openmp_flags()
    # -fno-trapping-math: without it GCC keeps every loop with a floating-point `?:` scalar (a
    # compare might raise an FP exception flag, which nothing here reads); the fused elementwise
    # kernels rely on those loops vectorising (csrc/cpu/vec_math.h)
    opts = {
        "name": "grootvl_native",
        "cflags": ["-O3", "-fno-trapping-math"] + omp_c,
        "ldflags": omp_l,
        "cuda_cflags": [],
        "extra_includes": [],
        "arch": "",
    }
    if cuda:
        opts.update(
            name="grootvl_native_cuda",
            cflags=opts["cflags"] + ["-DGROOTVL_WITH_CUDA"],
            cuda_cflags=["-O3", "-DGROOTVL_WITH_CUDA", "-lineinfo"],
            extra_includes=_pip_cuda_includes(),
            arch=cuda_arch_list(),
        )
    return opts


def build_key(cuda: bool = False) -> str:
    """The cache key of a variant: a hash of its sources' content, its options, torch's version and
    the Python ABI (16 hex digits)."""
    import torch

    src = csrc_dir()
    h = hashlib.sha256()
    opts = _options(cuda)
    h.update(repr((sorted(opts.items()), torch.__version__, sys.implementation.cache_tag, sys.platform)).encode())
    for rel in _source_files(src, cuda):
        h.update(rel.as_posix().encode() + b"\0")
        h.update((src / rel).read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_dir(cuda: bool = False) -> Path:
    """The folder of the variant's build for the current sources (it may not exist yet)."""
    return extensions_root() / f"{_options(cuda)['name']}_{build_key(cuda)}"


def _stage_sources(src: Path, dest: Path, cuda: bool) -> Path:
    """A copy of the sources inside the build folder (``dest/src``), made once, atomically: the
    build reads only this copy, so its commands do not depend on where the package lives."""
    staged = dest / "src"
    if (staged / "bindings.cpp").is_file():
        return staged
    dest.mkdir(parents=True, exist_ok=True)
    tmp = dest / f"src.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in _source_files(src, cuda):
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, tmp / rel)
    try:
        os.replace(tmp, staged)
    except OSError:  # another process staged it first
        shutil.rmtree(tmp, ignore_errors=True)
    return staged


def _prune(root: Path, name: str, keep: Path) -> None:
    """Remove the variant's least recently used build folders beyond :data:`KEEP_BUILDS`."""

    def last_used(p: Path) -> float:
        stamp = p / "last_used"
        return stamp.stat().st_mtime if stamp.exists() else p.stat().st_mtime

    others = [
        p
        for p in root.glob(f"{name}_*")
        if p.is_dir() and p != keep and len(p.name) == len(name) + 17 and p.name[len(name) + 1 :].isalnum()
    ]
    others.sort(key=last_used, reverse=True)
    for old in others[KEEP_BUILDS - 1 :]:
        shutil.rmtree(old, ignore_errors=True)


class _DropNoCudaRuntime(logging.Filter):
    """torch logs "No CUDA runtime is found, using CUDA_HOME=..." when its cpp_extension module is
    imported on a machine with a CUDA toolkit but no GPU: true, expected, and no concern of a CPU
    build, so it is dropped (every other record passes)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No CUDA runtime is found")


def _cpp_extension():
    if "torch.utils.cpp_extension" in sys.modules:
        return sys.modules["torch.utils.cpp_extension"]
    logger = logging.getLogger("torch.utils.cpp_extension")
    quiet = _DropNoCudaRuntime()
    logger.addFilter(quiet)
    try:
        from torch.utils import cpp_extension
    finally:
        logger.removeFilter(quiet)
    return cpp_extension


def build_native(cuda: bool = False, verbose: bool = False):
    """Compile (if needed) and import the native extension; returns the Python module.

    Raises:
        NativeSourcesMissing: the package carries no sources (see :func:`csrc_dir`).
        RuntimeError: ``cuda=True`` and no nvcc; or the compiler failed (torch's message).
    """
    src = csrc_dir()
    home = cuda_toolkit_home()
    if cuda and home is None:
        raise RuntimeError(
            "grootvl native CUDA build: nvcc not found; install the CUDA toolkit "
            "(its major version must match torch.version.cuda) or set CUDA_HOME"
        )
    cpp_extension = _cpp_extension()
    opts = _options(cuda)
    name = opts["name"]
    dest = build_dir(cuda)
    staged = _stage_sources(src, dest, cuda)
    sources = [str(staged / "bindings.cpp")] + sorted(
        str(staged / p) for p in _source_files(staged, cuda) if p.suffix == ".cpp" and p.parts[0] == "cpu"
    )
    kwargs = {}
    if cuda:
        os.environ["CUDA_HOME"] = home
        cpp_extension.CUDA_HOME = home  # torch reads it at import time
        sources += sorted(str(staged / p) for p in _source_files(staged, cuda) if p.suffix == ".cu")
        kwargs["extra_cuda_cflags"] = opts["cuda_cflags"]
    fresh = not (dest / f"{name}.so").exists()
    if fresh:
        what = f"CUDA ({opts['arch']})" if cuda else "CPU"
        print(
            f"grootvl: compiling the native {what} tree-scan op, once for these sources "
            f"({_EXPECTED[name]}); cached in {dest}",
            file=sys.stderr,
            flush=True,
        )
    start = time.perf_counter()
    saved_arch = os.environ.get("TORCH_CUDA_ARCH_LIST")
    if cuda:
        os.environ["TORCH_CUDA_ARCH_LIST"] = opts["arch"]
    try:
        mod = cpp_extension.load(
            name=name,
            sources=sources,
            extra_cflags=opts["cflags"],
            extra_ldflags=opts["ldflags"],
            extra_include_paths=[str(staged)] + opts["extra_includes"],
            build_directory=str(dest),
            with_cuda=cuda,
            verbose=verbose,
            **kwargs,
        )
    finally:
        if cuda:
            if saved_arch is None:
                os.environ.pop("TORCH_CUDA_ARCH_LIST", None)
            else:
                os.environ["TORCH_CUDA_ARCH_LIST"] = saved_arch
    if fresh:
        print(f"grootvl: native op built in {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    try:
        (dest / "last_used").touch()
        _prune(dest.parent, name, dest)
    except OSError:  # a read-only cache: nothing to record or prune
        pass
    return mod


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cuda", action="store_true", help="also compile csrc/cuda/*.cu")
    parser.add_argument("--verbose", action="store_true")
    args = parser.parse_args(argv)
    mod = build_native(cuda=args.cuda, verbose=args.verbose)
    print(f"built {mod.__name__} from {csrc_dir()} at {mod.__file__}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
