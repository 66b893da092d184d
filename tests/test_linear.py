"""``convcore.linear`` (and ``_core.LinearOp``) against a float64 NumPy reference, within
the a-priori rounding-error bound of ``convcore.testing``: every ISA, both dtypes, 1 and 2
threads (bitwise equal), sizes around the GEMM tiles (6x16 / 6x8 AVX2, 14x32 / 14x16 AVX-512), every activation, any
leading dimensions, and the error cases of ``torch.nn.functional.linear``.
"""

import numpy as np
import pytest

import convcore
from convcore import _core, testing

DTYPES = [np.float32, np.float64]
ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def check_linear(y, x, w, b=None, activation=None):
    """y == activation(x @ w.T + b) within |y - r| <= g(in) * (|x| @ |w|.T + |b|) (see
    ``testing.conv_tolerance``: each output is a sum of in_features exact products)."""
    x64, w64 = np.asarray(x, np.float64), np.asarray(w, np.float64)
    ref = x64 @ w64.T
    ref_abs = np.abs(x64) @ np.abs(w64).T
    if b is not None:
        ref = ref + np.asarray(b, np.float64)
        ref_abs = ref_abs + np.abs(np.asarray(b, np.float64))
    assert y.dtype == x.dtype and y.shape == x.shape[:-1] + (w.shape[0],)
    testing.assert_conv_close(y, ref, ref_abs, w.shape[1], x.dtype, activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m", [1, 5, 6, 7, 13])
@pytest.mark.parametrize("n", [1, 7, 8, 9, 15, 16, 17, 33])
@pytest.mark.parametrize("k", [1, 2, 17, 31])
def test_tile_edges(rng, isa, dtype, m, n, k):
    x, w, b = randn(rng, (m, k), dtype), randn(rng, (n, k), dtype), randn(rng, (n,), dtype)
    check_linear(convcore.linear(x, w, b), x, w, b)
    check_linear(convcore.linear(x, w), x, w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_activations(rng, isa, dtype, activation):
    x, w, b = randn(rng, (11, 19), dtype), randn(rng, (21, 19), dtype), randn(rng, (21,), dtype)
    check_linear(convcore.linear(x, w, b, activation=activation), x, w, b, activation)


class Sigmoid:
    activation_spec = ("sigmoid", 0.08, 50.0)


def test_activation_object(rng):
    x, w = rng.uniform(0, 255, (4, 9)), rng.uniform(-1, 1, (3, 9))
    check_linear(convcore.linear(x, w, activation=Sigmoid()), x, w, None, Sigmoid())


@pytest.mark.parametrize("dtype", DTYPES)
def test_threads_bitwise(rng, isa, dtype):
    # Several MC row blocks and KC blocks (k > 256), columns split over the threads.
    x, w, b = randn(rng, (300, 600), dtype), randn(rng, (70, 600), dtype), randn(rng, (70,), dtype)
    results = []
    previous = convcore.get_num_threads()
    try:
        for t in (1, 2):
            convcore.set_num_threads(t)
            results.append(convcore.linear(x, w, b, activation="tanh"))
    finally:
        convcore.set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])
    check_linear(results[0], x, w, b, "tanh")


def test_leading_dimensions_and_1d(rng):
    w, b = randn(rng, (5, 4), np.float64), randn(rng, (5,), np.float64)
    x = randn(rng, (2, 3, 4), np.float64)
    y = convcore.linear(x, w, b)
    assert y.shape == (2, 3, 5)
    check_linear(y, x, w, b)
    v = randn(rng, (4,), np.float64)
    check_linear(convcore.linear(v, w, b), v, w, b)


def test_empty_sizes():
    w = np.ones((3, 4), np.float32)
    assert convcore.linear(np.ones((0, 4), np.float32), w).shape == (0, 3)
    assert convcore.linear(np.ones((2, 4), np.float32), np.ones((0, 4), np.float32)).shape == (2, 0)
    # in_features == 0: an empty sum, the output is the bias (as PyTorch).
    y = convcore.linear(np.ones((2, 0), np.float32), np.ones((3, 0), np.float32),
                        np.array([1, -2, 3], np.float32), activation="relu")
    np.testing.assert_array_equal(y, [[1, 0, 3], [1, 0, 3]])


def test_odd_layouts(rng):
    x = randn(rng, (9, 20), np.float32)[:, ::2]          # strided view
    w = np.asfortranarray(randn(rng, (7, 10), np.float32))
    b = randn(rng, (14,), np.float32)[::2]
    check_linear(convcore.linear(x, w, b), x, w, b)


def test_nan_inf_propagate():
    x = np.array([[1.0, np.nan], [np.inf, 1.0], [1.0, 2.0]], np.float32)
    w = np.array([[1.0, 1.0], [0.0, 1.0]], np.float32)
    y = convcore.linear(x, w)
    assert np.isnan(y[0]).all() and y[1, 0] == np.inf and np.isnan(y[1, 1])
    assert y[2].tolist() == [3.0, 2.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_op_packs_once(rng, isa, dtype):
    w, b = randn(rng, (10, 23), dtype), randn(rng, (10,), dtype)
    op = _core.LinearOp(w, b, "relu", 1.0, 0.0)
    assert (op.in_features, op.out_features) == (23, 10)
    w_copy = w.copy()
    w[:] = 0  # the op keeps its own packed copy
    for m in (1, 7):
        x = randn(rng, (m, 23), dtype)
        y = np.empty((m, 10), dtype)
        op.run(x, y)
        check_linear(y, x, w_copy, b, "relu")


def test_errors():
    x, w = np.ones((2, 3), np.float32), np.ones((4, 3), np.float32)
    with pytest.raises(TypeError, match="weight"):
        convcore.linear(x, w.astype(np.float64))
    with pytest.raises(TypeError, match="bias"):
        convcore.linear(x, w, np.ones(4, np.float64))
    with pytest.raises(TypeError, match="input"):
        convcore.linear(x.astype(np.int32), w)
    with pytest.raises(ValueError, match="in_features"):
        convcore.linear(np.ones((2, 5), np.float32), w)
    with pytest.raises(ValueError, match="weight"):
        convcore.linear(x, np.ones((4, 3, 1), np.float32))
    with pytest.raises(ValueError, match="bias"):
        convcore.linear(x, w, np.ones(3, np.float32))
    with pytest.raises(ValueError, match="activation"):
        convcore.linear(x, w, activation="no_such")
    with pytest.raises(ValueError, match="input"):
        convcore.linear(np.float32(1.0), w)
    with pytest.raises(ValueError, match="input"):
        _core.LinearOp(w, None, "none", 1.0, 0.0).run(np.ones((2, 5), np.float32),
                                                       np.empty((2, 4), np.float32))
