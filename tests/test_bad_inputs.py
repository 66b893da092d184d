"""The bad-input matrix: every public array function and layer, fed wrong ranks, wrong
dtypes, zero-size and mixed inputs, bad scalar parameters. Each case must raise the
documented exception (TypeError for dtypes and parameter types, ValueError for shapes and
values) with a message naming the argument — never crash, never answer silently. A batch
of 0 is valid: an empty result of the right shape. (conv2d's own matrix, with every
parameter, is tests/test_errors.py; random combinations are tests/test_fuzz.py.)"""

from __future__ import annotations

import numpy as np
import pytest

import convcore
from convcore import layers as L

F32 = np.float32


def x4(n=2, c=3, h=8, w=8, dtype=F32):
    return np.ones((n, c, h, w), dtype)


# name -> (call taking the input array, input of the right shape (float32))
ARRAY_OPS = {
    "conv2d": (lambda x: convcore.conv2d(x, np.ones((4, 3, 3, 3), F32)), x4()),
    "linear": (lambda x: convcore.linear(x, np.ones((5, 8), F32)), np.ones((2, 8), F32)),
    "locally_connected2d": (
        lambda x: convcore.locally_connected2d(x, np.ones((6, 6, 4, 3, 3, 3), F32)), x4()),
    "max_pool2d": (lambda x: convcore.max_pool2d(x, 2), x4()),
    "avg_pool2d": (lambda x: convcore.avg_pool2d(x, 2), x4()),
    "Conv2d": (L.Conv2d(3, 4, 3, seed=0), x4()),
    "Dense": (L.Dense(8, 5, seed=0), np.ones((2, 8), F32)),
    "LocallyConnected2d": (L.LocallyConnected2d(3, 4, 8, 3, seed=0), x4()),
    "MaxPool2d": (L.MaxPool2d(2), x4()),
    "AvgPool2d": (L.AvgPool2d(2), x4()),
    "Sequential": (L.Sequential(L.Conv2d(3, 4, 3, seed=0), L.ReLU(), L.MaxPool2d(2),
                                L.Flatten(), L.Dense(36, 2, seed=0)), x4()),
}


@pytest.mark.parametrize("name", list(ARRAY_OPS))
@pytest.mark.parametrize("dtype", [np.complex64, object, np.int32, np.float16, np.bool_])
def test_wrong_dtypes_are_type_errors(name, dtype):
    call, x = ARRAY_OPS[name]
    with pytest.raises(TypeError, match="dtype|float32|float64|input"):
        call(x.astype(dtype))


@pytest.mark.parametrize("name", ["conv2d", "linear", "locally_connected2d", "Conv2d",
                                  "Dense", "LocallyConnected2d"])
def test_float64_input_with_float32_weights_names_both(name):
    call, x = ARRAY_OPS[name]
    with pytest.raises(TypeError, match="float64.*float32|float32.*float64"):
        call(x.astype(np.float64))


@pytest.mark.parametrize("name", list(ARRAY_OPS))
@pytest.mark.parametrize("rank", [0, 1, 5])
def test_wrong_ranks_are_value_errors(name, rank):
    call, x = ARRAY_OPS[name]
    if name in ("linear", "Dense") and rank >= 1:
        pytest.skip("linear takes any leading dimensions, (in,) included")
    bad = np.ones((2,) * rank, F32) if rank != 5 else x[None]
    with pytest.raises(ValueError, match="input|shape|features"):
        call(bad)


@pytest.mark.parametrize("name", [n for n in ARRAY_OPS if n not in ("linear", "Dense")])
def test_zero_height_or_width_is_a_value_error(name):
    call, _ = ARRAY_OPS[name]
    with pytest.raises(ValueError):
        call(x4(h=0))
    with pytest.raises(ValueError):
        call(x4(w=0))


@pytest.mark.parametrize("name", list(ARRAY_OPS))
def test_empty_batch_gives_an_empty_result_of_the_right_shape(name):
    call, x = ARRAY_OPS[name]
    full = call(x)
    empty = call(x[:0])
    assert empty.shape == (0,) + full.shape[1:] and empty.dtype == full.dtype


@pytest.mark.parametrize("name", list(ARRAY_OPS))
def test_nan_and_inf_propagate(name):
    call, x = ARRAY_OPS[name]
    x = x.copy()
    x.flat[0] = np.nan
    y = call(x)
    assert np.isnan(y[0]).any() and not np.isnan(y[1:]).any()


@pytest.mark.parametrize("call,argument", [
    (lambda v: convcore.max_pool2d(x4(), v), "kernel_size"),
    (lambda v: convcore.avg_pool2d(x4(), 2, v), "stride"),
    (lambda v: convcore.max_pool2d(x4(), 3, 1, v), "padding"),
    (lambda v: convcore.locally_connected2d(x4(), np.ones((6, 6, 4, 3, 3, 3), F32), stride=v),
     "stride"),
    (lambda v: L.Conv2d(3, 4, v), "kernel_size"),
    (lambda v: L.Conv2d(v, 4, 3), "in_channels"),
    (lambda v: L.Dense(v, 4), "in_features"),
    (lambda v: L.LocallyConnected2d(3, v, 8, 3), "out_channels"),
    (lambda v: L.MaxPool2d(v), "kernel_size"),
])
@pytest.mark.parametrize("value,error", [(1.5, TypeError), (True, TypeError), ("2", TypeError),
                                         (0, ValueError), (-1, ValueError)])
def test_bad_scalar_parameters(call, argument, value, error):
    if argument == "padding" and value == 0:
        pytest.skip("padding 0 is valid")
    with pytest.raises(error, match=argument):
        call(value)


def test_activations_reject_complex_and_object():
    for fn in (convcore.relu, convcore.sigmoid, convcore.tanh, convcore.abs, convcore.square,
               convcore.leaky_relu):
        for dtype in (np.complex128, object):
            with pytest.raises(TypeError, match="dtype"):
                fn(np.ones(3, dtype))
    with pytest.raises(TypeError, match="a must be a real number"):
        convcore.sigmoid(np.ones(3), a="1")


def test_dense_matrix_too_large_is_refused_before_allocating():
    w = np.ones((64, 64, 3, 3), F32)
    with pytest.raises((MemoryError, ValueError), match="matrix|memory"):
        convcore.conv2d_dense_matrix(w, (64, 4096, 4096), padding=1)


def test_linear_out_features_overflow_is_refused():
    x = np.ones((2, 3), F32)
    w = np.broadcast_to(F32(1), (2**40, 3))  # no memory; the output would take 8 TiB
    with pytest.raises((MemoryError, ValueError)):
        convcore.linear(x, w)
