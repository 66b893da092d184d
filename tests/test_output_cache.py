"""_core.empty (cpp/bindings/output_cache.hpp): the arrays convcore returns, their memory
recycled from dead outputs. Recycling must never hand one block to two live arrays."""

import gc

import numpy as np
import pytest

import convcore
from convcore import _core

BIG = (64, 56, 56)  # 784 KiB of float32: above the cache's 256 KiB threshold


def test_empty_is_a_plain_aligned_writeable_array():
    for dt in (np.float32, np.float64, np.int64, np.uint8, np.complex128, np.bool_):
        for shape in (BIG, (3, 5), (0, 7), ()):
            a = _core.empty(shape, np.dtype(dt))
            assert a.shape == shape and a.dtype == dt
            assert a.flags.c_contiguous and a.flags.writeable and a.flags.aligned
            a[...] = 1
            assert np.all(a == 1)
    assert _core.empty(BIG, np.dtype(np.float32)).ctypes.data % 64 == 0


def test_dead_outputs_are_recycled():
    # An odd size, and a request just 16 floats smaller: a free block left by an earlier
    # test that fits more tightly (and would rightly be taken instead) is then all but
    # impossible.
    big, small = (61, 57, 59), (16, 57, 59)
    smaller = (61 * 57 * 59 - 16,)
    a = _core.empty(big, np.dtype(np.float32))
    p = a.ctypes.data
    del a
    b = _core.empty(big, np.dtype(np.float32))
    assert b.ctypes.data == p
    # A slightly smaller request takes the same block; a much smaller one does not.
    del b
    c = _core.empty(smaller, np.dtype(np.float32))
    assert c.ctypes.data == p
    del c
    d = _core.empty(small, np.dtype(np.float32))
    assert d.ctypes.data != p


def test_live_outputs_never_share_memory():
    live = [_core.empty(BIG, np.dtype(np.float32)) for _ in range(8)]
    for i, a in enumerate(live):
        a.fill(i)
    live.extend(_core.empty(BIG, np.dtype(np.float32)) for _ in range(4))
    del live[2:6]
    gc.collect()
    live.extend(_core.empty(BIG, np.dtype(np.float32)) for _ in range(6))
    starts = sorted(a.ctypes.data for a in live)
    assert all(b - a >= live[0].nbytes for a, b in zip(starts, starts[1:]))
    assert np.all(live[0] == 0) and np.all(live[1] == 1)


def test_outputs_of_every_call_are_independent(rng):
    x = rng.standard_normal((1, 64, 56, 56), dtype=np.float32)
    w = rng.standard_normal((64, 64, 1, 1), dtype=np.float32)
    first = convcore.conv2d(x, w)
    expect = first.copy()
    second = convcore.conv2d(2 * x, w)  # while `first` lives: another block
    assert not np.shares_memory(first, second)
    assert np.array_equal(first, expect)
    del first
    third = convcore.conv2d(x, w)  # may reuse first's block: same values again
    assert np.array_equal(third, expect)


@pytest.mark.parametrize("dtype", [object, np.dtype("U3")])
def test_empty_refuses_non_numeric_dtypes(dtype):
    with pytest.raises(ValueError, match="numeric dtype"):
        _core.empty((4,), np.dtype(dtype))


def test_empty_refuses_impossible_sizes():
    with pytest.raises(MemoryError):
        _core.empty((2**40, 2**40), np.dtype(np.float32))
    with pytest.raises(ValueError, match="negative"):
        _core.empty((-1,), np.dtype(np.float32))


@pytest.fixture
def cache_limit():
    """Restores the cache's limit after a test that changes it."""
    previous = convcore.get_output_cache_bytes()
    yield
    convcore.set_output_cache_bytes(previous)


def test_cache_limit_setting(cache_limit):
    assert _core.get_output_cache_bytes() == convcore.get_output_cache_bytes() > 0
    assert convcore.info()["output_cache_bytes"] == convcore.get_output_cache_bytes()
    for n in (0, 1, 5 << 20, np.int64(3 << 20), 2**50):
        convcore.set_output_cache_bytes(n)
        assert convcore.get_output_cache_bytes() == n
    for bad, err in ((-1, ValueError), (2**50 + 1, ValueError), (2**70, ValueError),
                     (1.5, TypeError), ("64", TypeError), (True, TypeError), (None, TypeError)):
        with pytest.raises(err, match="nbytes"):
            convcore.set_output_cache_bytes(bad)


def test_cache_honours_the_limit(cache_limit):
    block = int(np.prod(BIG)) * 4  # a multiple of 64: the blocks hold exactly this
    convcore.set_output_cache_bytes(0)  # empties the cache: no earlier test's blocks
    convcore.set_output_cache_bytes(3 * block + block // 2)  # room for 3 of these blocks
    live = [_core.empty(BIG, np.dtype(np.float32)) for _ in range(6)]
    live_before = _core.output_cache_stats()[2]
    del live
    kept, blocks, live_after, high = _core.output_cache_stats()
    assert (kept, blocks) == (3 * block, 3)
    assert live_before - live_after == 6 * block and high >= live_before
    # Lowering the limit frees the excess at once; 0 keeps nothing.
    convcore.set_output_cache_bytes(block + block // 2)
    assert _core.output_cache_stats()[:2] == (block, 1)
    convcore.set_output_cache_bytes(0)
    a = _core.empty(BIG, np.dtype(np.float32))
    del a
    assert _core.output_cache_stats()[:2] == (0, 0)


@pytest.mark.parametrize("value, ok", [("8", True), ("0", True), ("", True), ("-1", False),
                                       ("1.5", False), ("lots", False), ("99999999999", False)])
def test_cache_limit_environment(value, ok):
    import os
    import subprocess
    import sys

    code = "import convcore; print(convcore.get_output_cache_bytes())"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       timeout=120, env={**os.environ, "CONVCORE_OUTPUT_CACHE_MB": value})
    if ok:
        assert r.returncode == 0, r.stderr
        assert int(r.stdout) == (int(value) << 20 if value else 256 << 20)
    else:
        assert r.returncode != 0
        assert "CONVCORE_OUTPUT_CACHE_MB" in r.stderr and "ValueError" in r.stderr
