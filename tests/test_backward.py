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


@pytest.mark.parametrize("xs,ws,kwargs", [CASES[i] for i in (0, 1, 5, 6, 12, 13, 14, 16, 21)])
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
