"""max_pool2d / avg_pool2d and their layers against a float64 NumPy reference written from
PyTorch's definition (and against torch itself when installed): every ISA, widths around
the vector width (tails), strides (contiguous loads and gathers), dilation, padding,
ceil_mode (including the rule that the last window starts inside the input or the left
padding), count_include_pad, NaN and infinities, 1 and 2 threads, errors."""

import zlib

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.testing import bitwise_over_threads


def out_size(n, k, s, p, d, ceil):
    num = n + 2 * p - d * (k - 1) - 1
    o = (-(-num // s) if ceil else num // s) + 1
    if ceil and (o - 1) * s >= n + p:
        o -= 1
    return o


def reference_pool(x, k, s, p, d=(1, 1), ceil=False, avg=False, count_include_pad=True):
    """PyTorch's pooling in float64, one window at a time (windows clipped to the input;
    the average's divisor from the window clipped to the padded input, or to the input)."""
    x = np.asarray(x, np.float64)
    n, c, h, w = x.shape
    ho, wo = out_size(h, k[0], s[0], p[0], d[0], ceil), out_size(w, k[1], s[1], p[1], d[1], ceil)
    y = np.empty((n, c, ho, wo))
    for i in range(ho):
        for j in range(wo):
            rows = [i * s[0] - p[0] + r * d[0] for r in range(k[0])]
            cols = [j * s[1] - p[1] + t * d[1] for t in range(k[1])]
            rows_in = [r for r in rows if 0 <= r < h]
            cols_in = [t for t in cols if 0 <= t < w]
            win = x[:, :, rows_in][:, :, :, cols_in].reshape(n, c, -1)
            if avg:
                h0, w0 = i * s[0] - p[0], j * s[1] - p[1]
                h1, w1 = min(h0 + k[0], h + p[0]), min(w0 + k[1], w + p[1])
                div = (h1 - h0) * (w1 - w0) if count_include_pad else len(rows_in) * len(cols_in)
                y[:, :, i, j] = win.sum(-1) / div
            else:
                # NaN anywhere in the window gives NaN (np.max propagates it).
                y[:, :, i, j] = win.max(-1) if win.shape[-1] else -np.inf
    return y


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


# (H, W, kernel, stride, padding, dilation, ceil_mode)
MAX_CASES = [
    (8, 8, 2, None, 0, 1, False),
    (9, 17, 3, 2, 1, 1, True),
    (7, 33, 3, 1, 1, 1, False),
    (15, 16, (2, 3), (1, 2), (1, 1), 1, True),
    (17, 31, 3, 3, 1, 2, True),
    (5, 9, 2, 1, 0, (2, 1), False),
    (6, 40, 4, 3, 2, 1, True),
    (1, 7, 1, 1, 0, 1, False),
    (11, 13, 5, 4, 2, 1, True),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", MAX_CASES, ids=str)
def test_max_pool_matches_reference(isa, dtype, case):
    h, w, k, s, p, d, ceil = case
    x = np.random.default_rng(zlib.crc32(repr(case).encode())).standard_normal((2, 3, h, w)).astype(dtype)
    ref = reference_pool(x, pair(k), pair(k if s is None else s), pair(p), pair(d), ceil)
    y = convcore.max_pool2d(x, k, s, p, d, ceil)
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, ref.astype(dtype))  # max is exact


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("case", [c for c in MAX_CASES if c[5] == 1], ids=str)
def test_avg_pool_matches_reference(isa, dtype, count_include_pad, case):
    h, w, k, s, p, _, ceil = case
    x = np.random.default_rng(zlib.crc32(repr(case).encode())).standard_normal((2, 3, h, w)).astype(dtype)
    k2 = pair(k)
    ref = reference_pool(x, k2, pair(k if s is None else s), pair(p), ceil=ceil, avg=True,
                         count_include_pad=count_include_pad)
    y = convcore.avg_pool2d(x, k, s, p, ceil, count_include_pad)
    # A sum of R*S terms then one division: gamma(R*S + 1) relative to sum|x| / divisor.
    ref_abs = reference_pool(np.abs(x), k2, pair(k if s is None else s), pair(p), ceil=ceil,
                             avg=True, count_include_pad=count_include_pad)
    n = k2[0] * k2[1] + 1
    u = np.finfo(dtype).eps / 2
    assert y.dtype == dtype
    assert np.all(np.abs(y - ref) <= n * u / (1 - n * u) * ref_abs * 1.01 + np.finfo(dtype).tiny)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("stride", [1, 2, 3])
def test_max_pool_nan_in_body_and_tail(isa, dtype, stride):
    """NaN at every column in turn (vector body, masked tail, padding edge) comes out as
    NaN in exactly the windows that hold it; infinities are ordinary values."""
    w = 21
    for col in range(w):
        x = np.random.default_rng(col).standard_normal((1, 2, 5, w)).astype(dtype)
        x[0, 1, 2, col] = np.nan
        x[0, 0, 1, col] = -np.inf
        x[0, 0, 3, (col + 5) % w] = np.inf
        y = convcore.max_pool2d(x, 3, stride, 1, 1, True)
        ref = reference_pool(x, (3, 3), (stride, stride), (1, 1), ceil=True)
        np.testing.assert_array_equal(y, ref.astype(dtype))
        assert np.isnan(y).any()


def test_avg_pool_nan_propagates(isa):
    x = np.ones((1, 1, 6, 19), np.float32)
    x[0, 0, 2, 17] = np.nan
    y = convcore.avg_pool2d(x, 2)
    assert np.isnan(y[0, 0, 1, 8]) and np.isnan(y).sum() == 1


def test_threads_bitwise(isa):
    x = np.random.default_rng(0).standard_normal((3, 5, 33, 35)).astype(np.float32)
    bitwise_over_threads(lambda: convcore.max_pool2d(x, 3, 2, 1))
    bitwise_over_threads(lambda: convcore.avg_pool2d(x, 3, 2, 1, True, False))


def test_against_torch():
    torch = pytest.importorskip("torch")
    tf = torch.nn.functional
    rng = np.random.default_rng(1)
    for h, w, k, s, p, d, ceil in MAX_CASES:
        x = rng.standard_normal((2, 3, h, w)).astype(np.float32)
        x[0, 0, h // 2, w // 2] = np.nan
        t = torch.from_numpy(x)
        np.testing.assert_array_equal(convcore.max_pool2d(x, k, s, p, d, ceil),
                                      tf.max_pool2d(t, k, s, p, d, ceil).numpy())
        if d == 1:
            for cip in (True, False):
                np.testing.assert_allclose(convcore.avg_pool2d(x, k, s, p, ceil, cip),
                                           tf.avg_pool2d(t, k, s, p, ceil, cip).numpy(),
                                           rtol=1e-6, atol=1e-6)


def test_unbatched_empty_and_layers():
    x = np.random.default_rng(2).standard_normal((4, 10, 10)).astype(np.float32)
    np.testing.assert_array_equal(convcore.max_pool2d(x, 2), convcore.max_pool2d(x[None], 2)[0])
    assert convcore.avg_pool2d(x[None, :0], 2).shape == (1, 0, 5, 5)
    assert convcore.max_pool2d(np.zeros((0, 4, 10, 10), np.float32), 2).shape == (0, 4, 5, 5)
    mp, ap = L.MaxPool2d(3, 2, 1, ceil_mode=True), L.AvgPool2d(2, count_include_pad=False)
    assert repr(mp) == "MaxPool2d(kernel_size=3, stride=2, padding=1, dilation=1, ceil_mode=True)"
    assert repr(ap) == "AvgPool2d(kernel_size=2, stride=2, padding=0)"
    assert mp.output_shape((4, 10, 10)) == (4, 6, 6) == mp(x).shape
    assert ap.output_shape((7, 4, 10, 11)) == (7, 4, 5, 5)
    assert mp.num_params == 0 and mp.macs((4, 10, 10)) == 0
    np.testing.assert_array_equal(ap(x), convcore.avg_pool2d(x, 2, count_include_pad=False))


def test_layouts_give_the_same_result(isa):
    x = np.random.default_rng(4).standard_normal((2, 3, 9, 22)).astype(np.float64)
    view = x[:, :, :, ::2]
    fortran = np.asfortranarray(view)
    fortran.flags.writeable = False
    for f in (lambda a: convcore.max_pool2d(a, 3, 2, 1), lambda a: convcore.avg_pool2d(a, 2)):
        expect = f(np.ascontiguousarray(view))
        np.testing.assert_array_equal(f(view), expect)
        np.testing.assert_array_equal(f(fortran), expect)


def test_errors():
    x = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(ValueError, match="at most half"):
        convcore.max_pool2d(x, 3, padding=2)
    with pytest.raises(ValueError, match="at most half"):
        L.AvgPool2d(2, padding=2)
    with pytest.raises(ValueError, match="stride"):
        convcore.max_pool2d(x, 2, 0)
    with pytest.raises(ValueError, match="kernel_size"):
        convcore.avg_pool2d(x, 0)
    with pytest.raises(ValueError, match="dilation"):
        convcore.max_pool2d(x, 2, dilation=0)
    with pytest.raises(ValueError, match="too small"):
        convcore.max_pool2d(x, 7)
    with pytest.raises(ValueError, match="too small"):
        convcore.max_pool2d(x, 3, dilation=3)
    with pytest.raises(ValueError, match="input must be"):
        convcore.avg_pool2d(x[0, 0], 2)
    with pytest.raises(TypeError, match="float32 or float64"):
        convcore.max_pool2d(x.astype(np.int64), 2)
    with pytest.raises(TypeError, match="ceil_mode"):
        convcore.max_pool2d(x, 2, ceil_mode="yes")
    with pytest.raises(TypeError, match="kernel_size"):
        L.MaxPool2d(2.5)
