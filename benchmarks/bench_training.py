"""One training step of LeNet-5 (``convcore.models.lenet5``, 28x28 inputs, batch 64,
cross-entropy, SGD with momentum 0.9): convcore (forward in training mode, loss, backward,
optimizer step) beside PyTorch (the same network and weights, autograd, torch.optim).
``extra_info`` carries the step's multiply-adds (forward; backward is about twice that).

As a script, the two steps are timed interleaved (``convcore.bench.measure``: rounds
alternate the implementations, medians of per-round times and of the per-round ratio)::

    PYTHONPATH=src python benchmarks/bench_training.py [--threads N] [--rounds R]
"""

from __future__ import annotations

import argparse
from typing import Callable, Dict

import numpy as np

import convcore
from convcore import bench
from convcore.layers import CrossEntropyLoss
from convcore.models import lenet5
from convcore.optim import SGD

BATCH = 64
LR, MOMENTUM = 0.01, 0.9


def data(batch: int = BATCH, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, 1, 28, 28), dtype=np.float32),
            rng.integers(0, 10, batch))


def convcore_step(batch: int = BATCH) -> Callable[[], float]:
    """A closure running one convcore training step; returns the loss."""
    model = lenet5(seed=0)
    opt = SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    crit = CrossEntropyLoss()
    x, y = data(batch)

    def step() -> float:
        loss = crit(model(x), y)
        opt.zero_grad()
        model.backward(crit.backward(), input_grad=False)  # x needs no gradient
        opt.step()
        return loss

    return step


def torch_step(batch: int = BATCH) -> Callable[[], float]:
    """The same step in PyTorch (``Unavailable`` without it)."""
    torch = bench.require("torch")
    model = bench.torch_sequential(lenet5(seed=0))
    opt = torch.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    crit = torch.nn.CrossEntropyLoss()
    x, y = data(batch)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step() -> float:
        opt.zero_grad()
        loss = crit(model(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    return step


def macs(batch: int = BATCH) -> int:
    return lenet5().macs((batch, 1, 28, 28))


def test_lenet5_training_step_convcore(run):
    step = convcore_step()
    first = step()
    loss = run(step, group="lenet5-train-step-b64", flops=2 * macs(), impl="convcore")
    assert np.isfinite(first) and np.isfinite(loss)


def test_lenet5_training_step_torch(run):
    from benchutil import make_or_skip

    step = make_or_skip(torch_step)
    loss = run(step, group="lenet5-train-step-b64", flops=2 * macs(), impl="pytorch")
    assert np.isfinite(loss)


def test_first_steps_agree_with_torch():
    """The two implementations start from the same weights and data: their first losses
    agree to float32 rounding of a 10-class log-sum-exp over outputs of size ~1."""
    from benchutil import make_or_skip

    ours, theirs = convcore_step(), make_or_skip(torch_step)
    for _ in range(2):
        a, b = ours(), theirs()
        assert abs(a - b) <= 1e-4 * max(1.0, abs(b)), (a, b)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=BATCH)
    args = parser.parse_args()
    with bench.pinned_threads(args.threads):
        fns: Dict[str, Callable[[], object]] = {"convcore": convcore_step(args.batch)}
        try:
            fns["pytorch"] = torch_step(args.batch)
        except bench.Unavailable as e:
            print(f"pytorch: {e}")
        result = bench.measure(fns, rounds=args.rounds, sample_s=0.2, baseline="convcore")
    info = convcore.info()
    print(f"LeNet-5 training step, batch {args.batch}, SGD momentum {MOMENTUM}, "
          f"{args.threads} thread(s), ISA {info['isa']}, {args.rounds} interleaved rounds")
    for name, (seconds, ratio) in result.items():
        print(f"  {name:9s} {seconds * 1e3:7.2f} ms   time / convcore's (median of rounds) "
              f"{ratio:.2f}")


if __name__ == "__main__":
    main()
