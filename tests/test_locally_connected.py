"""locally_connected2d and LocallyConnected2d against a float64 NumPy reference.

Every ISA's kernels (both paths: the 8-image rows kernel and the dot-product kernel for
the remaining images), tile edges in K (12/8/4 filter tiles) and N (blocks of 8), odd
sizes, strides, dilation, padding, fused activations, 1 and 2 threads (bitwise equal),
NaN propagation, and errors. Tolerance: |y - r| <= gamma(n) * sum|x*w| (n = C*R*S + 1
terms per output, any summation order).
"""

import contextlib
import zlib

import numpy as np
import pytest

import convcore
from convcore import _core
from convcore import layers as L

ISAS = _core.isas_supported()


@contextlib.contextmanager
def forced(isa=None, threads=None):
    """Run with this ISA and thread count, restoring both after (shared by the pooling
    tests; the suite's conftest fixtures 'isa' and 'threads' do the same per test)."""
    old_isa, old_threads = _core.get_isa(), convcore.get_num_threads()
    try:
        if isa is not None:
            _core.set_isa(isa)
        if threads is not None:
            convcore.set_num_threads(threads)
        yield
    finally:
        _core.set_isa(old_isa)
        convcore.set_num_threads(old_threads)


def gamma(n, dtype):
    """gamma_n = n*u/(1 - n*u) at the dtype's unit roundoff, plus the float64 reference's."""
    u = np.finfo(dtype).eps / 2
    return n * u / (1 - n * u) + n * 2.0**-53 / (1 - n * 2.0**-53)


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


def assert_within(actual, ref, ref_abs, n_terms, dtype):
    bound = gamma(n_terms + 2, dtype) * ref_abs + (n_terms + 2) * np.finfo(dtype).tiny
    err = np.abs(actual.astype(np.float64) - ref)
    assert actual.dtype == dtype
    assert actual.shape == ref.shape
    assert np.all(err <= bound), f"max error {err.max():.3e}, worst ratio {np.max(err / bound):.3g}"


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
]


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[:7])))
def test_matches_reference(isa_name, dtype, case):
    n, c, h, w, k, r, s, stride, padding, dilation = case
    rng = np.random.default_rng(zlib.crc32(repr(case).encode()))
    st = stride if isinstance(stride, tuple) else (stride, stride)
    pd = padding if isinstance(padding, tuple) else (padding, padding)
    dl = dilation if isinstance(dilation, tuple) else (dilation, dilation)
    pads = (pd[0], pd[0], pd[1], pd[1])
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt, b = lc_weights(rng, x.shape, k, r, s, st, pads, dl, dtype)
    ref, ref_abs = reference_lc(x, wt, b, st, pads, dl)
    with forced(isa_name):
        y = convcore.locally_connected2d(x, wt, b, stride, padding, dilation)
    assert_within(y, ref, ref_abs, c * r * s, dtype)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("n", [1, 8, 11])
def test_no_bias_unbatched_and_empty(isa_name, n):
    rng = np.random.default_rng(n)
    x = rng.standard_normal((n, 3, 6, 6)).astype(np.float32)
    wt, _ = lc_weights(rng, x.shape, 5, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32, False)
    with forced(isa_name):
        y = convcore.locally_connected2d(x, wt, None, 1, 1)
        y0 = convcore.locally_connected2d(x[0], wt, None, 1, 1)
        empty = convcore.locally_connected2d(x[:0], wt, None, 1, 1)
    ref, ref_abs = reference_lc(x, wt, None, pads=(1, 1, 1, 1))
    assert_within(y, ref, ref_abs, 27, np.float32)
    # One image takes the dot-product kernel whatever n is: within the bound, not bitwise.
    assert_within(y0, ref[0], ref_abs[0], 27, np.float32)
    assert empty.shape == (0, 5, 6, 6)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("activation", ["relu", "tanh", "abs", "square", L.Sigmoid(0.5, 1.0),
                                        L.LeakyReLU(0.2)], ids=str)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_activation(isa_name, activation, dtype):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((9, 2, 5, 5)).astype(dtype)
    wt, b = lc_weights(rng, x.shape, 13, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), dtype)
    with forced(isa_name):
        plain = convcore.locally_connected2d(x, wt, b, padding=1)
        fused = convcore.locally_connected2d(x, wt, b, padding=1, activation=activation)
        name, a, bb = convcore.functional.activation_spec(activation)
        separate = convcore.functional._activate(plain, name, a, bb)
    # Same pre-activation sums (the activation is applied to the register tile): the fused
    # result equals the activation of the plain one to within the activation's own rounding.
    np.testing.assert_allclose(fused, separate, rtol=16 * np.finfo(dtype).eps,
                               atol=16 * np.finfo(dtype).eps)


@pytest.mark.parametrize("isa_name", ISAS)
def test_threads_bitwise(isa_name):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((11, 4, 9, 10)).astype(np.float32)
    wt, b = lc_weights(rng, x.shape, 14, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32)
    with forced(isa_name, threads=1):
        one = convcore.locally_connected2d(x, wt, b, padding=1)
    with forced(isa_name, threads=2):
        two = convcore.locally_connected2d(x, wt, b, padding=1)
    np.testing.assert_array_equal(one, two)


@pytest.mark.parametrize("isa_name", ISAS)
def test_tied_weights_equal_conv2d(isa_name):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((9, 3, 8, 7)).astype(np.float64)
    w = rng.standard_normal((6, 3, 3, 3))
    b = rng.standard_normal(6)
    with forced(isa_name):
        conv = convcore.conv2d(x, w, b, stride=(1, 2), padding=1)
        ho, wo = conv.shape[2:]
        lc = convcore.locally_connected2d(
            x, np.broadcast_to(w, (ho, wo) + w.shape), np.broadcast_to(b[:, None, None], (6, ho, wo)),
            stride=(1, 2), padding=1)
    _, ref_abs = reference_lc(x, np.broadcast_to(w, (ho, wo) + w.shape),
                              np.broadcast_to(b[:, None, None], (6, ho, wo)), (1, 2), (1, 1, 1, 1))
    assert np.all(np.abs(lc - conv) <= 2 * gamma(29, np.float64) * ref_abs)


@pytest.mark.parametrize("isa_name", ISAS)
@pytest.mark.parametrize("n, bad", [(8, 3), (9, 8), (3, 0), (16, 15)])
def test_nan_stays_in_its_image_and_window(isa_name, n, bad):
    """A NaN pixel poisons exactly the outputs whose window holds it, in its own image:
    never a neighbouring image sharing a vector, nor a filter sharing a tile."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((n, 2, 6, 6)).astype(np.float32)
    x[bad, 1, 2, 3] = np.nan
    wt, b = lc_weights(rng, x.shape, 13, 3, 3, (1, 1), (1, 1, 1, 1), (1, 1), np.float32)
    with forced(isa_name):
        y = convcore.locally_connected2d(x, wt, b, padding=1, activation="relu")
    expect = np.zeros(y.shape, bool)
    expect[bad, :, 1:4, 2:5] = True  # outputs (i, j) with |i - 2| <= 1, |j - 3| <= 1
    np.testing.assert_array_equal(np.isnan(y), expect)


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
    ref, ref_abs = reference_lc(x, layer.weight, layer.bias, pads=(1, 1, 1, 1))
    assert_within(layer(x), ref, ref_abs, 27, np.float32)
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
    with pytest.raises(ValueError, match="read-only"):
        layer.weight[0] = 1
    with pytest.raises(ValueError, match="larger than the padded input"):
        L.LocallyConnected2d(1, 1, (2, 2), 5)
    with pytest.raises(ValueError, match="in_channels"):
        L.LocallyConnected2d(0, 1, (4, 4), 3)
