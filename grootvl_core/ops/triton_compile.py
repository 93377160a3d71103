"""Compile the Triton kernels for GPU targets without a GPU (CI's compile-only check).

Triton's interpreter runs the kernels' logic on the CPU, but it accepts code the compiler rejects
(a non-constexpr global, an op with no lowering) and shows nothing of the layouts the compiler
chooses. This compiles every kernel of :mod:`.triton_kernels`, in each dtype and mode the backend
launches, through Triton's whole NVIDIA pipeline (TTIR, TTGIR, LLVM IR, PTX, and a cubin from the
ptxas that ships with Triton) for each ``--arch``, and checks what the scans rely on: within a walk
every memory op has one layout, and each step ends with a barrier.

    python -m grootvl_core.ops.triton_compile [--arch 75,80,86,89,90]

Run it with ``TRITON_INTERPRET`` unset (interpreted kernels cannot be compiled).
"""

from __future__ import annotations

import argparse
import re
import sys
import time

__all__ = ["compile_all", "main"]

DEFAULT_ARCHS = (75, 80, 86, 89, 90)  # T4, A100, A10G/A6000, L4/L40S, H100/H200


def _variants():
    """``(kernel name, signature, constexprs, launch options)`` as triton_backend launches them."""
    for dtype in ("fp32", "fp64"):
        ptr = f"*{dtype}"
        scan = {"e_ptr": ptr, "parent_ptr": "*i64", "V": "i32", "D": "i32", "BLOCK_D": "constexpr"}
        yield "accumulate_up", {"u_ptr": ptr, **scan}, {"BLOCK_D": 128}, {"num_warps": 1, "num_stages": 1}
        for mode in (0, 1, 2):
            sig = {
                "y_ptr": ptr,
                "e_ptr": ptr,
                "parent_ptr": "*i64",
                "ge_ptr": ptr,
                "ux_ptr": ptr,
                "yx_ptr": ptr,
                "V": "i32",
                "D": "i32",
                "MODE": "constexpr",
                "BLOCK_D": "constexpr",
            }
            yield "propagate_down", sig, {"MODE": mode, "BLOCK_D": 32}, {"num_warps": 1, "num_stages": 1}
    sig = {"f_ptr": "*fp32", "out_ptr": "*fp32", "D": "i32", "H": "i32", "W": "i32", "BLOCK_P": "constexpr"}
    yield "grid_cosine", sig, {"BLOCK_P": 128}, {}


def _check_walk(name: str, ttgir: str) -> None:
    """A scan's loads and stores share one layout and its loop body ends with a barrier."""
    if name == "grid_cosine":
        return
    layouts = set(re.findall(r"tt\.(?:load|store) [^\n]*tensor<\d+x!tt\.ptr<f\d+>, (#\w+)>", ttgir))
    if len(layouts) != 1:
        raise RuntimeError(
            f"{name}: its loads and stores use {len(layouts)} layouts ({sorted(layouts)}): "
            "a row could be read by another thread than the one that wrote it"
        )
    if "barrier" not in ttgir:
        raise RuntimeError(f"{name}: no barrier between the walk's steps")


def compile_all(archs=DEFAULT_ARCHS) -> list[str]:
    """Compile every kernel variant for every arch; returns one line per (arch, kernel variant)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from . import triton_kernels as K

    if not isinstance(K.accumulate_up, triton.runtime.JITFunction):
        raise RuntimeError("the kernels are interpreted (TRITON_INTERPRET=1): unset it to compile them")
    lines = []
    for arch in archs:
        for name, sig, consts, options in _variants():
            start = time.perf_counter()
            src = ASTSource(fn=getattr(K, name), signature=sig, constexprs=consts)
            kernel = triton.compile(src, target=GPUTarget("cuda", int(arch), 32), options=options)
            _check_walk(name, kernel.asm["ttgir"])
            if not kernel.asm.get("cubin"):
                raise RuntimeError(f"{name} for sm_{arch}: no cubin")
            what = ", ".join(f"{k}={v}" for k, v in consts.items())
            lines.append(
                f"sm_{arch} {name}({sig[next(iter(sig))][1:]}, {what}): ok, "
                f"{len(kernel.asm['cubin'])} bytes, {time.perf_counter() - start:.2f} s"
            )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m grootvl_core.ops.triton_compile", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--arch",
        default=",".join(map(str, DEFAULT_ARCHS)),
        help="comma-separated compute capabilities x 10 (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        for line in compile_all([int(a) for a in args.arch.split(",")]):
            print(line, flush=True)
    except Exception as exc:
        print(f"triton_compile: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
