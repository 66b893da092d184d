"""Scaling from 1 to N threads: convcore's ``auto`` and layer beside ONNX Runtime and
PyTorch, both thread counts interleaved in one run.

Standalone: ``PYTHONPATH=src python benchmarks/thread_scaling.py [--threads 2]
[--rounds R] [--shapes a,b,d,i] [--warm]
[--only convcore|peers]``. float32. Every implementation is made twice
(``convcore.bench.CONV2D``'s makers under ``convcore.bench.pinned_threads(1)`` and
``(N)``: an ONNX Runtime session keeps the thread count it was made with); each round
times every (implementation, thread count) pair 5 times, in a rotating order, on the
wall clock (CPU time cannot show scaling), with a short pause before each sample so the
peers' spinning workers settle. That pause lets an idle vCPU halt: on a KVM guest the
first call after it waits for the sleeping worker's vCPU to be woken (up to a millisecond
or more, for every implementation), so ``--warm`` adds one untimed call after each pause,
as the layers of a network called back to back find the workers awake. Prints per shape the medians in ms and GFLOP/s, the
fraction of the FMA peak of that many threads (``convcore.bench.peak_gflops``), and the
scaling t(1)/t(N); then the load average before and after. On a machine shared with
other jobs no implementation gets its N cores: the peers' scaling in the same run is the
yardstick for convcore's.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from convcore import bench, testing

import benchutil

IMPLS = ["convcore-auto", "convcore-layer", "torch", "onnxruntime"]


def run_shape(s: testing.ConvShape, counts: tuple, rounds: int, warm: bool = False,
              impls: list = IMPLS) -> dict:
    """Medians (seconds) keyed by (implementation, threads)."""
    x, w = bench.conv_inputs(s)
    fns = {}
    for n in counts:
        with bench.pinned_threads(n):
            for name in impls:
                try:
                    fns[name, n] = bench.CONV2D[name](s, x, w)
                except bench.Unavailable:
                    continue
                fns[name, n]()
    return benchutil.interleaved_medians(fns, rounds, 5, time.perf_counter, 0.02, warm,
                                         around=lambda key: bench.pinned_threads(key[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2, help="the thread count compared with 1")
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--shapes", default="a,b,d,i", help="anchor letters or shape names")
    ap.add_argument("--warm", action="store_true",
                    help="one untimed call after each pause: the timed calls then find the "
                         "workers awake, as the layers of a network called back to back do")
    ap.add_argument("--only", choices=("convcore", "peers"),
                    help="time only convcore's or only the peers' implementations: a peer's "
                         "workers spin on after its call and take the second core from the "
                         "next implementation's workers (run the two halves as two processes)")
    args = ap.parse_args()
    impls = [n for n in IMPLS if args.only is None
             or n.startswith("convcore") == (args.only == "convcore")]
    counts = (1, args.threads)
    peaks = {n: bench.peak_gflops(n) for n in counts}
    load0 = os.getloadavg()[0]
    print(f"1 vs {args.threads} threads, FMA peaks {peaks[1]:.0f} / {peaks[args.threads]:.0f} "
          f"GFLOP/s, wall-time medians of {args.rounds} interleaved rounds"
          + (", warm (one untimed call after each pause)" if args.warm else ""))
    print(f"| shape | implementation | ms, 1 thread | ms, {args.threads} | GFLOP/s, 1 | "
          f"GFLOP/s, {args.threads} (% of peak) | scaling |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for key in args.shapes.split(","):
        s = testing.shape(key) if len(key) > 1 else testing.anchors()[key]
        med = run_shape(s, counts, args.rounds, args.warm, impls)
        for name in impls:
            if (name, 1) not in med:
                continue
            t1, tn = med[name, 1], med[name, args.threads]
            g1, gn = s.flops / t1 / 1e9, s.flops / tn / 1e9
            print(f"| {key} {s.name} | {name} | {t1 * 1e3:.3f} | {tn * 1e3:.3f} | {g1:.0f} | "
                  f"{gn:.0f} ({gn / peaks[args.threads]:.0%}) | {t1 / tn:.2f}x |", flush=True)
    print(f"load average (1 min): {load0:.1f} before, {os.getloadavg()[0]:.1f} after, "
          f"on {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
