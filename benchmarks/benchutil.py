"""Helpers the benchmark suites share: shape parameters and result checks.

Under ``--benchmark-disable`` (CI) the suites run each case once, only on shapes marked
small here, and check every implementation's result, so that no suite rots unnoticed.
"""

from __future__ import annotations

import contextlib
import time
from typing import Callable, Iterable

import numpy as np
import pytest

from convcore import bench
from convcore.testing import ConvShape, reference_conv2d, reference_conv2d_abs

#: Cases whose cost (FLOPs, elements, ...) is at most this run under --benchmark-disable.
SMALL = 20e6


def params(items: Iterable, cost: Callable[[object], float], name=lambda s: s.name) -> list:
    """pytest.param per item, id = its name, marked ``large`` when cost > SMALL."""
    return [pytest.param(s, id=name(s), marks=[pytest.mark.large] if cost(s) > SMALL else [])
            for s in items]


def is_small(cost: float) -> bool:
    return cost <= SMALL


def assert_matches(actual, expected, expected_abs, what: str) -> None:
    """|actual - expected| <= 1e-3 * max(sum|x*w|): loose enough for Winograd and FFT peers
    in float32, tight enough to catch a wrong padding, stride or layout (errors of order 1)."""
    actual = np.asarray(actual, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    err = float(np.abs(actual - expected).max(initial=0.0))
    scale = float(np.max(expected_abs, initial=0.0))
    assert err <= 1e-3 * scale + 1e-30, f"{what}: max error {err:.3e}, scale {scale:.3e}"


def check_conv(actual, s: ConvShape, x: np.ndarray, w: np.ndarray, what: str) -> None:
    """Check a conv2d result against the float64 reference (small shapes only)."""
    kwargs = s.conv2d_kwargs
    assert_matches(actual, reference_conv2d(x, w, **kwargs), reference_conv2d_abs(x, w, **kwargs),
                   what)


def make_or_skip(maker, *args, **kwargs):
    """Build an implementation, or skip the test with the reason it cannot run here."""
    try:
        return maker(*args, **kwargs)
    except bench.Unavailable as e:
        pytest.skip(str(e))



def interleaved_medians(fns: dict, rounds: int, reps: int = 5, clock=time.perf_counter,
                        pause: float = 0.0, warm: bool = False, around=None) -> dict:
    """Median seconds per call of each callable in ``fns``, keyed as ``fns``: every round
    times each one ``reps`` calls in a row, the order rotating from round to round (so a
    machine's drift and one implementation's after-effects fall on all alike); ``pause``
    seconds of sleep before each sample (a peer's spinning workers settle), then with
    ``warm`` one untimed call; ``around(key)``, if given, a context manager each sample runs
    in (e.g. the implementation's thread count)."""
    keys = list(fns)
    times = {k: [] for k in keys}
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[:r % len(keys)]:
            with around(key) if around else contextlib.nullcontext():
                if pause:
                    time.sleep(pause)
                if warm:
                    fns[key]()
                t0 = clock()
                for _ in range(reps):
                    fns[key]()
                times[key].append((clock() - t0) / reps)
    return {k: float(np.median(t)) for k, t in times.items()}
