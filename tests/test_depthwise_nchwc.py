"""Depthwise convolution with the channels in the lanes (depthwise_nchwc; ops/depthwise.cpp,
kernels/README.md): the direct algorithm's path for C == K == groups with outputs at most
28 wide. Each case runs on every ISA the machine has, on 1 and 2 threads, in
float32 and float64 (``direct_cases.check``): against the float64 reference within the
a-priori bound, bitwise across thread counts, bitwise against the scalar twin when the
epilogue is exact. The sizes walk the kernel's edges: channel blocks (the registered mr:
32 / 16 on AVX-512, 16 / 8 on AVX2 and scalar), tiles of nr pixels, bands of rows."""

import numpy as np
import pytest

import convcore
from convcore import _core
from direct_cases import DTYPES, check, edges


def _registered(field):
    return sorted({k[field] for k in _core.kernels() if k["op"].startswith("depthwise_nchwc")})


CHANNELS = sorted(set().union(*(edges(m) for m in _registered("mr"))))
WIDTHS = sorted(set().union(*(edges(n) for n in _registered("nr") if n > 1)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", CHANNELS)
def test_channel_blocks(rng, dtype, channels):
    check(rng, dtype, 1, channels, 7, 7, channels, 3, 3, groups=channels, padding=1)
    check(rng, dtype, 2, channels, 9, 10, channels, 3, 3, groups=channels, stride=2, padding=1,
          activation="relu")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDTHS)
def test_tile_widths(rng, dtype, width):
    # stride 1 (output width = width) and stride 2, 17 channels: a block and a short one
    check(rng, dtype, 1, 17, 5, width, 17, 3, 3, groups=17, padding=1)
    check(rng, dtype, 1, 17, 4, 2 * width + 1, 17, 3, 3, groups=17, stride=2, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", [
    dict(stride=3, padding=1),                       # odd stride
    dict(stride=(2, 1), padding=(1, 0)),             # stride along rows only
    dict(stride=(1, 2), padding=(0, 2)),             # along columns only
    dict(dilation=2, padding=2),                     # dilated
    dict(stride=2, dilation=(2, 3), padding=(1, 3)),
    dict(padding=4),                                 # padding wider than the kernel
    dict(padding="same"),
    dict(padding=0),
], ids=str)
def test_geometries(rng, dtype, geometry):
    check(rng, dtype, 2, 21, 13, 11, 21, 3, 3, groups=21, **geometry)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel", [(1, 1), (5, 5), (7, 7), (3, 5), (1, 3)])
def test_kernel_sizes(rng, dtype, kernel):
    check(rng, dtype, 1, 18, 15, 14, 18, *kernel, groups=18, stride=2,
          padding=(kernel[0] // 2, kernel[1] // 2), activation="leaky_relu")


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "abs", "square"])
def test_activations_and_no_bias(rng, activation):
    check(rng, np.float32, 1, 33, 8, 8, 33, 3, 3, groups=33, padding=1, activation=activation)
    check(rng, np.float64, 1, 33, 8, 8, 33, 3, 3, groups=33, stride=2, padding=1, bias=False,
          activation=activation)


def test_bands_of_rows(rng):
    # 64 channels of 56x56, stride 2 (outputs 28 wide): the band budget splits the rows;
    # and a batch of images
    check(rng, np.float32, 1, 64, 56, 56, 64, 3, 3, groups=64, stride=2, padding=1)
    check(rng, np.float32, 3, 40, 30, 30, 40, 3, 3, groups=40, stride=2, padding=1)


def test_same_bits_as_direct_plane(rng):
    """Each output is the same FMA chain (taps in order, bias last) as the per-plane
    kernel's: a 64-wide image runs direct_plane, its left 24 columns (outputs 22 wide)
    run depthwise_nchwc; their common outputs agree bit for bit."""
    x = rng.standard_normal((1, 20, 12, 64)).astype(np.float32)
    w = rng.standard_normal((20, 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal(20).astype(np.float32)
    wide = convcore.conv2d(x, w, b, groups=20, algorithm="direct")
    narrow = convcore.conv2d(np.ascontiguousarray(x[..., :24]), w, b, groups=20,
                             algorithm="direct")
    np.testing.assert_array_equal(narrow, wide[..., :22])


def test_inf_and_nan_propagate(rng):
    x = rng.standard_normal((1, 16, 9, 9)).astype(np.float32)
    x[0, 3, 4, 4] = np.inf
    x[0, 5, 0, 0] = np.nan
    w = np.ones((16, 1, 3, 3), np.float32)
    y = convcore.conv2d(x, w, groups=16, stride=2, padding=1)
    # stride 2, padding 1: input row and column 4 are read by output row and column 2 only
    assert y[0, 3, 2, 2] == np.inf and np.isnan(y[0, 5, 0, 0])
    y[0, 3, 2, 2] = y[0, 5, 0, 0] = 0
    assert np.isfinite(y).all()


@pytest.mark.parametrize("width", [1, 2, 3, 5])
def test_images_narrower_than_a_transpose(rng, width):
    # rows packed 8 columns at a time read past the row, never past the plane: the last
    # channel's last rows take their exact width (the tensor ends there)
    check(rng, np.float32, 1, 32, 9, width, 32, 3, 3, groups=32, padding=1)
    check(rng, np.float64, 1, 16, 4, width, 16, 1, 3, groups=16, stride=(1, 2), padding=(0, 1))
