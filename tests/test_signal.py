"""convcore.correlate2d / convolve2d against scipy.signal: every mode x boundary x dtype,
odd and even kernels, kernels larger than the image, fill values, dtype promotion, the
errors (same exception type and message), every ISA, and 1 vs 2 threads bitwise."""

from __future__ import annotations

import itertools
import warnings
import zlib

import numpy as np
import pytest

import convcore

ss = pytest.importorskip("scipy.signal")
hypothesis = pytest.importorskip("hypothesis")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

MODES = ("full", "same", "valid")
BOUNDARIES = ("fill", "wrap", "symm")
FUNCS = (("correlate2d", convcore.correlate2d, ss.correlate2d),
         ("convolve2d", convcore.convolve2d, ss.convolve2d))
DTYPES = (np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
          np.float32, np.float64, np.longdouble, np.complex64, np.complex128, np.clongdouble)
# (image, kernel): odd, even, rectangular, 1x1, kernel larger than the image (all modes;
# 'valid' swaps the inputs), kernel as large as the image.
SHAPES = (((9, 11), (3, 3)), ((8, 10), (2, 4)), ((7, 5), (4, 1)), ((5, 6), (1, 1)),
          ((3, 4), (5, 7)), ((2, 9), (6, 9)), ((4, 4), (4, 4)), ((1, 17), (1, 3)))


def _sample(rng: np.random.Generator, shape, dtype, full_range: bool) -> np.ndarray:
    dt = np.dtype(dtype)
    if dt.kind == "c":
        return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)).astype(dt)
    if dt.kind == "f":
        return rng.standard_normal(shape).astype(dt)
    info = np.iinfo(dt)
    lo, hi = (info.min, info.max) if full_range else (max(info.min, -9), 9)
    return rng.integers(lo, hi, size=shape, dtype=dt, endpoint=True)


def _unit(dtype: np.dtype) -> float:
    real = np.finfo(dtype).eps / 2 if dtype.kind in "fc" else 0.0
    return float(real)


def check_against_scipy(name, ours, theirs, a, k, mode, boundary, fillvalue) -> None:
    expected = theirs(a, k, mode, boundary, fillvalue)
    got = ours(a, k, mode, boundary, fillvalue)
    assert got.dtype == expected.dtype, (name, a.dtype, k.dtype)
    assert got.shape == expected.shape, (name, a.shape, k.shape, mode)
    if got.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected)  # exact, wrapping as SciPy's
        return
    # Both sides round: |got - ref| and |expected - ref| <= g(n) * sum|a||k|, n the taps
    # (complex products add a few roundings), so they differ by at most twice that.
    absa, absk = np.abs(a).astype(np.float64), np.abs(k).astype(np.float64)
    fill_abs = abs(complex(fillvalue)) if boundary == "fill" else 0.0
    bound = theirs(absa, absk, mode, boundary, fill_abs)
    n = min(a.size, k.size) if mode == "valid" else k.size
    g = (n + 4) * _unit(got.dtype) * (2 if got.dtype.kind == "c" else 1)
    err = np.abs(got.astype(np.clongdouble) - expected.astype(np.clongdouble))
    assert np.all(err <= 2 * g * bound + np.finfo(np.float64).tiny), (
        name, mode, boundary, float(err.max()), float((2 * g * bound).max()))


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("boundary", BOUNDARIES)
@pytest.mark.parametrize("name,ours,theirs", FUNCS, ids=[f[0] for f in FUNCS])
def test_matches_scipy(dtype, mode, boundary, name, ours, theirs):
    key = f"{np.dtype(dtype).name} {mode} {boundary} {name}"
    rng = np.random.default_rng(zlib.crc32(key.encode()))
    for (s1, s2), full_range in itertools.product(SHAPES, (False, True)):
        a = _sample(rng, s1, dtype, full_range)
        k = _sample(rng, s2, dtype, full_range)
        for fillvalue in (0, 3):
            check_against_scipy(name, ours, theirs, a, k, mode, boundary, fillvalue)


@pytest.mark.parametrize("name,ours,theirs", FUNCS, ids=[f[0] for f in FUNCS])
@pytest.mark.parametrize("d1,d2", [
    (np.float32, np.float64), (np.int8, np.float32), (np.int32, np.float32),
    (np.uint8, np.int8), (np.int64, np.uint64), (np.bool_, np.int8), (np.float32, np.complex64),
    (np.float64, np.complex64), (np.int16, np.float16), (np.uint16, np.int64),
    (np.int8, np.complex128),
], ids=str)
def test_mixed_dtypes_promote_as_scipy(name, ours, theirs, d1, d2):
    rng = np.random.default_rng(1)
    a = _sample(rng, (6, 7), np.int8, False).astype(d1)
    k = _sample(rng, (3, 2), np.int8, False).astype(d2)
    for mode, boundary in itertools.product(MODES, BOUNDARIES):
        check_against_scipy(name, ours, theirs, a, k, mode, boundary, 1)


def test_integer_paths_are_exact_and_wrap():
    """Bounds that pick the float32, float64 and exact 64-bit paths, each vs SciPy."""
    for dtype, value in ((np.int8, 100), (np.uint8, 200), (np.int16, 30000), (np.int32, 2**30),
                         (np.int64, 2**62), (np.uint64, 2**64 - 1), (np.int64, 3)):
        a = np.full((5, 6), value, dtype=dtype)
        a[1, 2] = 1
        k = np.full((3, 3), value, dtype=dtype)
        for name, ours, theirs in FUNCS:
            np.testing.assert_array_equal(ours(a, k, "same"), theirs(a, k, "same"))


@pytest.mark.parametrize("fillvalue", [2.5, np.float64(2.5), "3", [4], np.array([1.5]),
                                       np.int64(5), True, None])
def test_fillvalue_conversions(fillvalue):
    rng = np.random.default_rng(2)
    for dtype in (np.int64, np.float32, np.float64, np.complex128):
        a = _sample(rng, (4, 5), dtype, False)
        k = _sample(rng, (2, 3), dtype, False)
        outcome = []
        for f in (convcore.correlate2d, ss.correlate2d):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # SciPy's ComplexWarning, NaN casts
                    outcome.append(f(a, k, "full", "fill", fillvalue))
            except ValueError as e:
                outcome.append(str(e))
        if isinstance(outcome[1], str):
            assert outcome[0] == outcome[1]
        else:
            assert outcome[0].dtype == outcome[1].dtype
            np.testing.assert_allclose(outcome[0], outcome[1], rtol=1e-5, atol=1e-4)


def _outcome(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            r = fn()
        except Exception as e:  # noqa: BLE001 - the exception is what is compared
            return (type(e), str(e))
    return (r.dtype, r.shape, r.tolist())


ONES = np.ones((3, 5))
ERROR_CALLS = [
    lambda f: f(np.ones(3), np.ones((2, 2))),
    lambda f: f(np.ones((2, 2, 2)), np.ones((2, 2))),
    lambda f: f(np.ones((3, 5)), np.ones((4, 2)), "valid"),
    lambda f: f(ONES, ONES, "foo"),
    lambda f: f(ONES, ONES, None),
    lambda f: f(ONES, ONES, ["full"]),
    lambda f: f(ONES, ONES, "same", "bar"),
    lambda f: f(ONES, ONES, "same", "reflect"),
    lambda f: f(ONES, ONES, "full", ["fill"]),
    lambda f: f(ONES, ONES, fillvalue=1 + 2j),
    lambda f: f(ONES, ONES, fillvalue=[1, 2]),
    lambda f: f(ONES, ONES, fillvalue=[]),
    lambda f: f(ONES, ONES, fillvalue="x"),
    lambda f: f(ONES.astype(np.int8), ONES.astype(np.int8), fillvalue=300),
    lambda f: f(ONES.astype(np.int64), ONES.astype(np.int64), fillvalue=np.nan),
    lambda f: f(ONES.astype(np.int64), ONES.astype(np.int64), fillvalue=np.array(2.5)),
    lambda f: f(ONES > 0, ONES > 0),
    lambda f: f(ONES.astype(np.float16), ONES.astype(np.float16)),
    lambda f: f(ONES.astype(object), ONES.astype(object)),
    lambda f: f(np.zeros((0, 0)), np.zeros((0, 0))),
    # empty inputs: sums of no terms, or of fill values only
    lambda f: f(np.zeros((0, 3)), np.ones((3, 3)), fillvalue=1.5),
    lambda f: f(np.ones((3, 3)), np.zeros((0, 3)), "valid"),
    lambda f: f(np.zeros((0, 3)), np.ones((3, 3)), "valid"),
    lambda f: f(np.zeros((0, 3)), np.ones((3, 3)), "same", "wrap"),
    lambda f: f(np.ones((3, 3)), np.zeros((0, 3)), "full", "symm"),
    # Python lists, complex with valid-mode swap, fill ignored by wrap
    lambda f: f([[1, 2], [3, 4]], [[1j, 2]]),
    lambda f: f(np.ones((2, 3), np.complex64) * 1j, np.arange(35.0).reshape(5, 7), "valid"),
    lambda f: f(ONES, ONES, "same", "wrap", fillvalue=[1, 2]),
]


@pytest.mark.parametrize("call", range(len(ERROR_CALLS)))
@pytest.mark.parametrize("name", ["correlate2d", "convolve2d"])
def test_errors_and_edge_cases_as_scipy(call, name):
    ours, theirs = getattr(convcore, name), getattr(ss, name)
    assert _outcome(lambda: ERROR_CALLS[call](ours)) == _outcome(lambda: ERROR_CALLS[call](theirs))


def test_wrap_and_symm_of_an_empty_image_is_an_error():
    """SciPy crashes (SIGFPE) on these; convcore raises, naming the boundary."""
    for boundary in ("wrap", "symm"):
        with pytest.raises(ValueError, match=boundary):
            convcore.correlate2d(np.zeros((0, 3)), np.ones((3, 3)), "full", boundary)


def test_layouts_and_fresh_output():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((20, 30))
    k = rng.standard_normal((5, 4))
    expected = ss.correlate2d(a, k, "same", "symm")
    for view in (a[::2, ::3], np.asfortranarray(a), a[:, ::-1], a.astype(np.float64).T.T):
        np.testing.assert_allclose(convcore.correlate2d(view, k[::-1], "same", "symm"),
                                   ss.correlate2d(view, k[::-1], "same", "symm"), rtol=1e-12,
                                   atol=1e-12)
    out = convcore.correlate2d(a, k, "same", "symm")
    np.testing.assert_allclose(out, expected, rtol=1e-12, atol=1e-12)
    assert not np.shares_memory(out, a) and not np.shares_memory(out, k)


def test_every_isa_and_threads_bitwise(isa):  # `isa` (conftest) forces each ISA in turn
    rng = np.random.default_rng(4)
    a = rng.standard_normal((67, 45)).astype(np.float32)
    k = rng.standard_normal((3, 3)).astype(np.float32)
    previous_threads = convcore.get_num_threads()
    try:
        results = []
        for threads in (1, 2):
            convcore.set_num_threads(threads)
            for mode, boundary in itertools.product(MODES, BOUNDARIES):
                r = convcore.correlate2d(a, k, mode, boundary)
                check_against_scipy("correlate2d", convcore.correlate2d, ss.correlate2d,
                                    a, k, mode, boundary, 0)
                results.append(r)
        half = len(results) // 2
        for r1, r2 in zip(results[:half], results[half:]):
            assert np.array_equal(r1, r2)  # bitwise: 1 thread == 2 threads
    finally:
        convcore.set_num_threads(previous_threads)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 12), w=st.integers(1, 12), r=st.integers(1, 12), s=st.integers(1, 12),
    mode=st.sampled_from(MODES), boundary=st.sampled_from(BOUNDARIES),
    func=st.sampled_from(FUNCS), dtype=st.sampled_from([np.float32, np.float64, np.int16]),
    fillvalue=st.integers(-3, 3), seed=st.integers(0, 2**16),
)
def test_random_shapes_match_scipy(h, w, r, s, mode, boundary, func, dtype, fillvalue, seed):
    rng = np.random.default_rng(seed)
    a = _sample(rng, (h, w), dtype, False)
    k = _sample(rng, (r, s), dtype, False)
    if mode == "valid" and not ((h >= r and w >= s) or (h <= r and w <= s)):
        with pytest.raises(ValueError, match="valid"):
            func[1](a, k, mode, boundary, fillvalue)
        return
    check_against_scipy(func[0], func[1], func[2], a, k, mode, boundary, fillvalue)
