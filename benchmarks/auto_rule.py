"""Measure direct vs im2col on every shape of convcore.testing.SHAPES and derive the rule
``choose_algorithm`` (cpp/src/ops/conv2d.cpp) uses for ``algorithm="auto"``.

Standalone: ``PYTHONPATH=src python benchmarks/auto_rule.py [--threads N] [--reps R]``.
For each shape it times ``conv2d(..., algorithm=a)`` for a in direct and im2col,
interleaved (one call of each in turn, R rounds, medians; CPU time on one thread, wall
time on more), float32, the output passed in with ``out=`` so page faults do not blur the
comparison. It prints the table (GFLOP/s,
% of the measured FMA peak for the vector width in use, ``convcore.machine``; the
machine's kind and peaks are printed first, im2col/direct time ratio), the pick of the rule
compiled in now (``_core.choose_algorithm``) and whether that pick is within 10% of the
faster algorithm, then the threshold of the rule's form that fits these measurements
best. The rule's form: im2col when

    C/groups > 1  and  (R*S == 1  or  C/groups > MAX_DIRECT_CHANNELS),  else direct

— with one input channel per group the reduction is only R*S terms and the GEMM cannot
amortise anything; a 1x1 convolution is a plain GEMM that reads the input in place;
otherwise the GEMM
pays for gathering R*S copies of the input and for its packing, and earns it back through
cache blocking of a long reduction over many input channels (deep layers); with few input
channels per group the direct kernels stream the input once per block of output channels
and win (stems, LeNet-like layers, depthwise, one-channel filtering). Re-run after changing either algorithm and copy the printed threshold into
conv2d.cpp if it moved.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import convcore
from convcore import _core, machine, testing

ALGORITHMS = ("direct", "im2col")
# The direct algorithm's two layouts (_core.set_direct_layout), each measured forced.
LAYOUTS = ("nchw", "nchwc")
VARIANTS = ("direct-nchw", "direct-nchwc", "im2col")


def _call(x, w, out, shape, variant):
    algorithm, _, layout = variant.partition("-")

    def call():
        _core.set_direct_layout(layout or "auto")
        try:
            convcore.conv2d(x, w, **shape.conv2d_kwargs, algorithm=algorithm, out=out)
        finally:
            _core.set_direct_layout("auto")
    return call


def measure(shape: testing.ConvShape, reps: int) -> dict:
    """Median time of each variant: 'direct-nchw', 'direct-nchwc', 'im2col'; and 'direct'
    (the faster layout)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape.input_shape).astype(np.float32)
    w = rng.standard_normal(shape.weight_shape).astype(np.float32)
    out = np.empty(shape.output_shape, np.float32)
    calls = {v: _call(x, w, out, shape, v) for v in VARIANTS}
    for call in calls.values():
        call()  # warm up: scratch buffers, caches
    # One thread: CPU time, which a machine shared with other jobs disturbs far less than
    # the wall clock; more threads: the wall clock.
    clock = time.process_time if convcore.get_num_threads() == 1 else time.perf_counter
    times = {v: [] for v in VARIANTS}
    for _ in range(reps):
        for v, call in calls.items():
            t0 = clock()
            call()
            times[v].append(clock() - t0)
    med = {v: float(np.median(t)) for v, t in times.items()}
    med["direct"] = min(med["direct-nchw"], med["direct-nchwc"])
    return med


def features(s: testing.ConvShape) -> tuple[int, int]:
    """(C/groups, R*S): the quantities the rule looks at."""
    return s.c // s.groups, s.r * s.s


def rule_pick(f: tuple[int, int], max_direct: int) -> str:
    cg, rs = f
    return "im2col" if cg > 1 and (rs == 1 or cg > max_direct) else "direct"


def compiled_pick(s: testing.ConvShape) -> str:
    return _core.choose_algorithm(s.input_shape, (s.k, s.r, s.s, s.groups), (s.stride,) * 2,
                                  (s.padding,) * 4, (s.dilation,) * 2, "auto")


def compiled_layout(s: testing.ConvShape) -> str:
    return _core.direct_layout(s.input_shape, (s.k, s.r, s.s, s.groups), (s.stride,) * 2,
                               (s.padding,) * 4, (s.dilation,) * 2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    convcore.set_num_threads(args.threads)
    peak = machine.peak_gflops(None, args.threads)
    print("machine: " + ", ".join(f"{k} {v}" for k, v in machine.describe().items()))

    rows = []
    print(f"threads={args.threads}, ISA {_core.get_isa()} (peak {peak:.1f} GFLOP/s), float32, "
          f"medians of {args.reps} interleaved calls\n")
    print("| shape | C/g | (C/g)RS | K/g | Wo | direct nchw GFLOP/s | direct nchwc GFLOP/s "
          "| im2col GFLOP/s | nchwc/nchw time | im2col/direct time | auto picks | within 10% |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    measure(testing.SHAPES[0], args.reps)  # warm-up: the first shape measured ran slow
    for s in testing.SHAPES:
        t = measure(s, args.reps)
        f = features(s)
        cg, red = f[0], f[0] * f[1]
        pick = compiled_pick(s)
        if pick == "direct":
            pick += "-" + compiled_layout(s)
        best = min(t[v] for v in VARIANTS)
        ok = t[pick] <= 1.1 * best
        rows.append((s, f, t))
        gf = {v: s.flops / t[v] / 1e9 for v in VARIANTS}
        name = s.name + (f" ({s.anchor})" if s.anchor else "")
        cells = " | ".join(f"{gf[v]:.1f} ({gf[v] / peak:.0%})" for v in VARIANTS)
        print(f"| {name} | {cg} | {red} | {s.k // s.groups} | {s.output_shape[3]} | {cells} "
              f"| {t['direct-nchwc'] / t['direct-nchw']:.2f} | {t['im2col'] / t['direct']:.2f} "
              f"| {pick} | {'yes' if ok else 'NO'} |", flush=True)

    # The threshold of the rule's form that fits: least worst-case slowdown of auto
    # against the faster algorithm, ties broken towards the smallest value.
    candidates = sorted({0} | {f[0] for _, f, _ in rows})
    worst, max_direct = min((round(max(t[rule_pick(f, m)] / min(t.values())
                                       for _, f, t in rows), 3), m) for m in candidates)
    print(f"\nbest fit: im2col when C/groups > 1 and (R*S == 1 or C/groups > {max_direct}), "
          "else direct; "
          f"worst auto/best time ratio {worst:.2f}")
    for s, f, t in rows:
        if t[rule_pick(f, max_direct)] > 1.1 * min(t.values()):
            print(f"  over 10% on {s.name}")


if __name__ == "__main__":
    main()
