"""The im2col/GEMM path beside its peers (issue 14 item 2): GFLOP/s and fraction of the
peak of convcore's ``im2col`` (the one-call ``conv2d``: weights packed per call),
a ``layers.Conv2d(algorithm="im2col")`` (packed once) and ``auto``, beside ONNX Runtime
and PyTorch, on the anchors a, b, d, e, i, on 1 and 2 threads; then the GEMM
micro-kernel alone (``convcore.machine``-style probe: the kernel on an L2-resident A
block and an L1-resident B panel, the loop the driver runs inside one KC x MC block).

    PYTHONPATH=src python benchmarks/gemm_path.py [--rounds 9] [--threads 1 2] [--shapes abdei]

Every implementation of one shape runs interleaved, round-robin (``bench.measure``); the
ratio column is the median of the per-round ratios best peer / convcore im2col (> 1:
convcore faster). Fractions divide by the measured FMA peak of the vector width in use
(``convcore.machine.peak_gflops``). Print the load (``uptime``) beside the figures: the
development machine is shared.
"""

from __future__ import annotations

import argparse
import os

import numpy as np

import convcore
from convcore import _core, bench, machine
from convcore.testing import SHAPES


def packed_im2col(s, x, w):
    """The im2col plan with its weights packed once (``_core.Conv2dOp``, what a layer
    holds), writing into a kept output as a layer's recycled output memory does."""
    p, st, dl = s.padding, s.stride, s.dilation
    op = _core.Conv2dOp(w, None, (s.c, s.h, s.w), (st, st), (p, p, p, p), (dl, dl),
                        s.groups, "zeros", "none", 0.0, 0.0, "im2col")
    out = np.empty(s.output_shape, np.float32)
    return lambda: op.run(x, out)


IMPLS = {
    "im2col": bench.CONV2D["convcore-im2col"],
    "auto": bench.CONV2D["convcore-auto"],
    "im2col-packed": packed_im2col,
    "onnxruntime": bench.CONV2D["onnxruntime"],
    "torch": bench.CONV2D["torch"],
}


def run_shapes(anchors: str, threads: int, rounds: int) -> None:
    peak = bench.peak_gflops(threads)
    print(f"\n### {threads} thread{'s' * (threads > 1)} (peak {peak:.1f} GFLOP/s, "
          f"{_core.get_isa()}; load {os.getloadavg()[0]:.1f})\n")
    names = list(IMPLS)
    print("| shape | " + " | ".join(f"{n} GFLOP/s" for n in names)
          + " | best peer / im2col (time) |")
    print("|---|" + "---:|" * (len(names) + 1))
    for s in SHAPES:
        if s.anchor is None or s.anchor not in anchors:
            continue
        x, w = bench.conv_inputs(s)
        with bench.pinned_threads(threads):
            fns = {}
            for name, make in IMPLS.items():
                try:
                    fns[name] = make(s, x, w)
                except bench.Unavailable:
                    pass
            res = bench.measure(fns, rounds=rounds, sample_s=0.05, baseline="im2col")
        cells = []
        for name in names:
            if name in res:
                g = s.flops / res[name][0] * 1e-9
                cells.append(f"{g:.1f} ({g / peak:.0%})")
            else:
                cells.append("–")
        peers = [res[n][1] for n in ("onnxruntime", "torch") if n in res]
        best = min(peers) if peers else float("nan")
        print(f"| {s.anchor} {s.name} | " + " | ".join(cells) + f" | {best:.2f} |")


def run_kernel(rounds: int) -> None:
    print(f"\n### GEMM micro-kernel alone, 1 thread (load {os.getloadavg()[0]:.1f})\n")
    for isa in _core.isas_supported():
        if isa == "scalar":
            continue
        width = "zmm" if isa == "avx512" else "ymm"
        peak = machine.peak_gflops(isa)
        best = max(_core.measure_gemm_kernel_gflops(0.2, isa) for _ in range(rounds))
        print(f"- {isa}: {best:.1f} GFLOP/s = {best / peak:.1%} of the {width} peak "
              f"{peak:.1f} (best of {rounds} runs of 0.2 s)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--shapes", default="abdei", help="anchor letters (default abdei)")
    ap.add_argument("--no-kernel", action="store_true")
    args = ap.parse_args()
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.describe().items()))
    if not args.no_kernel:
        run_kernel(args.rounds)
    for t in args.threads:
        run_shapes(args.shapes, t, args.rounds)


if __name__ == "__main__":
    np.random.seed(0)
    main()
