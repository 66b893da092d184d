"""One training epoch of the classification experiment's CNN (``convcore.classify.cnn``:
three 3x3 convolutions, max pooling, global average pooling, one Dense) on the digits
split's shape (1,348 images, batch 32, Adam): convcore (``convcore.train.fit`` for one
epoch, as ``python -m convcore classify`` runs it) beside PyTorch (the same network and
weights, the same batches, autograd, ``torch.optim.Adam``), on the 8x8 images and on the
16x16 canvas of the translation experiment. The data are random (the cost does not
depend on the values); ``extra_info`` carries the epoch's forward multiply-adds (the
backward pass adds about twice that).

As a script, the two epochs are timed interleaved (``convcore.bench.measure``: rounds
alternate the implementations, medians of per-round times and of the per-round ratio)::

    PYTHONPATH=src python benchmarks/bench_classify.py [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import numpy as np
import pytest

import convcore
from convcore import bench, classify
from convcore.layers import CrossEntropyLoss
from convcore.optim import Adam
from convcore.train import fit

SAMPLES = 1348  # the training split of load_digits (1,797 images, a quarter for testing)
BATCH, LR = classify.Settings.batch_size, classify.Settings.lr
SIDES = (8, 16)


def data(side: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((SAMPLES, 1, side, side), dtype=np.float32),
            rng.integers(0, 10, SAMPLES))


def convcore_epoch(side: int) -> Callable[[], float]:
    """A closure training the convcore CNN for one epoch; returns the epoch's loss."""
    model = classify.cnn(side, seed=0)
    opt = Adam(model.parameters(), lr=LR)
    x, y = data(side)

    def epoch() -> float:
        return fit(model, x, y, epochs=1, batch_size=BATCH, optimizer=opt,
                   loss=CrossEntropyLoss(), seed=0, progress=False)["loss"][0]

    return epoch


def torch_epoch(side: int) -> Callable[[], float]:
    """The same epoch in PyTorch, the batches drawn as ``fit`` draws them
    (``Unavailable`` without PyTorch)."""
    torch = bench.require("torch")
    model = bench.torch_sequential(classify.cnn(side, seed=0))
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    crit = torch.nn.CrossEntropyLoss()
    x, y = data(side)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def epoch() -> float:
        order = torch.from_numpy(np.random.default_rng(0).permutation(SAMPLES))
        total = 0.0
        for start in range(0, SAMPLES, BATCH):
            idx = order[start:start + BATCH]
            opt.zero_grad()
            loss = crit(model(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
        return total / SAMPLES

    return epoch


def macs(side: int) -> int:
    return classify.cnn(side).macs((SAMPLES, 1, side, side))


@pytest.mark.parametrize("side", SIDES)
def test_cnn_epoch_convcore(run, side):
    loss = run(convcore_epoch(side), group=f"classify-cnn-epoch-{side}x{side}",
               flops=2 * macs(side), impl="convcore")
    assert np.isfinite(loss)


@pytest.mark.parametrize("side", SIDES)
def test_cnn_epoch_torch(run, side):
    from benchutil import make_or_skip

    loss = run(make_or_skip(torch_epoch, side), group=f"classify-cnn-epoch-{side}x{side}",
               flops=2 * macs(side), impl="pytorch")
    assert np.isfinite(loss)


def test_first_epochs_agree_with_torch():
    """The same weights, batches and optimizer: the first epoch's mean losses agree to
    float32 rounding of 10-class log-sum-exps over outputs of order 1, after 43 Adam steps
    whose updates differ only by rounding (a wrong batch order or layer would differ by
    far more than 1e-3)."""
    from benchutil import make_or_skip

    theirs = make_or_skip(torch_epoch, 8)
    a, b = convcore_epoch(8)(), theirs()
    assert abs(a - b) <= 1e-3 * max(1.0, abs(b)), (a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    info = convcore.info()
    with bench.pinned_threads(args.threads):
        peak = bench.peak_gflops(args.threads)
        for side in SIDES:
            fns: Dict[str, Callable[[], object]] = {"convcore": convcore_epoch(side)}
            try:
                fns["pytorch"] = torch_epoch(side)
            except bench.Unavailable as e:
                print(f"pytorch: {e}")
            result = bench.measure(fns, rounds=args.rounds, sample_s=0.2, baseline="convcore")
            flops = 6 * macs(side)  # forward, backward-data and backward-weights
            print(f"CNN epoch on {side}x{side} images ({SAMPLES} samples, batch {BATCH}, Adam), "
                  f"{args.threads} thread(s), ISA {info['isa']}, {args.rounds} interleaved "
                  f"rounds; peak {peak:.0f} GFLOP/s")
            for name, (seconds, ratio) in result.items():
                gflops = flops / seconds * 1e-9
                print(f"  {name:9s} {seconds * 1e3:8.1f} ms   time / convcore's (median of "
                      f"rounds) {ratio:.2f}   ~{gflops:.1f} GFLOP/s ({100 * gflops / peak:.1f}% "
                      "of peak)")


if __name__ == "__main__":
    main()
