"""Measure direct, im2col and winograd on every shape of convcore.testing.SHAPES (and a
few 3x3 probes for Winograd's thresholds) and derive the rule ``choose_algorithm`` uses
for ``algorithm="auto"`` (the auto_rank of each registry entry: cpp/src/ops/im2col.cpp,
direct.cpp, winograd.cpp).

Standalone: ``PYTHONPATH=src python benchmarks/auto_rule.py [--threads N] [--reps R]``.
For each shape it times ``conv2d(..., algorithm=a)`` for a in direct, im2col and (where
it runs) winograd,
interleaved (one call of each in turn, R rounds, medians; CPU time on one thread, wall
time on more), float32, the output passed in with ``out=`` so page faults do not blur the
comparison. It prints the table (GFLOP/s,
% of the measured FMA peak for the vector width in use, ``convcore.machine``; the
machine's kind and peaks are printed first, im2col/direct time ratio), the pick of the rule
compiled in now (``_core.choose_algorithm``) and whether that pick is within 10% of the
faster algorithm, then the threshold of the rule's form that fits these measurements
best. The rule's form: winograd (float32, while ``set_winograd`` is on) for 3x3, stride-1,
undilated layers with C/groups >= MIN_WINOGRAD_CHANNELS and N*Ho*Wo >= MIN_WINOGRAD_PIXELS
(fewer channels: the transforms cost more than the multiplications saved; fewer pixels:
the transformed weights, 16/9 (F(2x2)) or 36/9 (F(4x4)) times the weights, are read
for too few tiles); else im2col when

    C/groups > 1  and  (R*S == 1  or  C/groups > MAX_DIRECT_CHANNELS),  else direct

— with one input channel per group the reduction is only R*S terms and the GEMM cannot
amortise anything; a 1x1 convolution is a plain GEMM that reads the input in place;
otherwise the GEMM
pays for gathering R*S copies of the input and for its packing, and earns it back through
cache blocking of a long reduction over many input channels (deep layers); with few input
channels per group the direct kernels stream the input once per block of output channels
and win (stems, LeNet-like layers, depthwise, one-channel filtering). The direct algorithm runs in both of its layouts (``_core.set_direct_layout``: nchw, nchwc), and "direct" is the faster. Re-run after changing either algorithm and copy the printed threshold into
conv2d.cpp if it moved.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import convcore
from convcore import _core, machine, testing

# The direct algorithm's two layouts (_core.set_direct_layout) are each measured forced.
VARIANTS = ("direct-nchw", "direct-nchwc", "im2col", "winograd")
ALGORITHMS = ("direct", "im2col", "winograd")
# 3x3 stride-1 layers beside the shared list, for Winograd's two thresholds (input channels
# per group; output pixels of the whole batch).
WINOGRAD_PROBES = tuple(
    testing.ConvShape(f"probe-{c}ch-{hw}x{hw}", 1, c, hw, hw, c, 3, 3, 1, 1)
    for c, hw in [(4, 56), (8, 56), (16, 56), (32, 56), (64, 7), (64, 14), (128, 14),
                  (256, 7), (128, 28)])


def winograd_runs(s: testing.ConvShape) -> bool:
    """Whether algorithm="winograd" takes the shape (3x3, stride 1, dilation 1, C/g >= 4)."""
    return (s.r, s.s, s.stride, s.dilation) == (3, 3, 1, 1) and s.c // s.groups >= 4


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
    """Median time of each variant that runs on the shape ('direct-nchw', 'direct-nchwc',
    'im2col', 'winograd'), and 'direct' (the faster layout)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape.input_shape).astype(np.float32)
    w = rng.standard_normal(shape.weight_shape).astype(np.float32)
    out = np.empty(shape.output_shape, np.float32)
    calls = {v: _call(x, w, out, shape, v) for v in VARIANTS
             if v != "winograd" or winograd_runs(shape)}
    for call in calls.values():
        call()  # warm up: scratch buffers, caches
    # One thread: CPU time, which a machine shared with other jobs disturbs far less than
    # the wall clock; more threads: the wall clock.
    clock = time.process_time if convcore.get_num_threads() == 1 else time.perf_counter
    times = {v: [] for v in calls}
    for _ in range(reps):
        for v, call in calls.items():
            t0 = clock()
            call()
            times[v].append(clock() - t0)
    med = {v: float(np.median(t)) for v, t in times.items()}
    med["direct"] = min(med["direct-nchw"], med["direct-nchwc"])
    return med


def features(s: testing.ConvShape) -> tuple[int, int, bool, int]:
    """(C/groups, R*S, Winograd runs it, output pixels of the batch): what the rule reads."""
    return s.c // s.groups, s.r * s.s, winograd_runs(s), s.n * s.output_shape[2] * s.output_shape[3]


def rule_pick(f: tuple, max_direct: int, min_wino_c: int = 10**9, min_wino_px: int = 0) -> str:
    cg, rs, wino, px = f
    if wino and cg >= min_wino_c and px >= min_wino_px:
        return "winograd"
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
          f"medians of {args.reps} interleaved calls (functional: Winograd transforms the "
          "weights per call)\n")
    print("| shape | C/g | (C/g)RS | direct nchw GFLOP/s | direct nchwc GFLOP/s | im2col GFLOP/s "
          "| winograd GFLOP/s | best/auto time | auto picks | within 10% |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |")
    measure(testing.SHAPES[0], args.reps)  # warm-up: the first shape measured ran slow
    for s in testing.SHAPES + WINOGRAD_PROBES:
        t = measure(s, args.reps)
        f = features(s)
        cg, red = f[0], f[0] * f[1]
        pick = compiled_pick(s)
        variant = pick + ("-" + compiled_layout(s) if pick == "direct" else "")
        best = min(t.values())
        ok = t[variant] <= 1.1 * best
        rows.append((s, f, {a: t[a] for a in ALGORITHMS if a in t}))
        gf = {v: f"{s.flops / t[v] / 1e9:.1f} ({s.flops / t[v] / 1e9 / peak:.0%})" if v in t
              else "–" for v in VARIANTS}
        name = s.name + (f" ({s.anchor})" if s.anchor else "")
        cells = " | ".join(gf[v] for v in VARIANTS)
        print(f"| {name} | {cg} | {red} | {cells} | {best / t[variant]:.2f} | {variant} "
              f"| {'yes' if ok else 'NO'} |", flush=True)

    # The thresholds of the rule's form that fit: least worst-case slowdown of auto against
    # the fastest algorithm, ties broken towards the smallest values.
    def worst(*rule):
        return round(max(t[rule_pick(f, *rule)] / min(t.values()) for _, f, t in rows), 3)

    candidates = sorted({0} | {f[0] for _, f, _ in rows})
    pixels = sorted({0} | {f[3] for _, f, _ in rows})
    # Direct vs GEMM first (its threshold alone, Winograd off), then Winograd's two on top.
    max_direct = min((worst(m), m) for m in candidates)[1]
    # Winograd's thresholds fitted on the shapes it runs, so that noise between direct and
    # im2col on shapes it cannot take (a 1x1 layer's worst ratio) does not hide its own.
    wino = [r for r in rows if r[1][2]]

    def worst_wino(c, px):
        return round(max(t[rule_pick(f, max_direct, c, px)] / min(t.values())
                         for _, f, t in wino), 3)

    _, min_c, min_px = min((worst_wino(c, px), c, px)
                           for c in candidates + [10**9] for px in pixels)
    print(f"\nbest fit: winograd (float32) when it runs, C/groups >= {min_c} and N*Ho*Wo >= "
          f"{min_px}; else im2col when C/groups > 1 and (R*S == 1 or C/groups > {max_direct}), "
          f"else direct; worst auto/best time ratio {worst(max_direct, min_c, min_px):.2f} "
          f"(on the shapes Winograd runs: {worst_wino(min_c, min_px):.2f})")
    print(f"(with direct's threshold as compiled, 64: worst ratio "
          f"{min(worst(64, c, px) for c in candidates + [10**9] for px in pixels):.2f})")
    for s, f, t in rows:
        if t[rule_pick(f, max_direct, min_c, min_px)] > 1.1 * min(t.values()):
            print(f"  over 10% on {s.name}")


if __name__ == "__main__":
    main()
