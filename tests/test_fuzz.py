"""Random parameters and shapes thrown at the public functions, valid or not.

Every call must either raise one of the documented exceptions (ValueError, TypeError,
MemoryError) — and then exactly when the arguments are invalid by the contract's rules,
written out independently here — or return the reference's answer within the error
bound. Never a crash, a hang or a silent wrong answer. The atheris harness in fuzz/
drives the same checks from coverage-guided byte strings for longer runs.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcore
from convcore.testing import check_conv2d

SETTINGS = settings(max_examples=250, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])

PAD = st.one_of(st.integers(-1, 4), st.tuples(st.integers(-1, 3), st.integers(0, 3)),
                st.sampled_from(["same", "valid", "full"]))


def conv2d_is_valid(c, h, w, k, cg, r, s, stride, padding, dilation, groups, mode):
    """The contract's rules (DESIGN.md, Errors), independently of the implementation."""
    pair = lambda v: tuple(v) if isinstance(v, tuple) else (v, v)  # noqa: E731
    (sh, sw), (dh, dw) = pair(stride), pair(dilation)
    if min(sh, sw, dh, dw) < 1 or groups < 1 or c % groups or k % groups or cg * groups != c:
        return False
    if padding == "full":
        return False
    if padding == "same":
        if (sh, sw) != (1, 1):
            return False
        th, tw = dh * (r - 1), dw * (s - 1)
        pads = (th // 2, th - th // 2, tw // 2, tw - tw // 2)
    elif padding == "valid":
        pads = (0, 0, 0, 0)
    else:
        ph, pw = pair(padding)
        if ph < 0 or pw < 0:
            return False
        pads = (ph, ph, pw, pw)
    if dh * (r - 1) + 1 > h + pads[0] + pads[1] or dw * (s - 1) + 1 > w + pads[2] + pads[3]:
        return False
    if mode == "reflect" and (max(pads[:2]) >= h or max(pads[2:]) >= w):
        return False
    if mode == "circular" and (max(pads[:2]) > h or max(pads[2:]) > w):
        return False
    return True


@SETTINGS
@given(
    n=st.integers(0, 2), c=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9),
    k=st.integers(1, 6), cg=st.integers(1, 6), r=st.integers(1, 4), s=st.integers(1, 4),
    stride=st.one_of(st.integers(0, 3), st.tuples(st.integers(1, 3), st.integers(-1, 3))),
    padding=PAD, dilation=st.one_of(st.integers(0, 3), st.tuples(st.integers(1, 2), st.integers(1, 3))),
    groups=st.integers(0, 3), mode=st.sampled_from(["zeros", "reflect", "replicate", "circular"]),
    bias=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]),
    algorithm=st.sampled_from(["auto", "direct", "im2col"]),
    activation=st.sampled_from([None, "relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]),
    seed=st.integers(0, 2**32 - 1),
)
def test_conv2d_fuzz(n, c, h, w, k, cg, r, s, stride, padding, dilation, groups, mode, bias,
                     dtype, algorithm, activation, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, cg, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype) if bias else None
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    valid = conv2d_is_valid(c, h, w, k, cg, r, s, stride, padding, dilation, groups, mode)
    try:
        y = convcore.conv2d(x, wt, b, **params, padding_mode=mode, activation=activation,
                            algorithm=algorithm)
    except (ValueError, TypeError) as e:
        assert not valid, f"valid arguments refused: {e}"
        return
    assert valid, "invalid arguments accepted"
    if n == 0:
        assert y.shape[0] == 0
        return
    check_conv2d(y, x, wt, b, **params, padding_mode=mode, activation=activation)


ACTIVATIONS = {
    "relu": lambda x: np.where(np.isnan(x), x, np.maximum(x, 0)),
    "abs": np.abs,
    "square": np.square,
}


@SETTINGS
@given(
    shape=st.lists(st.integers(0, 7), min_size=0, max_size=4),
    dtype=st.sampled_from([np.float32, np.float64, np.int32, np.uint8, np.complex64, object]),
    name=st.sampled_from(sorted(ACTIVATIONS)),
    special=st.sampled_from([0.0, np.nan, np.inf, -np.inf, 1e-40]),
    seed=st.integers(0, 2**32 - 1),
)
def test_activation_fuzz(shape, dtype, name, special, seed):
    rng = np.random.default_rng(seed)
    x = np.asarray(rng.standard_normal(shape) * 10)
    if x.size:
        x.flat[rng.integers(x.size)] = special
    with np.errstate(invalid="ignore"):  # NaN/inf cast to integers: any value will do
        x = np.asarray(x.astype(dtype), dtype=dtype)
    fn = getattr(convcore, name)
    if np.dtype(dtype).kind in "cO":
        try:
            fn(x)
        except TypeError:
            return
        raise AssertionError(f"{name} accepted dtype {np.dtype(dtype)}")
    y = fn(x)
    expected = ACTIVATIONS[name](x.astype(np.float64) if x.dtype.kind in "iu" else x)
    assert y.shape == x.shape
    np.testing.assert_array_equal(y, expected.astype(y.dtype))  # exact operations


# --------------------------------------------------------------------------- linear, LC, pooling
from test_locally_connected import check_lc  # noqa: E402  (tests/ is on sys.path)
from test_pooling import out_size, reference_pool  # noqa: E402

from convcore.testing import assert_conv_close  # noqa: E402


@SETTINGS
@given(
    batch=st.lists(st.integers(0, 3), max_size=2), fin=st.integers(0, 20),
    fout=st.integers(0, 20), w_in=st.integers(0, 20), bias=st.sampled_from([None, "ok", "bad"]),
    dtype=st.sampled_from([np.float32, np.float64]), wdtype=st.sampled_from([None, np.float32]),
    activation=st.sampled_from([None, "relu", "tanh", "sigmoid"]), seed=st.integers(0, 2**32 - 1),
)
def test_linear_fuzz(batch, fin, fout, w_in, bias, dtype, wdtype, activation, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((*batch, fin)).astype(dtype)
    w = rng.standard_normal((fout, w_in)).astype(wdtype or dtype)
    b = None if bias is None else rng.standard_normal(fout + (bias == "bad")).astype(dtype)
    # As torch.nn.functional.linear, zero features are valid (an empty sum, or no output).
    valid = (w_in == fin and bias != "bad"
             and (wdtype is None or np.dtype(wdtype) == np.dtype(dtype)))
    try:
        y = convcore.linear(x, w, b, activation=activation)
    except (ValueError, TypeError) as e:
        assert not valid, f"valid arguments refused: {e}"
        return
    assert valid, "invalid arguments accepted"
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ref = x64 @ w64.T + (0 if b is None else b.astype(np.float64))
    ref_abs = np.abs(x64) @ np.abs(w64).T + (0 if b is None else np.abs(b.astype(np.float64)))
    assert y.shape == (*batch, fout) and y.dtype == dtype
    assert_conv_close(y, ref, ref_abs, fin + (b is not None), dtype, activation)


@SETTINGS
@given(
    n=st.integers(0, 3), c=st.integers(1, 3), h=st.integers(1, 8), w=st.integers(1, 8),
    k=st.integers(1, 9), r=st.integers(1, 3), s=st.integers(1, 3), stride=st.integers(1, 3),
    pad=st.integers(0, 2), dilation=st.integers(1, 2), bias=st.booleans(),
    wrong=st.sampled_from([None, "ho", "c", "bias"]), dtype=st.sampled_from([np.float32, np.float64]),
    seed=st.integers(0, 2**32 - 1),
)
def test_locally_connected_fuzz(n, c, h, w, k, r, s, stride, pad, dilation, bias, wrong, dtype,
                                seed):
    rng = np.random.default_rng(seed)
    ho = (h + 2 * pad - dilation * (r - 1) - 1) // stride + 1
    wo = (w + 2 * pad - dilation * (s - 1) - 1) // stride + 1
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((max(ho, 1) + (wrong == "ho"), max(wo, 1), k, c + (wrong == "c"),
                              r, s)).astype(dtype)
    b = rng.standard_normal((k + (wrong == "bias"), max(ho, 1), max(wo, 1))).astype(dtype) \
        if bias or wrong == "bias" else None
    valid = ho >= 1 and wo >= 1 and wrong is None
    try:
        y = convcore.locally_connected2d(x, wt, b, stride, pad, dilation)
    except (ValueError, TypeError) as e:
        assert not valid, f"valid arguments refused: {e}"
        return
    assert valid, "invalid arguments accepted"
    if n:
        check_lc(y, x, wt, b, (stride, stride), (pad,) * 4, (dilation, dilation))


@SETTINGS
@given(
    n=st.integers(0, 2), c=st.integers(1, 3), h=st.integers(1, 9), w=st.integers(1, 9),
    k=st.integers(0, 4), stride=st.one_of(st.none(), st.integers(0, 3)), pad=st.integers(-1, 2),
    dilation=st.integers(0, 2), ceil=st.booleans(), avg=st.booleans(), cip=st.booleans(),
    nan=st.booleans(), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 2**32 - 1),
)
def test_pooling_fuzz(n, c, h, w, k, stride, pad, dilation, ceil, avg, cip, nan, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    if nan and x.size:
        x.flat[rng.integers(x.size)] = np.nan
    s = k if stride is None else stride
    d = 1 if avg else dilation
    try:
        if avg:
            y = convcore.avg_pool2d(x, k, stride, pad, ceil, cip)
        else:
            y = convcore.max_pool2d(x, k, stride, pad, dilation, ceil)
    except (ValueError, TypeError):
        # PyTorch's rules: positive kernel/stride/dilation, 0 <= padding <= kernel//2, and
        # at least one output row and column.
        ok = k >= 1 and s >= 1 and d >= 1 and 0 <= pad <= k // 2
        if ok:
            ok = min(out_size(h, k, s, pad, d, ceil), out_size(w, k, s, pad, d, ceil)) < 1
            assert ok, "valid arguments refused"
        return
    assert y.dtype == dtype
    assert y.shape == (n, c, out_size(h, k, s, pad, d, ceil), out_size(w, k, s, pad, d, ceil))
    if n == 0:
        return
    ref = reference_pool(x, (k, k), (s, s), (pad, pad), (d, d), ceil, avg, cip)
    if avg:  # k*k terms summed then divided: |error| <= (k*k + 1) u sum|x| / divisor
        bound = (k * k + 1) * np.finfo(dtype).eps * reference_pool(
            np.abs(x), (k, k), (s, s), (pad, pad), (d, d), ceil, True, cip)
        assert np.array_equal(np.isnan(y), np.isnan(ref))
        fin = ~np.isnan(ref)
        assert (np.abs(y - ref)[fin] <= bound[fin]).all()
    else:  # max is exact
        np.testing.assert_array_equal(y, ref.astype(dtype))


def test_infinite_weights_meet_zero_padding_as_ieee_says(isa):
    """Found by fuzz/fuzz_public.py: zero padding is multiplied like any input, so an
    infinite weight over a padded cell gives 0 * inf = NaN in every algorithm (the first
    direct driver skipped padded taps and returned 0 there)."""
    x = np.ones((1, 1, 3, 3), np.float32)
    w = np.full((1, 1, 3, 3), np.inf, np.float32)
    expected = np.full(9, np.nan, np.float32)
    expected[4] = np.inf  # the centre window has no padded cell
    for algorithm in ("direct", "im2col"):
        y = convcore.conv2d(x, w, padding=1, algorithm=algorithm)
        np.testing.assert_array_equal(y.ravel(), expected)
    lc = convcore.locally_connected2d(x, np.full((3, 3, 1, 1, 3, 3), np.inf, np.float32),
                                      padding=1)
    np.testing.assert_array_equal(lc.ravel(), expected)
    np.testing.assert_array_equal(convcore.correlate2d(x[0, 0], w[0, 0], "same").ravel(),
                                  expected)
    tiny = convcore.conv2d(np.full((1, 1, 1, 1), -np.inf, np.float32),
                           np.full((1, 1, 1, 1), -np.inf, np.float32), stride=3, padding=1,
                           dilation=2, algorithm="direct")
    assert np.isnan(tiny).all()  # the output's only window covers padding alone
