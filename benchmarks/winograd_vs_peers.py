"""Winograd beside convcore's other algorithms and the peers (ONNX Runtime, PyTorch), as
ratios to the best peer measured in the same interleaved run.

Standalone: ``PYTHONPATH=src python benchmarks/winograd_vs_peers.py [--threads N]
[--rounds R] [--shapes a,b,d]``. float32; every implementation pinned to N threads
(``convcore.bench.pinned_threads``); each round calls every implementation 5 times in a
rotating order; medians of the rounds (CPU time on one thread, which other jobs on a
shared machine disturb far less than the wall clock; wall time with a short pause before
each sample on more, so the peers' spinning workers settle). Implementations are
``convcore.bench.CONV2D``'s: ``convcore-winograd`` is the functional call (weights
transformed per call), ``convcore-winograd-layer`` an operator holding them transformed
(as a layer in eval mode, or an ONNX Runtime session its initializers), ``convcore-auto``
and ``convcore-layer`` what ``auto`` picks. Prints, per shape, ms, GFLOP/s, the fraction of
the FMA peak (``convcore.bench.peak_gflops``) and the speed relative to the best peer, then
the geometric mean of ``convcore-auto`` and ``convcore-layer`` over the shapes.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from convcore import bench, testing

import benchutil

IMPLS = ["convcore-direct", "convcore-im2col", "convcore-winograd", "convcore-winograd-layer",
         "convcore-auto", "convcore-layer", "torch", "onnxruntime"]
PEERS = ("torch", "onnxruntime")


def run_shape(s: testing.ConvShape, threads: int, rounds: int) -> dict:
    x, w = bench.conv_inputs(s)
    fns = {}
    for name in IMPLS:
        try:
            fns[name] = bench.CONV2D[name](s, x, w)
        except bench.Unavailable:
            pass
    for f in fns.values():
        f()
    clock = time.process_time if threads == 1 else time.perf_counter
    return benchutil.interleaved_medians(fns, rounds, 5, clock, 0.02 if threads > 1 else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--shapes", default="a,b,d", help="anchor letters or shape names")
    args = ap.parse_args()
    peak = bench.peak_gflops(args.threads)
    print(f"threads={args.threads}, FMA peak {peak:.0f} GFLOP/s, medians of {args.rounds} rounds")
    print("| shape | implementation | ms | GFLOP/s | % of peak | vs best peer |")
    print("| --- | --- | ---: | ---: | ---: | ---: |")
    speedups = {"convcore-auto": [], "convcore-layer": []}
    with bench.pinned_threads(args.threads):
        for key in args.shapes.split(","):
            s = testing.shape(key) if len(key) > 1 else testing.anchors()[key]
            med = run_shape(s, args.threads, args.rounds)
            best = min(med[p] for p in PEERS if p in med)
            for name, sec in med.items():
                gf = s.flops / sec / 1e9
                print(f"| {key} {s.name} | {name} | {sec * 1e3:.2f} | {gf:.0f} | {gf / peak:.0%} "
                      f"| {best / sec:.2f}x |", flush=True)
            for name in speedups:
                speedups[name].append(best / med[name])
    for name, v in speedups.items():
        print(f"geomean {name} vs best peer over {args.shapes}: "
              f"{math.exp(np.mean(np.log(v))):.2f}x")


if __name__ == "__main__":
    main()
