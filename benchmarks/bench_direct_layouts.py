"""The direct algorithm's two layouts (vectors along rows, ``nchw``; output channels in
the vector lanes, ``nchwc``: NCHW16c on AVX-512) beside im2col, auto and the peers
(PyTorch, ONNX Runtime when installed) on the anchor shapes a, b, c, d, i.

Standalone: ``PYTHONPATH=src python benchmarks/bench_direct_layouts.py [--threads N]
[--rounds R] [--shapes abcdi]``. Every implementation runs once per round in turn
(interleaved), all pinned to the same thread count (``convcore.bench.pinned_threads``);
medians of R rounds, CPU time on one thread (a machine shared with other jobs disturbs it
far less than the wall clock), the wall clock on more. Prints GFLOP/s, the fraction of
the FMA peak measured by the C++ probe in the same process, and each time as a ratio to
the best peer's (above 1: convcore is faster). The layouts are forced with
``_core.set_direct_layout``; ``auto`` takes the compiled rule.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import convcore
from convcore import _core, bench
from convcore.testing import SHAPES


def _direct(layout):
    def make(s, x, w):
        def call():
            _core.set_direct_layout(layout)
            try:
                return convcore.conv2d(x, w, algorithm="direct", **s.conv2d_kwargs)
            finally:
                _core.set_direct_layout("auto")
        return call
    return make


IMPLS = {
    "direct nchw": _direct("nchw"),
    "direct nchwc": _direct("nchwc"),
    "im2col": bench.CONV2D["convcore-im2col"],
    "auto": bench.CONV2D["convcore-auto"],
    "torch": bench.CONV2D["torch"],
    "onnxruntime": bench.CONV2D["onnxruntime"],
}
PEERS = ("torch", "onnxruntime")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--shapes", default="abcdi", help="anchor letters")
    args = ap.parse_args()
    clock = time.process_time if args.threads == 1 else time.perf_counter
    with bench.pinned_threads(args.threads):
        peak = bench.peak_gflops(args.threads)
        print(f"threads={args.threads}, ISA {_core.get_isa()}, FMA peak {peak:.1f} GFLOP/s "
              f"(probe), medians of {args.rounds} interleaved rounds\n")
        print("| shape | " + " | ".join(f"{n} GFLOP/s" for n in IMPLS) +
              " | direct nchwc / best peer speed | auto / best peer speed |")
        print("| --- |" + " ---: |" * (len(IMPLS) + 2))
        for s in SHAPES:
            if not s.anchor or s.anchor not in args.shapes:
                continue
            x, w = bench.conv_inputs(s)
            calls = {}
            for name, make in IMPLS.items():
                try:
                    calls[name] = make(s, x, w)
                except ImportError:
                    continue
            times = {n: [] for n in calls}
            for call in calls.values():
                call()
            for _ in range(args.rounds):
                for n, call in calls.items():
                    t0 = clock()
                    call()
                    times[n].append(clock() - t0)
            med = {n: float(np.median(t)) for n, t in times.items()}
            cells = [f"{s.flops / med[n] / 1e9:.1f} ({s.flops / med[n] / 1e9 / peak:.0%})"
                     if n in med else "-" for n in IMPLS]
            peers = [med[n] for n in PEERS if n in med]
            ratio = (lambda n: f"{min(peers) / med[n]:.2f}") if peers else (lambda n: "-")
            print(f"| {s.anchor} {s.name} | " + " | ".join(cells) +
                  f" | {ratio('direct nchwc')} | {ratio('auto')} |", flush=True)


if __name__ == "__main__":
    main()
