"""``algorithm="winograd"`` (F(4x4, 3x3), F(2x2, 3x3) for outputs of at most 14x14)
against the float64 reference: float32 within Winograd's measured bound
(``convcore.testing.winograd_tolerance``), float64 to 1e-12 relative; every ISA, tile
edges (sizes that are not multiples of the tile, 1x1 images with padding, channels
around the vector widths and the GEMM tile), padding modes, activations, groups, bias,
threads; the switch ``set_winograd`` / ``CONVCORE_WINOGRAD``; the errors.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import convcore
from convcore import _core, testing

DTYPES = [np.float32, np.float64]


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def check_winograd(y, x, w, b=None, activation=None, **params):
    """y against the reference: within Winograd's bound for its dtype, and for float64
    also to 1e-12 of the largest output (the bound's own test of exactness)."""
    dtype = x.dtype
    assert y.dtype == dtype
    ref = testing.reference_conv2d(x, w, b, **params)
    scale = testing.reference_winograd_scale(x, w, b, **params)
    groups = params.get("groups", 1)
    e = testing.winograd_tolerance(x.shape[-3] // groups, dtype) * scale
    got = y.astype(np.float64)
    spec = testing._activation_spec(activation)
    bound = testing._activation_bound(ref, e, spec, testing.unit_roundoff(dtype))
    err = np.abs(got - testing.apply_activation(ref, spec))
    worst = np.unravel_index(np.argmax(err / bound), err.shape)
    assert (err <= bound).all(), (
        f"{int((err > bound).sum())} outside the bound; worst at {worst}: "
        f"error {err[worst]:.3e}, bound {bound[worst]:.3e}")
    if dtype == np.float64 and activation is None:
        assert np.abs(got - ref).max() <= 1e-12 * max(np.abs(ref).max(), 1e-300)


def run(x, w, b=None, **params):
    y = convcore.conv2d(x, w, b, algorithm="winograd", **params)
    check_winograd(y, x, w, b, **params)
    return y


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (3, 3), (4, 4), (5, 7), (6, 6), (9, 13),
                                  (14, 14), (15, 14), (16, 17), (29, 31)])
def test_image_sizes(rng, isa, dtype, size):
    # Tile edges: outputs not a multiple of the tile (4, or 2 up to 14x14), 1x1 images
    # whose every tap but one reads padding, both tile sizes on either side of 14.
    h, w_ = size
    x = randn(rng, (2, 5, h, w_), dtype)
    run(x, randn(rng, (3, 5, 3, 3), dtype), randn(rng, (3,), dtype), padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [4, 7, 8, 9, 15, 16, 17, 31, 33])
def test_channels_around_vector_widths(rng, isa, dtype, channels):
    # Input channels are the GEMM's reduction; output channels its MR-row panels (6 or 14).
    x = randn(rng, (1, channels, 10, 19), dtype)
    run(x, randn(rng, (channels, channels, 3, 3), dtype), randn(rng, (channels,), dtype),
        padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 5, 6, 13, 14, 15, 28, 29])
def test_output_channels_around_the_gemm_tile(rng, isa, dtype, k):
    x = randn(rng, (1, 6, 21, 18), dtype)
    run(x, randn(rng, (k, 6, 3, 3), dtype), randn(rng, (k,), dtype), padding=1)


@pytest.mark.parametrize("tiles_wide", [15, 16, 17, 32, 33])
def test_rows_of_tiles_around_the_vector_and_panel_widths(rng, isa, tiles_wide):
    # 16 tiles per zmm, 32 per GEMM panel: tile rows of 15-17 and 32-33 tiles, and blocks
    # of tiles that end inside a tile row.
    x = randn(rng, (1, 4, 6, 4 * tiles_wide - 1), np.float32)
    run(x, randn(rng, (3, 4, 3, 3), np.float32), padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding", [3, 5, (1, 6)])
@pytest.mark.parametrize("width", [1, 7, 62, 67, 134])
def test_band_edges(rng, isa, dtype, padding, width):
    # The input's gather and the output's scatter (winograd_pack / winograd_unpack):
    # padding wider than a tile (several edge elements, rows of only padding), rows of 1 to
    # more than two vectors of tiles of either dtype, widths that end inside a tile.
    x = randn(rng, (1, 4, 5, width), dtype)
    run(x, randn(rng, (2, 4, 3, 3), dtype), randn(rng, (2,), dtype), padding=padding)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("padding_mode", ["zeros", "reflect", "replicate", "circular"])
@pytest.mark.parametrize("padding", [0, 1, 2, (2, 0), "same", "valid"])
def test_padding(rng, isa, dtype, padding_mode, padding):
    x = randn(rng, (1, 4, 11, 9), dtype)
    run(x, randn(rng, (5, 4, 3, 3), dtype), randn(rng, (5,), dtype), padding=padding,
        padding_mode=padding_mode)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "abs", "square",
                                        "leaky_relu", convcore.layers.Sigmoid(a=0.5, b=1.0)])
def test_activation(rng, isa, dtype, activation):
    x = randn(rng, (2, 8, 13, 18), dtype)
    run(x, randn(rng, (9, 8, 3, 3), dtype), randn(rng, (9,), dtype), padding=1,
        activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups, c, k", [(2, 8, 6), (3, 12, 9), (4, 16, 4), (2, 10, 30)])
def test_groups(rng, isa, dtype, groups, c, k):
    x = randn(rng, (2, c, 17, 12), dtype)
    run(x, randn(rng, (k, c // groups, 3, 3), dtype), randn(rng, (k,), dtype), padding=1,
        groups=groups)


@pytest.mark.parametrize("dtype", DTYPES)
def test_unbatched_and_empty_batch(rng, dtype):
    x = randn(rng, (6, 9, 9), dtype)
    w = randn(rng, (4, 6, 3, 3), dtype)
    y = convcore.conv2d(x, w, padding=1, algorithm="winograd")
    check_winograd(y[None], x[None], w, padding=1)
    empty = convcore.conv2d(np.zeros((0, 6, 9, 9), dtype), w, padding=1, algorithm="winograd")
    assert empty.shape == (0, 4, 9, 9)


@pytest.mark.parametrize("dtype", DTYPES)
def test_real_network_shapes(rng, dtype):
    # The 3x3 stride-1 layers of the shared list that are small enough for a unit test
    # (a: 56x56 with 64 channels, F(4x4); d: 14x14 with 256, F(2x2); 7x7 with 512).
    for name in ["resnet18-layer1.0.conv1", "resnet18-layer3.0.conv2",
                 "resnet18-layer4.0.conv2"]:
        s = testing.shape(name)
        x = randn(rng, s.input_shape, dtype)
        w = randn(rng, s.weight_shape, dtype)
        y = convcore.conv2d(x, w, **s.conv2d_kwargs, algorithm="winograd")
        check_winograd(y, x, w, **s.conv2d_kwargs)
        if dtype == np.float32:
            ref = testing.reference_conv2d(x, w, **s.conv2d_kwargs)
            assert np.linalg.norm(y - ref) <= 1e-4 * np.linalg.norm(ref)


def test_bitwise_over_threads(rng):
    x = randn(rng, (3, 16, 30, 22), np.float32)
    w = randn(rng, (20, 16, 3, 3), np.float32)
    testing.bitwise_over_threads(
        lambda: convcore.conv2d(x, w, padding=1, algorithm="winograd", activation="relu"))
    # Few tiles, so the tasks split the output channels (F(2x2), one image)
    x = randn(rng, (1, 32, 7, 7), np.float32)
    w = randn(rng, (64, 32, 3, 3), np.float32)
    testing.bitwise_over_threads(lambda: convcore.conv2d(x, w, padding=1, algorithm="winograd"))


@pytest.mark.parametrize("name", ["resnet18-layer1.0.conv1", "resnet18-layer3.0.conv2",
                                  "resnet18-layer4.0.conv2"])
def test_bitwise_over_threads_on_the_tuned_splits(rng, name):
    # The split is chosen per thread count (blocks of one or two tile rows for a, the output
    # channels in two or three row blocks for d and the 7x7 layer, each repeating the input
    # transform): 1, 2 and 3 threads give the same bits.
    s = testing.shape(name)
    x = randn(rng, s.input_shape, np.float32)
    w = randn(rng, s.weight_shape, np.float32)
    b = randn(rng, (s.k,), np.float32)
    previous = convcore.get_num_threads()
    try:
        results = []
        for threads in (1, 2, 3):
            convcore.set_num_threads(threads)
            results.append(convcore.conv2d(x, w, b, **s.conv2d_kwargs, algorithm="winograd",
                                           activation="relu"))
    finally:
        convcore.set_num_threads(previous)
    for y in results[1:]:
        np.testing.assert_array_equal(y, results[0])


@pytest.mark.parametrize("dtype", DTYPES)
def test_bitwise_across_isas(rng, dtype):
    # Transforms share one body, the GEMM kernels one order of accumulation: every kernel
    # table gives the same bits (before a non-exact activation).
    x = randn(rng, (2, 9, 23, 17), dtype)
    w = randn(rng, (15, 9, 3, 3), dtype)
    b = randn(rng, (15,), dtype)
    previous = _core.get_isa()
    results = {}
    try:
        for isa in _core.isas_supported():
            _core.set_isa(isa)
            results[isa] = convcore.conv2d(x, w, b, padding=1, algorithm="winograd",
                                           activation="relu")
    finally:
        _core.set_isa(previous)
    first = next(iter(results.values()))
    for isa, y in results.items():
        np.testing.assert_array_equal(y, first, err_msg=isa)


def test_layer_packs_once_and_matches(rng):
    layer = convcore.layers.Conv2d(16, 16, 3, padding=1, seed=0).eval()
    x = randn(rng, (8, 16, 20, 20), np.float32)
    assert _core.choose_algorithm((8, 16, 20, 20), (16, 3, 3, 1), (1, 1), (1, 1, 1, 1),
                                  (1, 1), "auto") == "winograd"
    check_winograd(layer(x), x, layer.weight, layer.bias, padding=1)


def test_nan_and_inf_propagate(rng):
    x = randn(rng, (1, 4, 8, 8), np.float32)
    x[0, 1, 3, 3] = np.nan
    x[0, 2, 0, 7] = np.inf
    w = randn(rng, (2, 4, 3, 3), np.float32)
    y = convcore.conv2d(x, w, padding=1, algorithm="winograd")
    ref = testing.reference_conv2d(x, w, padding=1)
    # Every output whose window holds a NaN or Inf is not finite; the transforms mix a
    # tile's inputs, so outputs of the same tile may be NaN too (never a finite wrong value).
    assert not np.isfinite(y[~np.isfinite(ref)]).any()
    finite = np.isfinite(y)
    np.testing.assert_allclose(y[finite], ref[finite], rtol=1e-4, atol=1e-4)


# --------------------------------------------------------------------------
# The switch, auto, errors
# --------------------------------------------------------------------------

def choose(c=64, hw=56, k=64, r=3, stride=1, dilation=1, groups=1):
    return _core.choose_algorithm((1, c, hw, hw), (k, r, r, groups), (stride, stride),
                                  (1, 1, 1, 1), (dilation, dilation), "auto")


def test_auto_and_the_switch():
    previous = convcore.get_winograd()
    try:
        convcore.set_winograd(True)
        assert convcore.get_winograd() is True
        assert choose() == "winograd"
        assert choose(c=8, k=8) != "winograd"  # few channels: direct measured faster
        assert choose(c=256, hw=14, k=256) == "winograd"  # anchor d
        assert choose(hw=7) != "winograd"  # few pixels: the weight transform does not pay
        assert choose(c=512, hw=7, k=512) != "winograd"
        assert choose(stride=2) != "winograd"
        assert choose(r=5) != "winograd"
        assert choose(dilation=2) != "winograd"
        convcore.set_winograd(False)
        assert convcore.get_winograd() is False
        assert choose() in ("direct", "im2col")
        # asked for by name, it still runs
        x = np.ones((1, 4, 5, 5), np.float32)
        w = np.ones((1, 4, 3, 3), np.float32)
        assert convcore.conv2d(x, w, padding=1, algorithm="winograd")[0, 0, 2, 2] == 36
    finally:
        convcore.set_winograd(previous)
    with pytest.raises(TypeError, match="enabled"):
        convcore.set_winograd("no")


def test_auto_never_for_float64(rng):
    # auto's choice for float64 stays within the summation bound (conv_tolerance).
    shape = ((1, 64, 56, 56), (64, 3, 3, 1), (1, 1), (1, 1, 1, 1), (1, 1), "auto")
    assert _core.choose_algorithm(*shape) == "winograd"  # float32
    chosen = _core.choose_algorithm(*shape, 8)
    assert chosen in ("direct", "im2col")
    x = randn(rng, (1, 64, 56, 56), np.float64)
    w = randn(rng, (64, 64, 3, 3), np.float64)
    y = convcore.conv2d(x, w, padding=1)
    testing.check_conv2d(y, x, w, padding=1)
    np.testing.assert_array_equal(y, convcore.conv2d(x, w, padding=1, algorithm=chosen))


def test_environment_switch():
    code = "import convcore; print(convcore.get_winograd())"
    env = dict(os.environ, CONVCORE_WINOGRAD="0")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
    env["CONVCORE_WINOGRAD"] = "1"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("w_shape, params, message", [
    ((4, 4, 5, 5), {}, "needs a 3x3 kernel, got 5x5"),
    ((4, 4, 3, 1), {}, "needs a 3x3 kernel, got 3x1"),
    ((4, 4, 3, 3), {"stride": 2}, r"needs stride 1, got \(2, 2\)"),
    ((4, 4, 3, 3), {"stride": (1, 2)}, r"needs stride 1, got \(1, 2\)"),
    ((4, 4, 3, 3), {"dilation": 2}, r"needs dilation 1, got \(2, 2\)"),
    ((4, 3, 3, 3), {}, r"at least 4 input channels per group \(C/groups\), got 3"),
    ((4, 2, 3, 3), {"groups": 2}, r"at least 4 input channels per group \(C/groups\), got 2"),
])
def test_unsupported_geometry_names_the_constraint(w_shape, params, message):
    c = w_shape[1] * params.get("groups", 1)
    x = np.zeros((1, c, 12, 12), np.float32)
    with pytest.raises(ValueError, match=message):
        convcore.conv2d(x, np.zeros(w_shape, np.float32), algorithm="winograd", **params)


def test_layer_backward_never_uses_winograd(rng):
    # Training: the forward may run Winograd (auto), the backward passes run direct/im2col.
    layer = convcore.layers.Conv2d(16, 8, 3, padding=1, seed=1, dtype=np.float64)
    x = randn(rng, (2, 16, 9, 9), np.float64)
    y = layer(x)
    g = randn(rng, y.shape, np.float64)
    gx = layer.backward(g)
    rx, rw, _ = testing.reference_conv2d_backward(g, x, layer.weight, padding=1)
    np.testing.assert_allclose(gx, rx, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(layer.parameters()[0].grad, rw, rtol=1e-12, atol=1e-12)


def test_workspace_is_bounded():
    def ws(hw):
        return _core.conv2d_workspace_bytes((1, 64, hw, hw), (64, 3, 3, 1), (1, 1), (1, 1, 1, 1),
                                            (1, 1), "zeros", "winograd", 4)
    # Blocks of tiles, not the image: the same order of size whatever the image (the
    # blocks' shape changes with the tile rows' length, so not monotonic).
    small = ws(56)
    for hw in (224, 448, 1024):
        assert 0 < ws(hw) <= 2 * small + (1 << 20)
    assert ws(1024) < 64 * 1024 * 1024 * 4 // 8
