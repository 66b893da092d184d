"""The dense (fully connected) and locally connected equivalents of a convolution:
conv2d_dense_matrix, Conv2d.to_dense, Conv2d.to_locally_connected, and the parameter
counts that make the lecture's point (conv: independent of the image size; locally
connected: grows with the output; dense: grows with the square of the pixel count)."""

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.testing import conv_tolerance


# (C, H, W, K, R, S, stride, padding, dilation, groups)
CASES = [
    (1, 5, 5, 1, 3, 3, 1, 0, 1, 1),
    (3, 6, 7, 4, 3, 3, 1, 1, 1, 1),
    (4, 7, 6, 6, 3, 2, (2, 1), (1, 0), 1, 2),
    (2, 8, 8, 3, 2, 2, 1, "same", 2, 1),
    (4, 5, 9, 4, 3, 3, 2, 1, (1, 2), 4),
]


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_matrix_columns_are_impulse_responses(case, dtype):
    """Column j of M is the convolution of the j-th unit image: exact, each output is one
    product w*1."""
    c, h, w, k, r, s, stride, padding, dilation, groups = case
    wt = np.random.default_rng(0).standard_normal((k, c // groups, r, s)).astype(dtype)
    m = convcore.conv2d_dense_matrix(wt, (c, h, w), stride, padding, dilation, groups)
    eye = np.eye(c * h * w, dtype=dtype).reshape(-1, c, h, w)
    responses = convcore.conv2d(eye, wt, None, stride, padding, dilation, groups)
    assert m.dtype == dtype
    assert m.shape == (responses[0].size, c * h * w)
    np.testing.assert_array_equal(m, responses.reshape(c * h * w, -1).T)


@pytest.mark.parametrize("case", CASES, ids=str)
def test_matrix_times_image_is_the_convolution(case):
    c, h, w, k, r, s, stride, padding, dilation, groups = case
    rng = np.random.default_rng(1)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(np.float32)
    x = rng.standard_normal((c, h, w)).astype(np.float32)
    m = convcore.conv2d_dense_matrix(wt, (c, h, w), stride, padding, dilation, groups)
    ref = m.astype(np.float64) @ x.ravel().astype(np.float64)
    ref_abs = np.abs(m.astype(np.float64)) @ np.abs(x.ravel().astype(np.float64))
    y = convcore.conv2d(x, wt, None, stride, padding, dilation, groups).ravel()
    assert np.all(np.abs(y - ref) <= conv_tolerance(c // groups * r * s, np.float32) * ref_abs)


def test_refuses_before_allocating():
    w = np.zeros((64, 3, 3, 3), np.float32)
    # (64*4096*4096) x (3*4096*4096) floats: ~10^15 bytes.
    with pytest.raises(MemoryError, match="GiB"):
        convcore.conv2d_dense_matrix(w, (3, 4096, 4096), padding=1)


def test_bad_arguments():
    w = np.zeros((4, 2, 3, 3), np.float32)
    with pytest.raises(ValueError, match="groups"):
        convcore.conv2d_dense_matrix(w, (3, 8, 8))
    with pytest.raises(ValueError, match=r"\(C, H, W\)"):
        convcore.conv2d_dense_matrix(w, (2, 8))
    with pytest.raises(ValueError, match="larger than the padded input"):
        convcore.conv2d_dense_matrix(w, (2, 2, 8))
    with pytest.raises(ValueError, match="weight must be"):
        convcore.conv2d_dense_matrix(w[0], (2, 8, 8))
    with pytest.raises(TypeError, match="float32 or float64"):
        convcore.conv2d_dense_matrix(w.astype(int), (2, 8, 8))
    with pytest.raises(ValueError, match="input_shape"):
        convcore.conv2d_dense_matrix(w, (2, 0, 8))


@pytest.mark.parametrize("case", CASES, ids=str)
@pytest.mark.parametrize("activation", [None, "relu", L.Sigmoid(0.5, 0.2)], ids=str)
def test_layer_equivalents_give_the_same_outputs(case, activation):
    c, h, w, k, r, s, stride, padding, dilation, groups = case
    conv = L.Conv2d(c, k, (r, s), stride, padding, dilation, groups, activation=activation,
                    dtype=np.float64, seed=3)
    x = np.random.default_rng(4).standard_normal((9, c, h, w))
    y = conv(x)
    dense = conv.to_dense((c, h, w))
    lc = conv.to_locally_connected((h, w))
    assert isinstance(dense, L.Dense) and isinstance(lc, L.LocallyConnected2d)
    # Float64 sums of at most C*R*S terms in different orders, through a 1-Lipschitz (or
    # a/4) activation: within gamma(n) * sum|x*w| each; the inputs are O(1).
    n = c * r * s
    tol = 2 * conv_tolerance(n, np.float64) * (n + 2) * 8
    np.testing.assert_allclose(dense(x.reshape(9, -1)), y.reshape(9, -1), rtol=0, atol=tol)
    np.testing.assert_allclose(lc(x), y, rtol=0, atol=tol)


def test_parameter_counts_tell_the_story():
    for size in (8, 16, 32):
        conv = L.Conv2d(3, 16, 3, padding=1, seed=0)
        ho = wo = size
        assert conv.num_params == 16 * 3 * 3 * 3 + 16 == 448  # whatever the image size
        lc = conv.to_locally_connected(size)
        assert lc.num_params == ho * wo * (3 * 3 * 3 * 16 + 16)
        if size <= 16:
            dense = conv.to_dense((3, size, size))
            assert dense.num_params == 3 * size * size * 16 * ho * wo + 16 * ho * wo
    grouped = L.Conv2d(8, 4, (3, 2), groups=2, bias=False)
    assert grouped.num_params == 4 * 8 // 2 * 3 * 2


def test_conversion_errors():
    conv = L.Conv2d(2, 3, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="zeros"):
        conv.to_dense((2, 6, 6))
    with pytest.raises(ValueError, match="zeros"):
        conv.to_locally_connected((6, 6))
    conv = L.Conv2d(2, 3, 3)
    with pytest.raises(ValueError, match="channels"):
        conv.to_dense((3, 6, 6))
    with pytest.raises(MemoryError):
        conv.to_dense((2, 40000, 40000))
