"""Gradients (convcore.*_backward, cross_entropy): against the float64 NumPy reference
(convcore.testing.reference_conv2d_backward) with bounds derived from the arithmetic,
against finite differences of convcore's own float64 forward, against PyTorch autograd in
float64 when torch is installed; every ISA table; bitwise equal on 1, 2 and 3 threads;
bad inputs."""

from __future__ import annotations

import numpy as np
import pytest

import convcore
import convcore.functional
from convcore.testing import conv_tolerance, reference_conv2d_backward, unit_roundoff

# (input shape, weight shape, conv2d keyword arguments): strides, padding modes, dilation,
# groups (depthwise, one channel), 1x1, "same" with an even kernel, unbatched input,
# output channels past the GEMM's row tile and panels, several pixel blocks per image,
# col2im in several bands.
CASES = [
    ((2, 3, 7, 6), (4, 3, 3, 3), dict(padding=1)),
    ((2, 4, 7, 8), (6, 2, 3, 2), dict(stride=(2, 1), padding=(1, 0), groups=2)),
    ((1, 3, 9, 9), (5, 3, 3, 3), dict(stride=2, padding=1)),
    ((2, 2, 9, 8), (3, 2, 2, 3), dict(dilation=2)),
    ((2, 4, 8, 8), (4, 1, 3, 3), dict(padding=1, groups=4)),
    ((2, 4, 9, 9), (8, 1, 3, 3), dict(stride=2, padding=1, groups=4)),
    ((3, 1, 10, 9), (8, 1, 5, 5), dict()),
    ((2, 1, 8, 7), (1, 1, 3, 3), dict(padding=1)),
    ((2, 5, 6, 6), (7, 5, 1, 1), dict()),
    ((1, 6, 8, 8), (4, 6, 1, 1), dict(stride=2)),
    ((1, 3, 7, 7), (4, 3, 3, 3), dict(padding="same", dilation=2)),
    ((1, 3, 8, 8), (4, 3, 4, 4), dict(padding="same")),
    ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding=2, padding_mode="reflect")),
    ((2, 3, 6, 7), (4, 3, 3, 3), dict(stride=2, padding=1, padding_mode="replicate")),
    ((2, 3, 6, 7), (4, 3, 3, 3), dict(padding=(2, 1), padding_mode="circular")),
    ((1, 2, 5, 5), (3, 2, 3, 3), dict(padding=3)),
    ((1, 2, 11, 10), (3, 2, 3, 3), dict(stride=3, padding=2, dilation=2)),
    ((3, 7, 5, 6), (33, 7, 3, 3), dict(padding=1)),
    ((1, 8, 6, 6), (150, 8, 3, 3), dict(padding=1)),
    ((1, 32, 16, 16), (4, 32, 3, 3), dict(padding=1)),
    ((1, 2, 20, 20), (3, 2, 3, 3), dict(padding=1)),
    ((1, 2, 100, 100), (3, 2, 3, 3), dict(stride=2, padding=1)),
    ((3, 7, 6), (4, 3, 3, 3), dict(padding=1, groups=1)),
    # Maps under 256 pixels: weight-gradient items of several whole images (the last one
    # short), the filters (at most the GEMM tile's width) on the tile's columns.
    ((9, 16, 8, 8), (32, 16, 3, 3), dict(padding=1, padding_mode="replicate")),
    ((5, 32, 7, 7), (20, 32, 3, 3), dict(padding=1)),
    ((6, 8, 4, 4), (31, 8, 1, 1), {}),
    ((7, 4, 6, 5), (24, 2, 3, 3), dict(padding=1, groups=2)),
]
CASE_IDS = [f"{x}-{w}-{kw}".replace(" ", "") for x, w, kw in CASES]


def _case(rng, xs, ws, dtype, kwargs):
    x = rng.standard_normal(xs).astype(dtype)
    if len(xs) == 3:
        ws = (ws[0], xs[0], *ws[2:])
    w = rng.standard_normal(ws).astype(dtype)
    y = convcore.conv2d(x, w, **kwargs)
    g = rng.standard_normal(y.shape).astype(dtype)
    return g, x, w


def _assert_within_bound(actual, ref, ref_abs, n_terms, dtype, name):
    bound = conv_tolerance(n_terms, dtype) * ref_abs + np.finfo(dtype).tiny * n_terms
    err = np.abs(actual.astype(np.float64) - ref)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), (
        f"{name}: |error| {err[worst]:.3g} > bound {bound[worst]:.3g} at {worst}")


def _check_against_reference(g, x, w, kwargs, dtype, mask=(True, True, True)):
    gi, gw, gb = convcore.conv2d_backward(g, x, w, output_mask=mask, **kwargs)
    ref = reference_conv2d_backward(g, x, w, **kwargs)
    ref_abs = reference_conv2d_backward(np.abs(g), np.abs(x), np.abs(w), **kwargs)
    # Terms per element: grad_weight and grad_bias sum N*Ho*Wo products, grad_input
    # K/groups*R*S per padded cell, folded from at most (R*S) padded cells per axis pair.
    gg = g if g.ndim == 4 else g[None]
    k, cg, r, s = w.shape
    groups = kwargs.get("groups", 1)
    n_w = gg.shape[0] * gg.shape[2] * gg.shape[3]
    n_i = (k // groups) * r * s * 9
    for got, want, want_abs, n, name, on in zip((gi, gw, gb), ref, ref_abs, (n_i, n_w, n_w),
                                                 ("grad_input", "grad_weight", "grad_bias"),
                                                 mask):
        if not on:
            assert got is None
            continue
        assert got.dtype == dtype and got.shape == want.shape, name
        _assert_within_bound(got, want, want_abs, n, dtype, name)


@pytest.mark.parametrize("xs,ws,kwargs", CASES, ids=CASE_IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_conv2d_backward_matches_reference(isa, rng, xs, ws, kwargs, dtype):
    g, x, w = _case(rng, xs, ws, dtype, kwargs)
    _check_against_reference(g, x, w, kwargs, dtype)


@pytest.mark.parametrize("mask", [(True, False, False), (False, True, False),
                                  (False, False, True), (False, True, True)])
def test_conv2d_backward_output_mask(rng, mask):
    g, x, w = _case(rng, (2, 3, 7, 6), (4, 3, 3, 3), np.float64, dict(padding=1))
    _check_against_reference(g, x, w, dict(padding=1), np.float64, mask)


def _fd_gradient(loss, z, h):
    """Central differences of loss at z, element by element (z restored)."""
    grad = np.empty(z.size)
    flat = z.reshape(-1)
    for i in range(z.size):
        keep = flat[i]
        flat[i] = keep + h
        up = loss()
        flat[i] = keep - h
        down = loss()
        flat[i] = keep
        grad[i] = (up - down) / (2 * h)
    return grad.reshape(z.shape)


FD_CASES = [CASES[i] for i in (0, 1, 2, 4, 5, 11, 12, 13, 14, 16)]


@pytest.mark.parametrize("xs,ws,kwargs", FD_CASES,
                         ids=[f"{x}-{w}-{kw}".replace(" ", "") for x, w, kw in FD_CASES])
def test_conv2d_backward_finite_differences(rng, xs, ws, kwargs):
    """L = <g, conv2d(x, w) + b> is linear in x, w and b, so a central difference with
    step h = 1 differs from the derivative only by rounding: each loss evaluation errs by
    at most gamma_{(C/g)RS + m} <|g|, conv2d(|x| + h, |w|)> (m = the output's size, the
    dot product), so the difference by twice that over 2h."""
    g, x, w = _case(rng, xs, ws, np.float64, kwargs)
    b = rng.standard_normal(w.shape[0])
    gi, gw, gb = convcore.conv2d_backward(g, x, w, **kwargs)

    def loss():
        return float(np.dot(g.ravel(), convcore.conv2d(x, w, b, **kwargs).ravel()))

    h = 1.0
    k, cg, r, s = w.shape
    n = cg * r * s + g.size + 2
    scale = np.dot(np.abs(g).ravel(), convcore.conv2d(np.abs(x) + h, np.abs(w), np.abs(b) + h,
                                                      **kwargs).ravel())
    bound = 2 * n * unit_roundoff(np.float64) * scale / (2 * h) + 1e-300
    for got, z, name in ((gi, x, "grad_input"), (gw, w, "grad_weight"), (gb, b, "grad_bias")):
        fd = _fd_gradient(loss, z, h)
        # The computed gradient's own rounding is of the same kind, far below the bound.
        assert np.max(np.abs(got - fd)) <= bound, name


@pytest.mark.parametrize("xs,ws,kwargs", [CASES[i] for i in (0, 1, 5, 6, 12, 13, 14, 16, 21,
                                                           -4, -3, -2, -1)])
def test_conv2d_backward_bitwise_over_1_2_3_threads(rng, xs, ws, kwargs):
    g, x, w = _case(rng, xs, ws, np.float32, kwargs)
    previous = convcore.get_num_threads()
    results = []
    try:
        for t in (1, 2, 3):
            convcore.set_num_threads(t)
            results.append(convcore.conv2d_backward(g, x, w, **kwargs))
    finally:
        convcore.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)


def test_conv2d_backward_many_chunks_bitwise_over_threads(rng):
    # 64 images of 784 pixels: 256 pixel blocks in 8 chunks (h of the shared list, smaller).
    g, x, w = _case(rng, (16, 1, 28, 28), (8, 1, 5, 5), np.float32, {})
    previous = convcore.get_num_threads()
    try:
        convcore.set_num_threads(1)
        one = convcore.conv2d_backward(g, x, w)
        convcore.set_num_threads(3)
        three = convcore.conv2d_backward(g, x, w)
    finally:
        convcore.set_num_threads(previous)
    for a, b in zip(one, three):
        np.testing.assert_array_equal(a, b)
    _check_against_reference(g, x, w, {}, np.float32)


def test_conv2d_backward_empty_batch():
    x = np.zeros((0, 3, 5, 5))
    w = np.ones((4, 3, 3, 3))
    gi, gw, gb = convcore.conv2d_backward(np.zeros((0, 4, 3, 3)), x, w)
    assert gi.shape == x.shape and not gw.any() and not gb.any() and gb.shape == (4,)


def test_conv2d_backward_workspace_is_bounded():
    # The same layer on ever larger images: the scratch does not grow (zero padding).
    sizes = [convcore.functional.conv2d_backward_workspace_bytes(
        (1, 64, h, h), (64, 64, 3, 3), padding=1) for h in (56, 224, 1024)]
    # (the pixel blocks' length follows the image: a few per cent either way)
    assert max(sizes) <= 16 << 20 and max(sizes) <= 1.5 * min(sizes)
    strided = [convcore.functional.conv2d_backward_workspace_bytes(
        (2, 32, h, h), (64, 32, 3, 3), stride=2, padding=1) for h in (56, 1024)]
    assert max(strided) <= 16 << 20 and max(strided) <= 1.5 * min(strided)


# ----------------------------------------------------------------------------- PyTorch


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("xs,ws,kwargs", CASES[:17] + CASES[22:],
                         ids=CASE_IDS[:17] + CASE_IDS[22:])
def test_conv2d_backward_matches_torch_float64(rng, xs, ws, kwargs):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    g, x, w = _case(rng, xs, ws, np.float64, kwargs)
    tx = torch.tensor(x, requires_grad=True)
    tw = torch.tensor(w, requires_grad=True)
    tb = torch.zeros(w.shape[0], dtype=torch.float64, requires_grad=True)
    mode = kwargs.get("padding_mode", "zeros")
    padding = kwargs.get("padding", 0)
    stride, dilation, groups = (kwargs.get(k, d) for k, d in
                                (("stride", 1), ("dilation", 1), ("groups", 1)))
    if mode == "zeros":
        y = F.conv2d(tx, tw, tb, stride, padding, dilation, groups)
    else:
        ph, pw = (padding, padding) if isinstance(padding, int) else padding
        y = F.conv2d(F.pad(tx, (pw, pw, ph, ph), mode=mode), tw, tb, stride, 0, dilation, groups)
    y.backward(torch.tensor(g))
    ours = convcore.conv2d_backward(g, x, w, **kwargs)
    ref_abs = reference_conv2d_backward(np.abs(g), np.abs(x), np.abs(w), **kwargs)
    gg = g if g.ndim == 4 else g[None]
    n = max(gg.shape[0] * gg.shape[2] * gg.shape[3], w.shape[0] * w.shape[2] * w.shape[3] * 9)
    for got, t, a, name in zip(ours, (tx.grad, tw.grad, tb.grad), ref_abs,
                               ("grad_input", "grad_weight", "grad_bias")):
        # Both sides round: twice the bound.
        _assert_within_bound(got, t.numpy(), 2 * a, n, np.float64, name)


# ----------------------------------------------------------------------------- bad inputs


def test_conv2d_backward_bad_inputs():
    x = np.zeros((2, 3, 6, 6), np.float32)
    w = np.zeros((4, 3, 3, 3), np.float32)
    g = np.zeros((2, 4, 4, 4), np.float32)
    with pytest.raises(ValueError, match=r"grad_output has shape \(2, 4, 5, 5\).*\(2, 4, 4, 4\)"):
        convcore.conv2d_backward(np.zeros((2, 4, 5, 5), np.float32), x, w)
    with pytest.raises(TypeError, match="grad_output is float64 but input is float32"):
        convcore.conv2d_backward(g.astype(np.float64), x, w)
    with pytest.raises(TypeError, match="but weight is float64"):
        convcore.conv2d_backward(g, x, w.astype(np.float64))
    with pytest.raises(TypeError, match="float32 or float64"):
        convcore.conv2d_backward(g.astype(np.int32), x, w)
    with pytest.raises(ValueError, match="groups=2 must divide"):
        convcore.conv2d_backward(g, x, w, groups=2)
    with pytest.raises(ValueError, match="output_mask"):
        convcore.conv2d_backward(g, x, w, output_mask=(True, False))
    with pytest.raises(TypeError, match="output_mask"):
        convcore.conv2d_backward(g, x, w, output_mask=(1, 0, 1))
    with pytest.raises(ValueError, match="padding_mode"):
        convcore.conv2d_backward(g, x, w, padding_mode="mirror")
    with pytest.raises(ValueError, match="'same' needs stride 1"):
        convcore.conv2d_backward(g, x, w, stride=2, padding="same")


# ----------------------------------------------------------------------------- linear


@pytest.mark.parametrize("xs,out", [((5, 7), 3), ((2, 3, 17), 33), ((1, 1), 1), ((40, 20), 70)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_linear_backward_matches_reference(isa, rng, xs, out, dtype):
    x = rng.standard_normal(xs).astype(dtype)
    w = rng.standard_normal((out, xs[-1])).astype(dtype)
    g = rng.standard_normal(xs[:-1] + (out,)).astype(dtype)
    gi, gw, gb = convcore.linear_backward(g, x, w)
    g2, x2 = g.reshape(-1, out).astype(np.float64), x.reshape(-1, xs[-1]).astype(np.float64)
    w64 = w.astype(np.float64)
    refs = (g2 @ w64, g2.T @ x2, g2.sum(0))
    absr = (np.abs(g2) @ np.abs(w64), np.abs(g2).T @ np.abs(x2), np.abs(g2).sum(0))
    for got, ref, a, n, name in zip((gi.reshape(-1, xs[-1]), gw, gb), refs, absr,
                                    (out, len(g2), len(g2)), ("input", "weight", "bias")):
        assert got.dtype == dtype
        _assert_within_bound(got, ref, a, n, dtype, name)


def test_linear_backward_finite_differences_and_mask(rng):
    x, w, b = rng.standard_normal((4, 6)), rng.standard_normal((5, 6)), rng.standard_normal(5)
    g = rng.standard_normal((4, 5))
    gi, gw, gb = convcore.linear_backward(g, x, w)

    def loss():
        return float(np.dot(g.ravel(), convcore.linear(x, w, b).ravel()))

    bound = 2 * (6 + g.size + 2) * unit_roundoff(np.float64) * float(
        np.abs(g).ravel() @ convcore.linear(np.abs(x) + 1, np.abs(w), np.abs(b) + 1).ravel())
    for got, z in ((gi, x), (gw, w), (gb, b)):
        assert np.max(np.abs(got - _fd_gradient(loss, z, 1.0))) <= bound
    none_i, only_w, none_b = convcore.linear_backward(g, x, w, output_mask=(False, True, False))
    assert none_i is None and none_b is None
    np.testing.assert_array_equal(only_w, gw)


def test_linear_backward_matches_torch_float64(rng):
    torch = pytest.importorskip("torch")
    x, w, g = rng.standard_normal((3, 4, 9)), rng.standard_normal((7, 9)), rng.standard_normal((3, 4, 7))
    tx, tw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    tb = torch.zeros(7, dtype=torch.float64, requires_grad=True)
    torch.nn.functional.linear(tx, tw, tb).backward(torch.tensor(g))
    for got, t in zip(convcore.linear_backward(g, x, w), (tx.grad, tw.grad, tb.grad)):
        np.testing.assert_allclose(got, t.numpy(), rtol=1e-12, atol=1e-12)


def test_linear_backward_bad_inputs():
    x, w = np.zeros((4, 6), np.float32), np.zeros((5, 6), np.float32)
    with pytest.raises(ValueError, match=r"grad_output has shape \(4, 4\).*\(4, 5\)"):
        convcore.linear_backward(np.zeros((4, 4), np.float32), x, w)
    with pytest.raises(TypeError, match="grad_output is float64 but input is float32"):
        convcore.linear_backward(np.zeros((4, 5)), x, w)
    with pytest.raises(ValueError, match="in_features=6"):
        convcore.linear_backward(np.zeros((4, 5), np.float32), np.zeros((4, 7), np.float32), w)


# ----------------------------------------------------------------------------- locally connected


def _lc_reference(g, x, w, stride, padding, dilation):
    """float64 gradients of locally_connected2d: each position's patch meets grad_output."""
    (sh, sw), (dh, dw) = stride, dilation
    ho, wo, k, c, r, s = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(w)
    for i in range(ho):
        for j in range(wo):
            rows = slice(i * sh, i * sh + dh * (r - 1) + 1, dh)
            cols = slice(j * sw, j * sw + dw * (s - 1) + 1, dw)
            gw[i, j] = np.einsum("nk,ncrs->kcrs", g[:, :, i, j], xp[:, :, rows, cols])
            gxp[:, :, rows, cols] += np.einsum("nk,kcrs->ncrs", g[:, :, i, j], w[i, j])
    h, wd = x.shape[2:]
    return gxp[:, :, padding:padding + h, padding:padding + wd], gw, g.sum(0)


@pytest.mark.parametrize("xs,k,rs,stride,padding,dilation", [
    ((2, 3, 6, 5), 4, (3, 3), (1, 1), 1, (1, 1)),
    ((3, 2, 7, 8), 5, (2, 3), (2, 1), 0, (1, 2)),
    ((1, 1, 5, 5), 1, (3, 3), (1, 1), 0, (1, 1)),
])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_locally_connected2d_backward(rng, xs, k, rs, stride, padding, dilation, dtype):
    x = rng.standard_normal(xs).astype(dtype)
    n, c, h, wd = xs
    ho = (h + 2 * padding - dilation[0] * (rs[0] - 1) - 1) // stride[0] + 1
    wo = (wd + 2 * padding - dilation[1] * (rs[1] - 1) - 1) // stride[1] + 1
    w = rng.standard_normal((ho, wo, k, c) + rs).astype(dtype)
    b = rng.standard_normal((k, ho, wo)).astype(dtype)
    g = rng.standard_normal((n, k, ho, wo)).astype(dtype)
    kw = dict(stride=stride, padding=padding, dilation=dilation)
    got = convcore.locally_connected2d_backward(g, x, w, **kw)
    f64 = [a.astype(np.float64) for a in (g, x, w)]
    refs = _lc_reference(*f64, stride, padding, dilation)
    absr = _lc_reference(*[np.abs(a) for a in f64], stride, padding, dilation)
    for a, ref, ra, nt in zip(got, refs, absr, (k * rs[0] * rs[1], n, n)):
        assert a.dtype == dtype
        _assert_within_bound(a, ref, ra, nt, dtype, "locally_connected2d_backward")
    if dtype == np.float64:  # finite differences of the forward (linear: step 1)
        def loss():
            return float(np.dot(g.ravel(), convcore.locally_connected2d(x, w, b, **kw).ravel()))

        scale = float(np.abs(g).ravel() @ convcore.locally_connected2d(
            np.abs(x) + 1, np.abs(w), np.abs(b) + 1, **kw).ravel())
        bound = 2 * (c * rs[0] * rs[1] + g.size + 2) * unit_roundoff(np.float64) * scale
        for a, z in zip(got, (x, w, b)):
            assert np.max(np.abs(a - _fd_gradient(loss, z, 1.0))) <= bound
    # unbatched, masked
    gi, gw, gb = convcore.locally_connected2d_backward(g[0], x[0], w, output_mask=(True, False, True),
                                                       **kw)
    assert gw is None and gi.shape == x.shape[1:]
    np.testing.assert_array_equal(gi, convcore.locally_connected2d_backward(g[:1], x[:1], w, **kw)[0][0])


@pytest.mark.parametrize("xs,k", [
    ((37, 3, 5, 6), 4),     # grad_input in blocks of 16 images: 16, 16, 5
    ((150, 64, 3, 3), 3),   # grad_weight: 64*9 + 3 values an image, blocks of 113 and 37
])
def test_locally_connected2d_backward_blocks_bitwise_over_threads(rng, xs, k):
    n, c, h, wd = xs
    x = rng.standard_normal(xs).astype(np.float32)
    w = rng.standard_normal((h, wd, k, c, 3, 3)).astype(np.float32)
    g = rng.standard_normal((n, k, h, wd)).astype(np.float32)
    previous = convcore.get_num_threads()
    results = []
    try:
        for t in (1, 2, 3):
            convcore.set_num_threads(t)
            results.append(convcore.locally_connected2d_backward(g, x, w, padding=1))
    finally:
        convcore.set_num_threads(previous)
    for other in results[1:]:
        for a, b in zip(results[0], other):
            np.testing.assert_array_equal(a, b)
    f64 = [a.astype(np.float64) for a in (g, x, w)]
    refs = _lc_reference(*f64, (1, 1), 1, (1, 1))
    absr = _lc_reference(*[np.abs(a) for a in f64], (1, 1), 1, (1, 1))
    for a, ref, ra, nt in zip(results[0], refs, absr, (k * 9, n, n)):
        _assert_within_bound(a, ref, ra, nt, np.float32, "locally_connected2d_backward")


def test_locally_connected2d_backward_empty_batch():
    x, w = np.zeros((0, 2, 4, 4)), np.ones((4, 4, 3, 2, 1, 1))
    gi, gw, gb = convcore.locally_connected2d_backward(np.zeros((0, 3, 4, 4)), x, w)
    assert gi.shape == x.shape and not np.any(gw) and not np.any(gb)


def test_locally_connected2d_backward_bad_inputs():
    x, w = np.zeros((2, 3, 6, 6)), np.zeros((4, 4, 5, 3, 3, 3))
    with pytest.raises(ValueError, match="grad_output has shape"):
        convcore.locally_connected2d_backward(np.zeros((2, 5, 4, 3)), x, w)
    with pytest.raises(TypeError, match="grad_output is float32 but input is float64"):
        convcore.locally_connected2d_backward(np.zeros((2, 5, 4, 4), np.float32), x, w)


# ----------------------------------------------------------------------------- pooling

POOLS = [
    dict(kernel_size=2),
    dict(kernel_size=3, stride=2, padding=1),
    dict(kernel_size=(3, 2), stride=(2, 1), padding=(1, 0), ceil_mode=True),
    dict(kernel_size=3, stride=2, ceil_mode=True),
]


@pytest.mark.parametrize("kw", POOLS + [dict(kernel_size=3, stride=1, padding=1, dilation=2),
                                        dict(kernel_size=2, stride=1),
                                        dict(kernel_size=(3, 2), stride=1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_backward(rng, kw, dtype):
    # Distinct values spaced 1e-3 apart: a step of 1e-6 moves no maximum, so the central
    # difference of the (locally linear) loss is exact up to the loss's rounding.
    shape = (2, 3, 7, 8)
    x = (rng.permutation(np.prod(shape)) * 1e-3).reshape(shape)
    y = convcore.max_pool2d(x, **kw)
    g = rng.standard_normal(y.shape)
    gi = convcore.max_pool2d_backward(g.astype(dtype), x.astype(dtype), **kw)
    assert gi.dtype == dtype and gi.shape == x.shape
    h = 1e-6

    def loss():
        return float(np.dot(g.ravel(), convcore.max_pool2d(x, **kw).ravel()))

    bound = 4 * g.size * unit_roundoff(np.float64) * float(np.abs(g).ravel() @ (np.abs(y).ravel() + h)) / h
    # float32: each gradient cell sums at most R*S/stride^2-ish outputs' gradients, rounded.
    fd = _fd_gradient(loss, x, h)
    bound32 = 0 if dtype == np.float64 else 9 * unit_roundoff(np.float32) * np.abs(fd).max()
    assert np.max(np.abs(gi - fd)) <= bound + bound32


@pytest.mark.parametrize("kernel", [(2, 2), (3, 2), (1, 3)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool2d_backward_stride1_ties(rng, kernel, dtype):
    """Stride 1 without padding (planes without NaN take a vectorised path): values from
    a small set, so overlapping windows tie and share winners, with infinities; a plane
    with a NaN in the batch (the per-window path). Against a loop over the windows that
    gives each window's gradient to its first maximal tap in row-major order (the NaN
    plane: the NaN), in output order. The gradients are small integers, so every sum is
    exact and the two must agree bit for bit."""
    R, S = kernel
    x = rng.integers(0, 3, (2, 3, 6, 9)).astype(dtype)
    x[0, 1, 2, 3] = np.inf
    x[1, 0, 0, 0] = -np.inf
    x[1, 2, 4, 5] = np.nan
    y = convcore.max_pool2d(x, kernel, stride=1)
    g = rng.integers(-4, 5, y.shape).astype(dtype)
    want = np.zeros_like(x)
    for n, c, i, j in np.ndindex(*y.shape):
        win = x[n, c, i:i + R, j:j + S].ravel()
        nan = np.flatnonzero(np.isnan(win))
        t = nan[-1] if nan.size else int(np.argmax(win))
        want[n, c, i + t // S, j + t % S] += g[n, c, i, j]
    gi = convcore.max_pool2d_backward(g, x, kernel, stride=1)
    np.testing.assert_array_equal(gi, want)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    torch.nn.functional.max_pool2d(tx, kernel, stride=1).backward(torch.tensor(g))
    np.testing.assert_array_equal(gi, tx.grad.numpy())


def test_max_pool2d_backward_ties_nan_and_unbatched():
    x = np.array([[[1.0, 3.0, 3.0], [3.0, 2.0, np.nan], [0.0, np.nan, 5.0]]])
    g = np.array([[[10.0, 20.0], [30.0, 40.0]]])
    gi = convcore.max_pool2d_backward(g, x, 2, stride=1)
    # windows: (0,0) ties 3,3,3 -> first (0,1); (0,1) has NaN -> the NaN; (1,0) NaN; (1,1)
    # two NaNs -> the last one, as PyTorch's CPU kernel.
    want = np.zeros_like(x)
    want[0, 0, 1] = 10.0
    want[0, 1, 2] = 20.0
    want[0, 2, 1] = 30.0 + 40.0
    np.testing.assert_array_equal(gi, want)
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x[None], requires_grad=True)
    torch.nn.functional.max_pool2d(tx, 2, stride=1).backward(torch.tensor(g[None]))
    np.testing.assert_array_equal(gi, tx.grad.numpy()[0])


@pytest.mark.parametrize("kw", POOLS + [dict(kernel_size=3, stride=2, padding=1,
                                             count_include_pad=False, ceil_mode=True)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_avg_pool2d_backward(rng, kw, dtype):
    x = rng.standard_normal((2, 3, 7, 8))
    y = convcore.avg_pool2d(x, **kw)
    g = rng.standard_normal(y.shape)
    gi = convcore.avg_pool2d_backward(g.astype(dtype), x.astype(dtype), **kw)

    def loss():
        return float(np.dot(g.ravel(), convcore.avg_pool2d(x, **kw).ravel()))

    # Linear in x: step 1, rounding only (loss: window sums of <= 9 terms, a dot product).
    scale = float(np.abs(g).ravel() @ convcore.avg_pool2d(np.abs(x) + 1, **kw).ravel())
    bound = 2 * (9 + g.size + 2) * unit_roundoff(np.float64) * scale
    ref = _fd_gradient(loss, x, 1.0)
    if dtype == np.float32:  # each cell: <= 9 quotients, summed in float32
        bound += 12 * unit_roundoff(np.float32) * np.abs(g).max() * 9
    assert gi.dtype == dtype and np.max(np.abs(gi - ref)) <= bound


@pytest.mark.parametrize("kw", POOLS)
def test_pool_backward_matches_torch_float64(rng, kw):
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    x = rng.standard_normal((2, 3, 7, 8))
    for ours, theirs in ((convcore.max_pool2d_backward, F.max_pool2d),
                         (convcore.avg_pool2d_backward, F.avg_pool2d)):
        tx = torch.tensor(x, requires_grad=True)
        y = theirs(tx, **kw)
        g = rng.standard_normal(tuple(y.shape))
        y.backward(torch.tensor(g))
        np.testing.assert_allclose(ours(g, x, **kw), tx.grad.numpy(), rtol=1e-14, atol=1e-14)


def test_pool_backward_bad_inputs():
    x = np.zeros((1, 2, 6, 6), np.float32)
    with pytest.raises(ValueError, match="grad_output has shape"):
        convcore.max_pool2d_backward(np.zeros((1, 2, 2, 2), np.float32), x, 2)
    with pytest.raises(TypeError, match="grad_output is float64 but input is float32"):
        convcore.avg_pool2d_backward(np.zeros((1, 2, 3, 3)), x, 2)
    with pytest.raises(ValueError, match="at most half"):
        convcore.max_pool2d_backward(np.zeros((1, 2, 3, 3), np.float32), x, 2, padding=2)


# ----------------------------------------------------------------------------- activations

ACTS = ["relu", "sigmoid", "tanh", "abs", "square", "leaky_relu", None]


def _act_obj(name):
    if name == "sigmoid":
        return type("Lecture", (), {"activation_spec": ("sigmoid", 0.08, 50.0)})()
    return name


@pytest.mark.parametrize("name", ACTS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_activation_backward_finite_differences(isa, rng, name, dtype):
    act = _act_obj(name)
    x = rng.standard_normal(300) * 3
    if name == "sigmoid":
        x = x * 20 + 50  # the lecture's 8-bit intensities around b = 50
    x = x[np.abs(x) > 1e-3]  # away from the kinks of relu, abs, leaky_relu
    g = rng.standard_normal(x.shape)
    gi = convcore.activation_backward(act, g.astype(dtype), x.astype(dtype))
    assert gi.dtype == dtype
    h = 1e-5
    f = (lambda z: convcore.conv2d(z.reshape(1, 1, 1, -1), np.ones((1, 1, 1, 1)),
                                   activation=act).ravel()) if name else (lambda z: z)
    fd = (f(x + h) - f(x - h)) / (2 * h) * g
    # Truncation h^2/6 |f'''| (|f'''| <= 2 for tanh, a^3/8 for sigmoid(a, b), 0 otherwise),
    # rounding of f (8 ulp) over 2h, and the float32 result's own rounding of f'.
    m3 = {"tanh": 2.0, "sigmoid": 0.08 ** 3 / 8}.get(name, 0.0)
    fy = np.abs(f(x)) + np.abs(x)
    bound = np.abs(g) * (h * h / 6 * m3 + 8 * unit_roundoff(np.float64) * fy / h)
    # The result's own rounding: f' from y = f(x) (8 ulp off) — tanh 1 - y^2 moves by
    # 2|y| dy, sigmoid a*y*(1-y) by a|1-2y| dy — then 4 roundings of the products.
    u, y = unit_roundoff(dtype), np.abs(f(x))
    slope = {"tanh": 2 * y, "sigmoid": 0.08 * np.abs(1 - 2 * y)}.get(name, 0.0)
    bound += np.abs(g) * slope * 8 * u * y + 4 * u * np.abs(fd)
    assert np.all(np.abs(gi - fd) <= bound + 1e-300), name


def test_activation_backward_at_the_kinks_as_torch():
    x = np.array([-1.0, -0.0, 0.0, 2.0, np.nan])
    g = np.full(5, 3.0)
    ab = convcore.activation_backward
    np.testing.assert_array_equal(ab("relu", g, x), [0, 0, 0, 3, 3])
    np.testing.assert_array_equal(ab("leaky_relu", g, x), [0.03, 0.03, 0.03, 3, 0.03])
    np.testing.assert_array_equal(ab("abs", g, x), [-3, 0, 0, 3, 0])
    torch = pytest.importorskip("torch")
    F = torch.nn.functional
    for name, fn in (("relu", F.relu), ("leaky_relu", F.leaky_relu), ("abs", torch.abs),
                     ("square", torch.square), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid)):
        tx = torch.tensor(x, requires_grad=True)
        fn(tx).backward(torch.tensor(g))
        np.testing.assert_allclose(ab(name, g, x), tx.grad.numpy(), rtol=1e-15, atol=0,
                                   err_msg=name)


def test_activation_backward_bad_inputs():
    with pytest.raises(ValueError, match="grad_output has shape"):
        convcore.activation_backward("relu", np.zeros(3), np.zeros(4))
    with pytest.raises(TypeError, match="grad_output is float32 but input is float64"):
        convcore.activation_backward("relu", np.zeros(3, np.float32), np.zeros(3))
    with pytest.raises(ValueError, match="activation must be one of"):
        convcore.activation_backward("gelu", np.zeros(3), np.zeros(3))


# ----------------------------------------------------------------------------- cross-entropy


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_and_gradient(rng, reduction, dtype):
    z = (rng.standard_normal((6, 5)) * 4).astype(dtype)
    t = rng.integers(0, 5, 6)
    loss = convcore.cross_entropy(z, t, reduction)
    grad = convcore.cross_entropy_backward(z, t, reduction)
    z64 = z.astype(np.float64)
    lse = np.log(np.exp(z64 - z64.max(1, keepdims=True)).sum(1)) + z64.max(1)
    per = lse - z64[np.arange(6), t]
    want = {"mean": per.mean(), "sum": per.sum(), "none": per}[reduction]
    if reduction == "none":
        assert loss.dtype == dtype and loss.shape == (6,)
    else:
        assert isinstance(loss, float)
    np.testing.assert_allclose(loss, want, rtol=8 * unit_roundoff(dtype) * 5, atol=0)
    assert grad.dtype == dtype and grad.shape == z.shape

    def total():
        out = convcore.cross_entropy(z64, t, reduction)
        return float(np.sum(out))

    h = 1e-5
    fd = _fd_gradient(total, z64, h)
    # Truncation: |d^3 lse| <= 1 per coordinate; rounding of the loss (classes + 3 ulp).
    bound = h * h / 6 + 2 * 8 * unit_roundoff(np.float64) * np.abs(per).sum() / h
    bound += 4 * unit_roundoff(dtype)
    assert np.max(np.abs(grad - fd)) <= bound


def test_cross_entropy_matches_torch_float64(rng):
    torch = pytest.importorskip("torch")
    z, t = rng.standard_normal((7, 4)) * 3, rng.integers(0, 4, 7)
    for reduction in ("mean", "sum"):
        tz = torch.tensor(z, requires_grad=True)
        loss = torch.nn.functional.cross_entropy(tz, torch.tensor(t), reduction=reduction)
        loss.backward()
        assert abs(convcore.cross_entropy(z, t, reduction) - loss.item()) <= 1e-13 * abs(loss.item())
        np.testing.assert_allclose(convcore.cross_entropy_backward(z, t, reduction),
                                   tz.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_cross_entropy_bad_inputs():
    z = np.zeros((3, 4))
    with pytest.raises(ValueError, match=r"target\[1\] = 4 is not a class index"):
        convcore.cross_entropy(z, np.array([0, 4, 1]))
    with pytest.raises(TypeError, match="integer class indices"):
        convcore.cross_entropy(z, np.array([0.0, 1.0, 1.0]))
    with pytest.raises(ValueError, match="target must have shape"):
        convcore.cross_entropy_backward(z, np.array([0, 1]))
    with pytest.raises(ValueError, match="reduction must be one of"):
        convcore.cross_entropy(z, np.array([0, 1, 2]), "avg")
    with pytest.raises(ValueError, match="logits must be"):
        convcore.cross_entropy(np.zeros(4), np.array([0]))


@pytest.mark.parametrize("ws,groups", [((3, 1, 3, 3), 3), ((5, 1, 3, 3), 1)])
def test_conv2d_backward_weight_rows_with_an_infinite_input(rng, ws, groups):
    # The row dot products (few filters per input channel) read zero-padded rows: an
    # infinity there would meet the padding's zeros (0 * inf = NaN), so such rows take
    # the exact path, whose taps never leave the image: finite weights stay finite.
    c = ws[1] * groups
    x = rng.standard_normal((2, c, 9, 8))
    x[1, 0, 0, 0] = np.inf
    w = rng.standard_normal(ws)
    g = rng.standard_normal(convcore.conv2d(np.zeros_like(x), w, padding=1, groups=groups).shape)
    gw = convcore.conv2d_backward(g, x, w, padding=1, groups=groups,
                                  output_mask=(False, True, False))[1]
    want = reference_conv2d_backward(g, x, w, padding=1, groups=groups)[1]
    np.testing.assert_array_equal(np.isfinite(gw), np.isfinite(want))
    fin = np.isfinite(want)
    assert np.isfinite(gw).sum() > 0 and np.allclose(gw[fin], want[fin], rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(np.sign(gw[~fin]), np.sign(want[~fin]))
