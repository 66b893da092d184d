"""Every layer of ``convcore.testing.SHAPES`` beside ONNX Runtime and PyTorch: ``auto``
(the functional call) and the layer (``layers.Conv2d`` in eval mode, weights packed once,
as an ONNX Runtime session holds its initializers), each as a ratio to the best peer
(peer time / convcore time: above 1 convcore is faster).

Standalone: ``PYTHONPATH=src python benchmarks/layers_vs_peers.py [--threads 1]
[--rounds 9] [--shapes a,b,NAME,...]``. float32, output allocated per call; the
implementations are ``convcore.bench.CONV2D``'s makers. Each round times every
implementation of a shape in a rotating order; on 1 thread CPU time (the process's, so
other jobs on a shared machine count less), on more threads the wall clock. Prints per
shape the medians in ms, auto's GFLOP/s and algorithm, the ratios, then their geometric
means and the load average before and after.
"""

from __future__ import annotations

import argparse
import math
import os
import time

import numpy as np

from convcore import _core, bench, testing

import benchutil

IMPLS = ["convcore-auto", "convcore-layer", "onnxruntime", "torch"]
PEERS = ["onnxruntime", "torch"]


def run_shape(s: testing.ConvShape, rounds: int, clock, pause: bool) -> dict:
    """Median seconds per call, keyed by implementation."""
    x, w = bench.conv_inputs(s)
    fns = {}
    for name in IMPLS:
        try:
            fns[name] = bench.CONV2D[name](s, x, w)
        except bench.Unavailable:
            continue
        fns[name]()
    t0 = time.perf_counter()
    fns["convcore-auto"]()
    reps = max(1, min(200, int(0.01 / max(time.perf_counter() - t0, 1e-6))))
    return benchutil.interleaved_medians(fns, rounds, reps, clock, 0.02 if pause else 0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--shapes", default="", help="anchor letters or shape names (default: all)")
    args = ap.parse_args()
    chosen = ([testing.shape(k) if len(k) > 1 else testing.anchors()[k]
               for k in args.shapes.split(",")] if args.shapes else list(testing.SHAPES))
    clock = time.process_time if args.threads == 1 else time.perf_counter
    load0 = os.getloadavg()[0]
    print(f"{args.threads} thread(s), {'CPU' if args.threads == 1 else 'wall'}-time medians "
          f"of {args.rounds} interleaved rounds; x = best peer / convcore")
    print("| shape | auto ms (GFLOP/s, algorithm) | layer ms | ONNX Runtime ms | PyTorch ms "
          "| auto x | layer x |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    logs = {"auto": [], "layer": []}
    with bench.pinned_threads(args.threads):
        for s in chosen:
            med = run_shape(s, args.rounds, clock, args.threads > 1)
            peer = min(med[p] for p in PEERS if p in med) if any(p in med for p in PEERS) \
                else math.nan
            pick = _core.choose_algorithm(s.input_shape, (s.k, s.r, s.s, s.groups),
                                          (s.stride,) * 2, (s.padding,) * 4,
                                          (s.dilation,) * 2, "auto")
            auto, layer = med["convcore-auto"], med["convcore-layer"]
            logs["auto"].append(math.log(peer / auto))
            logs["layer"].append(math.log(peer / layer))
            cells = [f"{med[p] * 1e3:.3f}" if p in med else "–" for p in PEERS]
            print(f"| {s.anchor or ''} {s.name} | {auto * 1e3:.3f} ({s.flops / auto / 1e9:.0f}, "
                  f"{pick}) | {layer * 1e3:.3f} | " + " | ".join(cells)
                  + f" | {peer / auto:.2f} | {peer / layer:.2f} |", flush=True)
    print(f"geometric mean: auto {math.exp(np.mean(logs['auto'])):.2f}x, layer "
          f"{math.exp(np.mean(logs['layer'])):.2f}x over {len(chosen)} shapes; load average "
          f"(1 min) {load0:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cpus")


if __name__ == "__main__":
    main()
