"""Every public operation called from many Python threads at once: results bitwise equal
to serial calls, and the calls really run in parallel (the GIL is released while the C++
core computes)."""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

import convcore
from convcore import layers

RNG = np.random.default_rng(7)
X = RNG.standard_normal((2, 16, 40, 40)).astype(np.float32)
W = RNG.standard_normal((16, 16, 3, 3)).astype(np.float32)
LC_W = RNG.standard_normal((38, 38, 4, 16, 3, 3)).astype(np.float32)
IMG = RNG.standard_normal((300, 300)).astype(np.float32)
K3 = RNG.standard_normal((3, 3)).astype(np.float32)
DENSE_X = RNG.standard_normal((64, 512)).astype(np.float32)
DENSE_W = RNG.standard_normal((256, 512)).astype(np.float32)
CONV_LAYER = layers.Conv2d(16, 16, 3, padding=1, activation="relu", seed=0)

OPS = {
    "conv2d-direct": lambda: convcore.conv2d(X, W, padding=1, algorithm="direct"),
    "conv2d-im2col": lambda: convcore.conv2d(X, W, padding=1, algorithm="im2col",
                                             activation="tanh"),
    "conv2d-reflect": lambda: convcore.conv2d(X, W, padding=2, padding_mode="reflect"),
    "linear": lambda: convcore.linear(DENSE_X, DENSE_W, activation="sigmoid"),
    "locally_connected2d": lambda: convcore.locally_connected2d(X, LC_W),
    "max_pool2d": lambda: convcore.max_pool2d(X, 3, 2, 1),
    "avg_pool2d": lambda: convcore.avg_pool2d(X, 2),
    "sigmoid": lambda: convcore.sigmoid(X, 0.08, 50.0),
    "correlate2d": lambda: convcore.correlate2d(IMG, K3, "same", "symm"),
    "Conv2d layer": lambda: CONV_LAYER(X),
}


@pytest.mark.parametrize("threads", [1, 2])
def test_every_op_from_many_threads_is_bitwise_serial(threads):
    previous = convcore.get_num_threads()
    convcore.set_num_threads(threads)
    try:
        expected = {name: op() for name, op in OPS.items()}
        errors = []
        barrier = threading.Barrier(6)

        def worker(seed):
            barrier.wait()
            names = list(OPS)
            np.random.default_rng(seed).shuffle(names)
            for _ in range(3):
                for name in names:
                    if not np.array_equal(OPS[name](), expected[name], equal_nan=True):
                        errors.append(name)

        pool = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        assert not errors, f"results differ from serial calls: {sorted(set(errors))}"
    finally:
        convcore.set_num_threads(previous)


def test_calls_release_the_gil():
    """While one thread runs a long convolution, another thread keeps executing Python
    bytecode: with the GIL held it could not tick at all during the call."""
    x = np.ones((8, 64, 64, 64), np.float32)
    w = np.ones((64, 64, 3, 3), np.float32)
    previous = convcore.get_num_threads()
    convcore.set_num_threads(1)
    try:
        t0 = time.perf_counter()
        convcore.conv2d(x, w, padding=1)
        alone = time.perf_counter() - t0
        ticks = []
        done = threading.Event()

        def ticker():
            while not done.is_set():
                ticks.append(time.perf_counter())
                time.sleep(0.001)

        t = threading.Thread(target=ticker)
        t.start()
        time.sleep(0.01)
        start = time.perf_counter()
        convcore.conv2d(x, w, padding=1)
        end = time.perf_counter()
        done.set()
        t.join()
        during = [v for v in ticks if start < v < end]
        # a tick every ~1 ms (more under load): expect far more than a handful
        assert len(during) >= max(3, int(0.2 * (end - start) / 0.001)), (len(during), alone)
    finally:
        convcore.set_num_threads(previous)


def _pool_threads():
    # Thread ids of convcore's pool workers (named "convcore-pool" on Linux).
    found = set()
    for tid in os.listdir("/proc/self/task"):
        try:
            with open(f"/proc/self/task/{tid}/comm") as f:
                if f.read().strip() == "convcore-pool":
                    found.add(tid)
        except OSError:  # the thread ended while we listed
            pass
    return found


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="lists threads via /proc")
def test_fewer_threads_and_back_start_no_threads():
    # The pool grows only: set_num_threads(1) parks the worker, 2 again wakes the same one
    # (a benchmark interleaving 1 and 2 threads, or a threadpoolctl block, started a new
    # worker with cold scratch on every switch); the results stay bitwise the same.
    previous = convcore.get_num_threads()
    run = OPS["conv2d-im2col"]
    try:
        convcore.set_num_threads(2)
        two = run()
        before = _pool_threads()
        convcore.set_num_threads(1)
        one = run()
        convcore.set_num_threads(2)
        again = run()
        after = _pool_threads()
    finally:
        convcore.set_num_threads(previous)
    # Only the pool's own threads count: a thread an earlier test left behind (Dask's, say)
    # may end in between.
    assert before and after == before
    np.testing.assert_array_equal(one, two)
    np.testing.assert_array_equal(again, two)
