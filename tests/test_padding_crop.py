"""Padding wider than the kernel reaches (ops/crop.cpp): output rows and columns whose
window reads only zero padding are act(bias), computed by no kernel; the rest runs as the
inner problem (the padding cut back). Checked on every algorithm that takes the geometry
and every ISA: against the float64 reference within the a-priori bound, the border bitwise
act(0 + bias) (what every kernel's epilogue gives an all-zero window), bitwise across
thread counts; non-finite weights keep the whole computation (0 * inf is NaN)."""

import numpy as np
import pytest

import convcore
from convcore import layers, testing

GEOMETRIES = [
    # (input C, H, W), kernel, conv2d arguments
    ((16, 28, 28), (3, 3), dict(padding=4)),                       # pad 4 > 2: 2 rows each side
    ((8, 12, 9), (1, 1), dict(padding=2)),                         # 1x1, pad 2
    ((8, 13, 11), (1, 1), dict(padding=3, stride=2)),              # crop limited by the stride
    ((6, 15, 14), (3, 3), dict(padding=(5, 0), stride=(2, 1))),    # rows only
    ((6, 10, 17), (5, 3), dict(padding=(2, 6), dilation=(1, 2))),  # columns only, dilated
    ((5, 9, 9), (3, 3), dict(padding=7, stride=3)),                # stride 3
    ((16, 7, 7), (3, 3), dict(padding=3, groups=16)),              # depthwise
    ((4, 3, 3), (3, 3), dict(padding=9, stride=4)),                # every output all-zero
]


def run(algorithm, x, w, b, activation, kw):
    return convcore.conv2d(x, w, b, algorithm=algorithm, activation=activation, **kw)


def supports(algorithm, w, kw):
    if algorithm != "winograd":
        return True
    return (w.shape[2:] == (3, 3) and kw.get("stride", 1) == 1 and kw.get("dilation", 1) == 1
            and w.shape[1] >= 4)


def border_mask(y, x, w, kw):
    """Outputs whose window reads only padding: where the reference on an all-ones input
    with all-ones weights is 0."""
    ones = testing.reference_conv2d(np.ones_like(x[:1], dtype=np.float64),
                                    np.ones_like(w, dtype=np.float64), **kw)
    return np.broadcast_to(ones == 0, y.shape)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("algorithm", ["auto", "direct", "im2col", "winograd"])
@pytest.mark.parametrize("case", GEOMETRIES, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_cropped_border(rng, isa, dtype, algorithm, case):
    (c, h, wd), (r, s), kw = case
    groups = kw.get("groups", 1)
    x = rng.standard_normal((2, c, h, wd)).astype(dtype)
    w = rng.standard_normal((c if groups > 1 else 7, c // groups, r, s)).astype(dtype)
    b = rng.standard_normal(w.shape[0]).astype(dtype)
    if not supports(algorithm, w, kw):
        return
    for activation in (None, "relu", "sigmoid"):
        y = testing.bitwise_over_threads(lambda: run(algorithm, x, w, b, activation, kw))
        testing.check_conv2d(y, x, w, b, activation=activation, **kw)
        mask = border_mask(y, x, w, kw)
        fill = np.broadcast_to(convcore.conv2d(np.zeros((1, c, 1, 1), dtype), w[..., :1, :1], b,
                                               groups=groups, activation=activation,
                                               algorithm="direct"), y.shape)
        if activation != "sigmoid" or algorithm == "direct":
            np.testing.assert_array_equal(y[mask], fill[mask])


def test_layer_matches_functional(rng):
    x = rng.standard_normal((2, 16, 28, 28)).astype(np.float32)
    layer = layers.Conv2d(16, 32, 3, padding=5, activation="relu", seed=0).eval()
    y = layer(x)
    np.testing.assert_array_equal(y, convcore.conv2d(x, layer.weight, layer.bias, padding=5,
                                                      activation="relu"))
    testing.check_conv2d(y, x, layer.weight, layer.bias, padding=5, activation="relu")


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_weights_reach_the_border(rng, bad):
    # 0 * inf = NaN: with a non-finite weight every padded window is computed, as IEEE says
    x = rng.standard_normal((1, 4, 6, 6)).astype(np.float32)
    w = rng.standard_normal((3, 4, 3, 3)).astype(np.float32)
    w[1, 2, 0, 0] = bad
    y = convcore.conv2d(x, w, padding=4)
    ref = testing.reference_conv2d(x, w, padding=4)
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    assert np.isnan(y[0, 1, 0, 0]) and np.isfinite(y[0, 0]).all()
