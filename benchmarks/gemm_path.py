"""The im2col/GEMM path beside its peers (issue 14 item 2): GFLOP/s and fraction of the
peak of convcore's ``im2col`` (the one-call ``conv2d``: weights packed per call),
a ``layers.Conv2d(algorithm="im2col")`` (packed once) and ``auto``, beside ONNX Runtime
and PyTorch, on the anchors a, b, d, e, i, on 1 and 2 threads; then the GEMM
micro-kernel alone (``convcore.machine``-style probe: the kernel on an L2-resident A
block and an L1-resident B panel, the loop the driver runs inside one KC x MC block).

    PYTHONPATH=src python benchmarks/gemm_path.py [--rounds 9] [--threads 1 2] [--shapes abdei]

Every implementation of one shape runs interleaved, round-robin, every sample a run of
calls; on 1 thread a sample is timed in CPU time of the process (a machine shared with
other jobs disturbs it far less than the wall clock; every implementation then runs on
the calling thread), on more threads by the wall clock. The ratio column is the median of the per-round ratios best peer / convcore im2col (> 1:
convcore faster). Fractions divide by the measured FMA peak of the vector width in use
(``convcore.machine.peak_gflops``). Print the load (``uptime``) beside the figures: the
development machine is shared.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

import convcore
from convcore import _core, bench
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


def measure(fns, rounds: int, threads: int, sample_s: float = 0.05):
    """Median seconds per call of each function and the median per-round ratio of its
    time to im2col's, interleaved (the order rotating every round)."""
    clock = time.process_time if threads == 1 else time.perf_counter
    names = list(fns)
    number = {}
    for name in names:
        t0 = time.perf_counter()
        fns[name]()
        number[name] = max(1, int(sample_s / max(time.perf_counter() - t0, 1e-6)))
    samples = {n: [] for n in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            if threads > 1:
                time.sleep(0.05)  # peers' spinning workers settle
            t0 = clock()
            for _ in range(number[name]):
                fns[name]()
            samples[name].append((clock() - t0) / number[name])
    base = np.array(samples["im2col"])
    return {n: (float(np.median(v)), float(np.median(np.array(v) / base)))
            for n, v in samples.items()}


def run_shapes(anchors: str, threads: int, rounds: int) -> None:
    peak = bench.peak_gflops(threads)
    print(f"\n### {threads} thread{'s' * (threads > 1)} (peak {peak:.1f} GFLOP/s, "
          f"{_core.get_isa()}; load {os.getloadavg()[0]:.1f}; "
          f"{'CPU' if threads == 1 else 'wall-clock'} time)\n")
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
            res = measure(fns, rounds, threads)
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
    from convcore import machine

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
    try:  # absent before convcore.machine existed: the script also times older builds
        from convcore import machine
    except ImportError:
        machine = None
    if machine is not None:
        print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.describe().items()))
    print(f"convcore from {os.path.dirname(convcore.__file__)}")
    if not args.no_kernel:
        run_kernel(args.rounds)
    for t in args.threads:
        run_shapes(args.shapes, t, args.rounds)


if __name__ == "__main__":
    np.random.seed(0)
    main()
