"""Accuracy of the vector activations (vmath_avx2.hpp) and their scalar twins.

sigmoid and tanh are compared, in ulps of the float32 result, with float64 NumPy over
a sweep of the whole float32 bit range (every 4097th pattern: both signs, subnormals,
the overflow tails to 0 and 1, +-inf, NaN), standalone (``convcore.sigmoid``/``tanh``)
and fused into a convolution's store (a 1x1 conv with weight 1 passes the input to the
epilogue unchanged). float64 (vector exp_pd/tanh_pd, libm in the scalar twin) is checked
at float64 ulps against NumPy long double. The
``isa`` fixture (conftest.py) runs every ISA the machine has.
"""

import numpy as np
import pytest

import convcore

MAX_ULPS = 4  # exp ~1 ulp, then 1+e, a division and (sigmoid, t < 0) a product

SPECIAL = [0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.17e-38, -1.17e-38,
           0.625, -0.625, 88.72283, 88.72284, 88.8, -88.72, -88.8, -103.97, -103.98, -104.0,
           9.0, -9.0, 20.0, -20.0, 3.4e38, -3.4e38]


def sweep(dtype):
    if dtype == np.float32:
        bits = np.arange(0, 2**32, 4097, dtype=np.uint64).astype(np.uint32)
        x = bits.view(np.float32)
    else:
        # float64: a sweep of the interesting exponents (the tails saturate beyond +-750).
        x = np.concatenate([np.linspace(-750, 750, 200001), np.geomspace(1e-320, 1e3, 20001),
                            -np.geomspace(1e-320, 1e3, 20001)])
    return np.concatenate([x, np.array(SPECIAL, dtype=dtype)]).astype(dtype)


def reference(name, x, a=1.0, b=0.0):
    """float64 reference; sigmoid's argument a*(x-b) is formed in x's precision, as the
    kernels form it, so the comparison measures exp and the division alone."""
    dt = x.dtype.type
    wide = np.float64 if dt == np.float32 else np.longdouble  # x86: 64-bit mantissa
    with np.errstate(all="ignore"):
        if name == "tanh":
            return np.tanh(x.astype(wide))
        t = (dt(a) * (x - dt(b))).astype(wide)
        e = np.exp(-np.abs(t))
        return np.where(t >= 0, 1 / (1 + e), e / (1 + e))


def ulp_error(y, ref, dtype):
    y64 = y.astype(ref.dtype)
    with np.errstate(all="ignore"):
        spacing = np.spacing(np.abs(ref).astype(dtype)).astype(ref.dtype)
        err = np.abs(y64 - ref) / spacing
    same = (y64 == ref) | (np.isnan(y64) & np.isnan(ref))
    return np.where(same, 0.0, np.where(np.isnan(err), np.inf, err)).astype(np.float64)


def fused(x, activation):
    """act(x) through a conv epilogue: 1x1 conv, weight 1, no bias, each algorithm."""
    w = np.ones((1, 1, 1, 1), dtype=x.dtype)
    for algorithm in ("direct", "im2col"):
        y = convcore.conv2d(x.reshape(1, 1, 1, -1), w, activation=activation, algorithm=algorithm)
        yield algorithm, y.reshape(-1)


def assert_ulps(y, ref, dtype, what):
    err = ulp_error(y, ref, dtype)
    i = int(np.argmax(err))
    assert err[i] <= MAX_ULPS, (f"{what}: {err[i]:.3g} ulp at x index {i}: got {y[i]!r}, "
                                f"reference {ref[i]!r}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_standalone(isa, name, dtype):
    x = sweep(dtype)
    y = getattr(convcore, name)(x)
    assert y.dtype == dtype
    assert_ulps(y, reference(name, x), dtype, f"{name} {isa}")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", ["sigmoid", "tanh"])
def test_fused_epilogue(isa, name, dtype):
    x = sweep(dtype)
    ref = reference(name, x)
    for algorithm, y in fused(x, name):
        assert_ulps(y, ref, dtype, f"{name} fused in {algorithm}, {isa}")


@pytest.mark.parametrize("a,b", [(0.08, 50.0), (-3.0, 0.5), (1e-3, -1e4)])
def test_sigmoid_parameters(isa, a, b):
    x = sweep(np.float32)
    y = convcore.sigmoid(x, a, b)
    assert_ulps(y, reference("sigmoid", x, a, b), np.float32, f"sigmoid({a}, {b}) {isa}")


def test_limits(isa):
    x = np.array([np.inf, -np.inf, np.nan, 100.0, -100.0, 0.0, -0.0], dtype=np.float32)
    s = convcore.sigmoid(x)
    t = convcore.tanh(x)
    np.testing.assert_array_equal(s[:2], [1.0, 0.0])
    np.testing.assert_array_equal(t[:2], [1.0, -1.0])
    assert np.isnan(s[2]) and np.isnan(t[2])
    assert s[3] == 1.0 and 0 < s[4] < 1e-43  # e^-100 is a float32 subnormal
    assert t[3] == 1.0 and t[4] == -1.0
    assert s[5] == s[6] == 0.5
    assert t[5] == 0 and not np.signbit(t[5]) and np.signbit(t[6])
