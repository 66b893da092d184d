"""locally_connected2d and LocallyConnected2d against a float64 NumPy reference.

Every ISA's kernels (the conftest's ``isa`` fixture; both paths: the 8-image rows kernel
and the dot-product kernel for the remaining images), tile edges in K (12/8/4 filter
tiles) and N (blocks of 8), odd sizes, strides, dilation, padding, fused activations,
1 and 2 threads (bitwise equal), NaN propagation, and errors. Tolerance: the a-priori
bound of ``convcore.testing.assert_conv_close`` (|y - r| <= gamma(n) * sum|x*w| for the
n = C*R*S (+1 bias) products of each output, through the activation).
"""

import zlib

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.testing import assert_conv_close, bitwise_over_threads, conv_tolerance



def reference_lc(x, w, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1)):
    """(float64 result, float64 sum|x*w| + |b|) of a locally connected layer."""
    x = np.asarray(x, np.float64)
    w = np.asarray(w, np.float64)
    ho, wo, k, c, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), pads[:2], pads[2:]))
    sh, sw = stride
    dh, dw = dilation
    y = np.zeros((x.shape[0], k, ho, wo))
    ya = np.zeros_like(y)
    with np.errstate(invalid="ignore"):
        for i in range(ho):
            for j in range(wo):
                patch = xp[:, :, i * sh:i * sh + dh * (r - 1) + 1:dh, j * sw:j * sw + dw * (s - 1) + 1:dw]
                y[:, :, i, j] = np.einsum("ncrs,kcrs->nk", patch, w[i, j])
                ya[:, :, i, j] = np.einsum("ncrs,kcrs->nk", np.abs(patch), np.abs(w[i, j]))
    if b is not None:
        y += np.asarray(b, np.float64)
        ya += np.abs(np.asarray(b, np.float64))
    return y, ya


def check_lc(y, x, wt, b, stride=(1, 1), pads=(0, 0, 0, 0), dilation=(1, 1), activation=None):
    """y against the float64 reference within the rounding bound (convcore.testing)."""
    ref, ref_abs = reference_lc(x, wt, b, stride, pads, dilation)
    assert y.dtype == x.dtype
    n_terms = wt.shape[3] * wt.shape[4] * wt.shape[5] + (b is not None)
    assert_conv_close(y, ref, ref_abs, n_terms, x.dtype, activation)


def lc_weights(rng, x_shape, k, r, s, stride, pads, dilation, dtype, bias=True):
    _, c, h, w = x_shape
    ho = (h + pads[0] + pads[1] - dilation[0] * (r - 1) - 1) // stride[0] + 1
    wo = (w + pads[2] + pads[3] - dilation[1] * (s - 1) - 1) // stride[1] + 1
    wt = rng.standard_normal((ho, wo, k, c, r, s)).astype(dtype)
    b = rng.standard_normal((k, ho, wo)).astype(dtype) if bias else None
    return wt, b


# (N, C, H, W, K, R, S, stride, padding, dilation): N covers the 8-image blocks and the
# remainder; K covers 12/8/4 tiles and their edges.
CASES = [
    (1, 1, 5, 5, 1, 3, 3, 1, 1, 1),
    (3, 2, 6, 7, 7, 3, 2, 1, (1, 0), 1),
    (8, 3, 7, 9, 12, 3, 3, 1, 1, 1),
    (8, 2, 9, 8, 13, 2, 3, (2, 1), 1, (1, 2)),
    (9, 4, 6, 6, 20, 3, 3, 1, 0, 1),
    (17, 1, 5, 8, 25, 1, 1, 1, 0, 1),
    (16, 5, 8, 7, 33, 3, 3, 2, 1, 1),
    (4, 9, 5, 5, 8, 5, 5, 1, 2, 1),
    (2, 3, 11, 4, 9, 3, 1, 3, (0, 1), (2, 1)),
    (8, 2, 5, 6, 3, 3, 3, 1, 1, 1),
    (10, 3, 4, 9, 1, 2, 2, 1, 0, 1),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_matches_reference(isa, dtype, case):
    n, c, h, w, k, r, s, stride, padding, dilation = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    st = stride if isinstance(stride, tuple) else (stride, stride)
    pd = padding if isinstance(padding, tuple) else (padding, padding)
    dl = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    pads = (pd[0], pd[0], pd[1], pd[1])
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt, b = lc_weights(rng, x.shape, k, r, s, st, pads, dl, dtype)
    y = convcore.locally_connected2d(x, wt, b, stride, padding, dilation)
    check_lc(y, x, wt, b, st, pads, dl)


@pytest.mark.parametrize("n", [1, 8, 11])
def test_no_bias_unbatched_and_empty(isa, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 3, 6, 6)).astype(np.float32)
    wt, _ = lc_weights(rng, x.shape, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32, False)
    check_lc(convcore.locally_connected2d(x, wt, None, 1, 1), x, wt, None, pads=(1, 1, 1, 1))
    # One image takes the dot-product kernel whatever n is: within the bound, not bitwise.
    y0 = convcore.locally_connected2d(x[0], wt, None, 1, 1)
    check_lc(y0[None], x[:1], wt, None, pads=(1, 1, 1, 1))
    assert convcore.locally_connected2d(x[:0], wt, None, 1, 1).shape == (0, 5, 6, 6)


@pytest.mark.parametrize("activation", ["relu", "tanh", "abs", "square", L.Sigmoid(0.5, 1.0),
                                        L.LeakyReLU(0.2)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_activation(isa, activation, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((9, 2, 5, 5)).astype(dtype)
    wt, b = lc_weights(rng, x.shape, 13, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), dtype)
    y = convcore.locally_connected2d(x, wt, b, padding=1, activation=activation)
    check_lc(y, x, wt, b, pads=(1, 1, 1, 1), activation=activation)


def test_threads_bitwise(isa):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((11, 4, 9, 10)).astype(np.float32)
    wt, b = lc_weights(rng, x.shape, 14, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32)
    bitwise_over_threads(lambda: convcore.locally_connected2d(x, wt, b, padding=1))


def test_tied_weights_equal_conv2d(isa):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3, 8, 7)).astype(np.float64)
    w = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    conv = convcore.conv2d(x, w, b, stride=(1, 2), padding=1)
    ho, wo = conv.shape[2:]
    wl, bl = np.broadcast_to(w, (ho, wo) + w.shape), np.broadcast_to(b[:, None, None], (6, ho, wo))
    lc = convcore.locally_connected2d(x, wl, bl, stride=(1, 2), padding=1)
    _, ref_abs = reference_lc(x, wl, bl, (1, 2), (1, 1, 1, 1))
    # Both within gamma(n) * sum|x*w| of the exact value, so within twice that of each other.
    assert np.all(np.abs(lc - conv) <= 2 * conv_tolerance(28, np.float64) * ref_abs)


@pytest.mark.parametrize("n, bad", [(8, 3), (9, 8), (3, 0), (16, 15)])
def test_nan_stays_in_its_image_and_window(isa, n, bad):
    """A NaN pixel poisons exactly the outputs whose window holds it, in its own image:
    never a neighbouring image sharing a vector, nor a filter sharing a tile."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, 2, 6, 6)).astype(np.float32)
    x[bad, 1, 2, 3] = np.nan
    wt, b = lc_weights(rng, x.shape, 13, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32)
    y = convcore.locally_connected2d(x, wt, b, padding=1, activation="relu")
    expect = np.zeros(y.shape, bool)
    expect[bad, :, 1:4, 2:5] = True  # outputs (i, j) with |i - 2| <= 1, |j - 3| <= 1
    np.testing.assert_array_equal(np.isnan(y), expect)


def test_layouts_give_the_same_result(isa):
    """Non-contiguous, Fortran-order and read-only arrays give the contiguous result."""
    rng = np.random.default_rng(9)
    x = rng.standard_normal((9, 3, 7, 12)).astype(np.float32)
    wt, b = lc_weights(rng, (9, 3, 7, 6), 4, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32)
    expect = convcore.locally_connected2d(np.ascontiguousarray(x[:, :, :, ::2]), wt, b, padding=1)
    ro = np.asfortranarray(wt)
    ro.flags.writeable = False
    np.testing.assert_array_equal(convcore.locally_connected2d(x[:, :, :, ::2], ro, b, padding=1),
                                  expect)


def test_errors():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 3, 6, 6)).astype(np.float32)
    wt, b = lc_weights(rng, x.shape, 4, 3, 3, (1, 1), (0, 0, 0, 0), (1, 1), np.float32)
    lc = convcore.locally_connected2d
    with pytest.raises(ValueError, match="Ho, Wo, K, C, R, S"):
        lc(x, wt[0], b)
    with pytest.raises(ValueError, match=r"\(4, 4\) output"):
        lc(x, wt, b, padding=1)
    with pytest.raises(ValueError, match="C=3"):
        lc(x[:, :2], wt, b)
    with pytest.raises(ValueError, match="bias must have shape"):
        lc(x, wt, b[0])
    with pytest.raises(TypeError, match="float64"):
        lc(x.astype(np.float64), wt, b)
    with pytest.raises(TypeError, match="float32 or float64"):
        lc(x.astype(np.int32), wt, b)
    with pytest.raises(ValueError, match="larger than the padded input"):
        lc(x[:, :, :2], wt, b)
    with pytest.raises(ValueError, match="stride"):
        lc(x, wt, b, stride=0)
    with pytest.raises(ValueError, match="padding"):
        lc(x, wt, b, padding=-1)
    with pytest.raises(ValueError, match="input must be"):
        lc(x[0, 0], wt, b)


# (N, K): the dot kernel's image tiles and remainders, blocks of 8 images, filter tiles.
@pytest.mark.parametrize("n, k", [(1, 1), (2, 7), (3, 9), (4, 16), (5, 24), (8, 25), (9, 33),
                                  (17, 8)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_layer_matches_reference(isa, n, k, dtype):
    layer = L.LocallyConnected2d(3, k, (5, 7), (3, 2), stride=(1, 2), padding=1,
                                 dilation=(2, 1), activation=L.LeakyReLU(0.1), dtype=dtype,
                                 seed=n)
    x = np.random.default_rng(k).standard_normal((n, 3, 5, 7)).astype(dtype)
    check_lc(layer(x), x, layer.weight, layer.bias, (1, 2), (1, 1, 1, 1), (2, 1),
             activation=layer.activation)
    layer.bias = None
    check_lc(bitwise_over_threads(lambda: layer(x)), x, layer.weight, None, (1, 2),
             (1, 1, 1, 1), (2, 1), activation=layer.activation)


def test_layer():
    layer = L.LocallyConnected2d(3, 5, (8, 7), 3, padding=1, seed=1)
    assert layer.weight.shape == (8, 7, 5, 3, 3, 3)
    assert layer.bias.shape == (5, 8, 7)
    assert layer.num_params == 8 * 7 * (3 * 3 * 3 * 5 + 5)
    assert layer.output_shape((3, 8, 7)) == (5, 8, 7)
    assert layer.output_shape((4, 3, 8, 7)) == (4, 5, 8, 7)
    assert layer.macs((4, 3, 8, 7)) == 4 * 5 * 8 * 7 * 27
    assert repr(layer) == ("LocallyConnected2d(3, 5, input_size=(8, 7), kernel_size=(3, 3), "
                           "stride=(1, 1), padding=(1, 1))")
    x = np.random.default_rng(2).standard_normal((4, 3, 8, 7)).astype(np.float32)
    check_lc(layer(x), x, layer.weight, layer.bias, pads=(1, 1, 1, 1))
    new = np.ones_like(layer.weight)
    layer.weight = new
    layer.bias = None
    np.testing.assert_allclose(layer(x)[:, 0], layer(x)[:, 4])
    assert layer.num_params == 8 * 7 * 5 * 27
    with pytest.raises(ValueError, match=r"\(3, 8, 7\)"):
        layer(x[:, :, :7])
    with pytest.raises(ValueError, match="must have shape"):
        layer.weight = new[0]
    with pytest.raises(TypeError, match="dtype"):
        layer.weight = new.astype(np.float64)
    layer.eval()  # parameters are read-only in eval mode (writable in training mode)
    with pytest.raises(ValueError, match="read-only"):
        layer.weight[0] = 1
    layer.train()
    with pytest.raises(ValueError, match="larger than the padded input"):
        L.LocallyConnected2d(1, 1, (2, 2), 5)
    with pytest.raises(ValueError, match="in_channels"):
        L.LocallyConnected2d(0, 1, (4, 4), 3)
