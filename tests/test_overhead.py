# test_overhead.py — small convolutions run inline on the caller's thread (below
# kInlineWork * kMacsPerWork = 2**20 multiply-adds, cpp/src/threadpool.hpp); their results
# must be bitwise those of the same images computed by the pool in a batch large enough
# to wake it. The same for the backward pass's input gradient and the locally connected
# layer.
from __future__ import annotations

import numpy as np
import pytest

import convcore
from convcore import layers
from convcore import _core
from convcore.testing import check_conv2d

# (C, K, H, W, R, S, algorithm): one image is far below the inline threshold, the batch
# of BATCH images far above it (BATCH * K * Ho * Wo * C * R * S multiply-adds).
CASES = [
    (1, 1, 4, 4, 3, 3, "direct"),
    (1, 1, 4, 4, 3, 3, "auto"),
    (3, 5, 7, 5, 3, 2, "direct"),
    (3, 5, 7, 5, 1, 1, "im2col"),
    (4, 4, 6, 6, 3, 3, "winograd"),
]
BATCH = 8192  # the smallest case's batch: 1.2 M multiply-adds


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def threads(request):
    old = convcore.get_num_threads()
    convcore.set_num_threads(request.param)
    yield request.param
    convcore.set_num_threads(old)


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[2]}x{c[3]}-k{c[1]}-{c[4]}x{c[5]}-{c[6]}")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_inline_equals_pooled_bitwise(case, dtype, threads):
    c, k, h, w, r, s, algorithm = case
    if algorithm == "winograd" and dtype == np.float64:
        pytest.skip("winograd is float32 only")
    rng = np.random.default_rng(20)
    x = rng.standard_normal((BATCH, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    pooled = convcore.conv2d(x, wt, b, padding=1, algorithm=algorithm)
    for i in (0, 1, BATCH - 1):
        one = convcore.conv2d(x[i:i + 1], wt, b, padding=1, algorithm=algorithm)
        assert np.array_equal(one[0], pooled[i])
    if algorithm != "winograd":  # (winograd's own bound is tested in test_winograd.py)
        check_conv2d(convcore.conv2d(x[:1], wt, b, padding=1, algorithm=algorithm),
                     x[:1], wt, b, padding=1)


def test_layer_inline_equals_pooled_bitwise(threads):
    rng = np.random.default_rng(21)
    layer = layers.Conv2d(2, 3, 3, padding=1).eval()
    x = rng.standard_normal((BATCH, 2, 5, 5)).astype(np.float32)
    pooled = layer(x)
    for i in (0, BATCH // 2):
        assert np.array_equal(layer(x[i:i + 1])[0], pooled[i])


@pytest.mark.parametrize("padding_mode", ["zeros", "replicate"])
def test_backward_inline_equals_pooled_bitwise(threads, padding_mode):
    # The input gradient of one image does not depend on the others: alone (inline) and in
    # the batch (pooled) it must agree bit for bit.
    rng = np.random.default_rng(22)
    x = rng.standard_normal((BATCH, 3, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    g = rng.standard_normal((BATCH, 4, 6, 6)).astype(np.float32)
    gi = convcore.conv2d_backward(g, x, w, padding=1, padding_mode=padding_mode,
                                  output_mask=(True, False, False))[0]
    for i in (0, BATCH - 1):
        one = convcore.conv2d_backward(g[i:i + 1], x[i:i + 1], w, padding=1,
                                       padding_mode=padding_mode,
                                       output_mask=(True, False, False))[0]
        assert np.array_equal(one[0], gi[i])


def test_locally_connected_inline_equals_pooled_bitwise():
    # Its kernels take images 8 at a time, so a batch is compared with itself: run inline
    # (the thread limit at 1) and over 2 threads, forward and both gradients.
    rng = np.random.default_rng(23)
    x = rng.standard_normal((BATCH // 8, 2, 5, 5)).astype(np.float32)
    w = rng.standard_normal((5, 5, 3, 2, 3, 3)).astype(np.float32)
    g = rng.standard_normal((BATCH // 8, 3, 5, 5)).astype(np.float32)
    old, limit = convcore.get_num_threads(), _core.get_thread_limit()
    convcore.set_num_threads(2)
    try:
        runs = []
        for cap in (1, 0):
            _core.set_thread_limit(cap)
            runs.append((convcore.locally_connected2d(x, w, padding=1),)
                        + convcore.locally_connected2d_backward(g, x, w, padding=1))
    finally:
        _core.set_thread_limit(limit)
        convcore.set_num_threads(old)
    for a, b in zip(*runs):
        assert np.array_equal(a, b)


def test_inline_keeps_the_callers_thread_limit():
    old = _core.get_thread_limit()
    _core.set_thread_limit(2)
    try:
        convcore.conv2d(np.ones((1, 1, 4, 4), np.float32), np.ones((1, 1, 3, 3), np.float32))
        assert _core.get_thread_limit() == 2
    finally:
        _core.set_thread_limit(old)


# ----------------------------------------------------------------- conv2d's repeat-call path


def _repeat(call, times=3):
    return [call() for _ in range(times)]


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_repeated_call_equals_the_first_bitwise(batched, dtype):
    # The second and later calls of one geometry take the remembered path
    # (functional._CALLS); the result must be the checked path's, bit for bit.
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 9, 7) if batched else (3, 9, 7)).astype(dtype)
    w = rng.standard_normal((4, 3, 3, 3)).astype(dtype)
    b = rng.standard_normal(4).astype(dtype)
    kw = dict(stride=2, padding=1, dilation=1, groups=1, padding_mode="reflect",
              activation="relu")
    first, *rest = _repeat(lambda: convcore.conv2d(x, w, b, **kw, algorithm="direct"))
    check_conv2d(first if batched else first[None], x if batched else x[None], w, b, **kw)
    for y in rest:
        assert y.shape == first.shape and y.dtype == first.dtype
        np.testing.assert_array_equal(y, first)
    assert not np.shares_memory(rest[0], rest[1])  # a fresh output each call
    # New contents, same geometry: the remembered path computes, not replays.
    x2 = x * 2
    y2 = convcore.conv2d(x2, w, b, **kw, algorithm="direct")
    check_conv2d(y2 if batched else y2[None], x2 if batched else x2[None], w, b, **kw)


def test_repeated_call_still_checks_what_the_key_cannot_see():
    x = np.ones((1, 1, 4, 4), np.float32)
    w = np.ones((1, 1, 3, 3), np.float32)
    convcore.conv2d(x, w, None, 1, 0, 1, 1)
    convcore.conv2d(x, w, None, 1, 0, 1, 1)  # remembered
    # Values that hash like the remembered ones but are not plain ints.
    with pytest.raises(TypeError, match="groups"):
        convcore.conv2d(x, w, None, 1, 0, 1, True)
    with pytest.raises(TypeError, match="stride"):
        convcore.conv2d(x, w, None, 1.0, 0, 1, 1)
    # Operands the core cannot take as they are: the checked path converts them.
    xt = np.ones((1, 1, 8, 8), np.float32)[:, :, ::2, ::2]
    np.testing.assert_array_equal(convcore.conv2d(xt, w), convcore.conv2d(x, w))
    wf = np.asfortranarray(np.ones((1, 1, 3, 3), np.float32))
    np.testing.assert_array_equal(convcore.conv2d(x, wf), convcore.conv2d(x, w))
    # Another dtype, another key: the dtype mix is still an error.
    with pytest.raises(TypeError, match="dtype"):
        convcore.conv2d(x, w.astype(np.float64))
    # out= always takes the checked path.
    with pytest.raises(ValueError, match="shape"):
        convcore.conv2d(x, w, out=np.empty((1, 1, 3, 3), np.float32))
    # A geometry the core refused is never remembered: it raises every time.
    for _ in range(2):
        with pytest.raises(ValueError):
            convcore.conv2d(np.ones((1, 1, 2, 2), np.float32), w)
