"""Per-operation time of the classification CNN's training step (``convcore.classify.cnn``,
batch 32, Adam) on 1 thread against all of convcore's threads, interleaved: every layer's
forward and forward + backward (training mode), the loss, the optimizer step, and one
whole epoch of ``fit`` (1,348 images). 1 thread is the calling thread capped by
``set_thread_limit(1)``; the pool is the same, so only the split differs.

    PYTHONPATH=src python benchmarks/classify_ops.py [--side 8] [--rounds 15] [--threads 2]

Prints per op: median wall microseconds per call on 1 and N threads and their ratio
(above 1: N threads faster), with the load average before and after.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable, Dict, List, Tuple

import numpy as np

import convcore
from convcore import _core, classify
from convcore.layers import CrossEntropyLoss
from convcore.optim import Adam
from convcore.train import fit

BATCH, SAMPLES = classify.Settings.batch_size, 1348


def ops(side: int) -> Dict[str, Callable[[], object]]:
    """Closures, one per operation of a training step, in the order the step runs them."""
    rng = np.random.default_rng(0)
    model = classify.cnn(side, seed=0)
    model.train()
    x = rng.standard_normal((BATCH, 1, side, side), dtype=np.float32)
    labels = rng.integers(0, 10, BATCH)
    inputs, grads = [x], []
    for layer in model:
        inputs.append(layer(inputs[-1]))
    crit = CrossEntropyLoss()
    crit(inputs[-1], labels)
    g = crit.backward()
    for i in reversed(range(len(model))):
        grads.insert(0, g)
        g = model[i].backward(g)
    out: Dict[str, Callable[[], object]] = {}
    for i, layer in enumerate(model):
        name = f"{i} {type(layer).__name__}"
        xi, gi, first = inputs[i], grads[i], i == 0

        def fwd(layer=layer, xi=xi):
            return layer(xi)

        def fwd_bwd(layer=layer, xi=xi, gi=gi, first=first):
            layer(xi)
            return layer.backward(gi, input_grad=not first) if first else layer.backward(gi)

        out[f"{name} forward"] = fwd
        out[f"{name} forward+backward"] = fwd_bwd

    def loss():
        crit(inputs[-1], labels)
        return crit.backward()

    opt = Adam(model.parameters(), lr=classify.Settings.lr)
    out["loss + backward"] = loss
    out["Adam step"] = opt.step
    xs = rng.standard_normal((SAMPLES, 1, side, side), dtype=np.float32)
    ys = rng.integers(0, 10, SAMPLES)
    epoch_model = classify.cnn(side, seed=0)
    epoch_opt = Adam(epoch_model.parameters(), lr=classify.Settings.lr)
    out["epoch (fit)"] = lambda: fit(epoch_model, xs, ys, epochs=1, batch_size=BATCH,
                                     optimizer=epoch_opt, loss=CrossEntropyLoss(), seed=0,
                                     progress=False)
    return out


def timed(fn: Callable[[], object], limit: int, number: int) -> float:
    previous = _core.get_thread_limit()
    _core.set_thread_limit(limit)
    try:
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        _core.set_thread_limit(previous)


def measure(fns: Dict[str, Callable[[], object]], rounds: int,
            threads: int) -> Dict[str, Tuple[float, float, float]]:
    """{op: (median s on 1 thread, median s on `threads`, median per-round ratio)}."""
    number = {}
    for name, fn in fns.items():
        t = timed(fn, 1, 1)
        number[name] = max(1, min(2000, int(0.02 / max(t, 1e-7))))
    samples: Dict[str, List[Tuple[float, float]]] = {n: [] for n in fns}
    for r in range(rounds):
        for name, fn in fns.items():
            order = (1, threads) if r % 2 == 0 else (threads, 1)
            t = {lim: timed(fn, lim, number[name]) for lim in order}
            samples[name].append((t[1], t[threads]))
    return {n: (statistics.median(a for a, _ in s), statistics.median(b for _, b in s),
                statistics.median(a / b for a, b in s)) for n, s in samples.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    convcore.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    res = measure(ops(args.side), args.rounds, args.threads)
    load1 = os.getloadavg()[0]
    print(f"classify CNN, {args.side}x{args.side}, batch {BATCH}, ISA {convcore.info()['isa']}, "
          f"{args.rounds} interleaved rounds, load average {load0:.1f} -> {load1:.1f}")
    print(f"{'op':34s} {'1 thread us':>12s} {f'{args.threads} threads us':>13s} {'1/N':>6s}")
    for name, (one, many, ratio) in res.items():
        print(f"{name:34s} {one * 1e6:12.1f} {many * 1e6:13.1f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
