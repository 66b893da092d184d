"""The direct-convolution kernels (direct_tile, direct_plane; kernels/README.md).

Every case runs through ``conv2d(..., algorithm="direct")`` on every ISA the machine
has, on 1 and 2 threads, in float32 and float64, and checks:
- the result against the float64 reference within the a-priori error bound;
- bitwise equality between 1 and 2 threads;
- bitwise equality between each SIMD kernel and its scalar twin when the epilogue is
  exact (both accumulate with one FMA per product in the order c, r, s); sigmoid and
  tanh differ by the vector exp's few ulps (libm in the twin) and are checked by the
  bound.
The shapes walk the tiles' edges: output widths and channel counts around the vector
width, the direct_tile channel blocks (4; 8 on AVX-512, ymm or zmm) and the row groups
(2, 4), strides, dilations, padding larger than the kernel, 1x1 inputs and kernels,
depthwise with multipliers.
"""

import numpy as np
import pytest

from convcore import _core
from convcore.testing import check_conv2d
from direct_cases import DTYPES, check, edges, isas, run_everywhere


def _tile_edges():
    """Sizes around the tiles of the registered direct_tile kernels (every compiled table,
    float32): their KB output channels (mr) and their vectors (nr = 3 vectors a row,
    kernels/README.md: 8 floats on AVX2, 16 on AVX-512), plus 2 vectors less one. A tile
    change in the registry moves these edges with it."""
    out = set()
    for k in _core.kernels():
        if k["op"] == "direct_tile_f32":
            lanes = k["nr"] // 3
            out |= edges(k["mr"]) | edges(lanes) | {2 * lanes - 1}
    return sorted(out)


EDGES = _tile_edges()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", EDGES)
def test_widths(rng, dtype, width):
    # direct_tile: channel blocks of 4 (5 = 4 + 1), tiles of up to 3 vectors per row
    check(rng, dtype, 1, 3, 4, width, 5, 3, 3, padding=1)
    # direct_plane: depthwise (rows in groups of 4 and 2, then single rows) and one-channel
    check(rng, dtype, 1, 2, 11, width, 2, 3, 3, groups=2, padding=1)
    check(rng, dtype, 1, 1, 7, width, 1, 2, 3, padding=(0, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", EDGES)
def test_channels(rng, dtype, channels):
    check(rng, dtype, 2, channels, 5, 10, channels, 3, 3, padding=1)  # in = out channels
    check(rng, dtype, 1, channels, 6, 9, channels, 3, 3, groups=channels, padding=1)  # depthwise


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "geometry",
    [
        dict(stride=2, padding=1),
        dict(stride=(3, 2), padding=(2, 1)),
        dict(stride=(1, 3), dilation=(2, 1)),
        dict(dilation=(2, 3), padding=(3, 4)),
        dict(stride=(2, 2), dilation=(3, 2), padding=2),
        dict(padding=5),  # padding larger than the kernel
        dict(padding=(4, 0), stride=(5, 1)),
    ],
    ids=lambda g: ",".join(f"{k}={v}" for k, v in g.items()),
)
def test_geometry(rng, dtype, geometry):
    check(rng, dtype, 2, 3, 13, 17, 6, 3, 3, **geometry)  # direct_tile
    check(rng, dtype, 1, 4, 13, 17, 4, 3, 3, groups=4, **geometry)  # direct_plane
    check(rng, dtype, 1, 3, 12, 16, 3, 2, 5, groups=3, **geometry)  # plane, no row reuse


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "shape",
    [
        (1, 2, 1, 1, 3, 1, 1, {}),  # 1x1 input, 1x1 kernel
        (2, 3, 1, 1, 5, 3, 3, {"padding": 1}),  # 1x1 input, 3x3 kernel all in the padding
        (1, 1, 1, 1, 1, 3, 3, {"padding": 2}),  # 1x1 image, one channel
        (3, 4, 5, 5, 9, 1, 1, {}),  # pointwise
        (1, 2, 9, 40, 3, 9, 1, {"padding": (4, 0)}),  # tall kernel
        (1, 1, 7, 70, 2, 1, 11, {"padding": (0, 5)}),  # wide kernel, long rows
    ],
)
def test_small_and_odd(rng, dtype, shape):
    n, c, h, w, k, r, s, kw = shape
    check(rng, dtype, n, c, h, w, k, r, s, **kw)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("multiplier", [2, 3, 4, 5, 9])
def test_depthwise_multiplier(rng, dtype, multiplier):
    # several output channels per group -> direct_tile with kn = multiplier mod 4
    check(rng, dtype, 2, 3, 9, 11, 3 * multiplier, 3, 3, groups=3, padding=1)
    check(rng, dtype, 1, 2, 8, 19, 2 * multiplier, 3, 3, groups=2, stride=2, padding=2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_few_channels(rng, dtype):
    # LeNet-like: one input channel, a batch, 8 filters 5x5; AlexNet-like 3 channels
    check(rng, dtype, 4, 1, 28, 28, 8, 5, 5)
    check(rng, dtype, 1, 3, 31, 35, 7, 11, 11, stride=4)
    check(rng, dtype, 1, 3, 30, 30, 5, 7, 7, stride=2, padding=3)


@pytest.mark.parametrize("dtype", DTYPES)
def test_grouped(rng, dtype):
    check(rng, dtype, 1, 8, 7, 9, 12, 3, 3, groups=4, padding=1)
    check(rng, dtype, 1, 6, 7, 9, 3, 3, 3, groups=3, padding=1)  # plane kernel, 2 channels


# The AVX-512 direct_tile (KB = 8): 8-channel blocks, ymm or zmm vectors (zmm when a
# row's 8-element vectors pair up: widths 9-16, 25-32, 41-48), rows taken one by one or
# as one sequence of vectors with tails of 1, 2 or 2 + 2 vectors.
TILE_EDGES = [1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49]
ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", TILE_EDGES)
def test_tile8_widths(rng, dtype, width):
    for height in (1, 2, 3, 5):  # sequences of 1..7 vectors per row times these rows
        check(rng, dtype, 1, 2, height + 2, width, 9, 3, 3, padding=(0, 1))
    check(rng, dtype, 2, 3, 4, width, 8, 1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", TILE_EDGES)
def test_tile8_channels(rng, dtype, channels):
    # kn = channels mod 8 in the last block; 16- and 24-wide rows (zmm and ymm floats)
    check(rng, dtype, 1, 2, 5, 16, channels, 3, 3, padding=1)
    check(rng, dtype, 1, 3, 4, 24, channels, 2, 2)
    check(rng, dtype, 1, channels, 3, 17, 9, 3, 3, padding=1)  # many input channels


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("width", [7, 15, 16, 33, 48])
def test_tile8_activations(rng, dtype, activation, width):
    check(rng, dtype, 1, 2, 5, width, 11, 3, 3, padding=1, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "geometry",
    [
        dict(stride=2, padding=3),
        dict(stride=(1, 4), padding=(0, 5)),
        dict(dilation=(2, 3), padding=2),
        dict(stride=(2, 3), dilation=(1, 2), padding=(1, 4)),
    ],
    ids=lambda g: ",".join(f"{k}={v}" for k, v in g.items()),
)
@pytest.mark.parametrize("width", [31, 32, 64, 97])
def test_tile8_geometry(rng, dtype, geometry, width):
    check(rng, dtype, 1, 3, 9, width, 16, 5, 5, activation="relu", **geometry)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", [13, 24, 29, 36, 44])
def test_tile8_unrolled_taps(rng, dtype, width):
    # the AVX-512 tile unrolls 3x3 taps and 11-tap rows; zmm and ymm widths, rows taken
    # one by one and as a sequence
    check(rng, dtype, 1, 3, 6, width, 10, 3, 3, padding=1, activation="leaky_relu")
    check(rng, dtype, 1, 2, 13, width, 9, 2, 11, padding=(0, 3))
    check(rng, dtype, 2, 2, 14, width + 10, 8, 11, 11, stride=(1, 2), padding=(0, 5))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride", [2, 3, 4, 5])
def test_strided_band_copy(rng, dtype, stride):
    # the band copy de-interleaves each row into stride_w phases, the ends (padding)
    # element by element: narrow and wide rows, padding below, at and above the stride
    for width in (1, 2, 5, 9, 23):
        for pad in sorted({0, 1, stride - 1, stride, stride + 2}):
            if width + 2 * pad >= 3:
                check(rng, dtype, 1, 2, 4, width, 3, 2, 3, stride=(1, stride), padding=(0, pad))


class LectureSigmoid:
    """sigmoid(a=0.08, b=50), described as convcore.layers activation objects are."""

    activation_spec = ("sigmoid", 0.08, 50.0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "abs", "square",
                                        "leaky_relu", LectureSigmoid()],
                         ids=lambda a: a if isinstance(a, str) else "sigmoid_lecture")
def test_fused_activation(rng, dtype, activation):
    check(rng, dtype, 1, 3, 6, 17, 5, 3, 3, padding=1, activation=activation)
    check(rng, dtype, 1, 4, 9, 17, 4, 3, 3, groups=4, padding=1, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_bias_and_special_values(rng, dtype):
    check(rng, dtype, 1, 3, 6, 9, 5, 3, 3, padding=1, bias=False)
    x = rng.standard_normal((1, 2, 6, 20)).astype(dtype)
    x[0, 0, 2, 3] = np.nan
    x[0, 1, 4, 10] = np.inf
    x[0, 1, 1, 17] = -np.inf
    for k, groups in ((5, 1), (2, 2)):
        w = np.abs(rng.standard_normal((k, 2 // groups, 3, 3))).astype(dtype) + 0.5
        results = run_everywhere(x, w, None, groups=groups, padding=1)
        for key, y in results.items():
            check_conv2d(y, x, w, None, groups=groups, padding=1)
            assert np.array_equal(y, results["scalar", 1], equal_nan=True), key


def test_kernels_registered():
    """Each ISA's table holds direct kernels of its own ISA (AVX-512: or AVX2's), with
    the tiles the driver packs weights for: direct_plane one channel, direct_tile several."""
    slots = {(k["table"], k["op"]): k for k in _core.kernels()}
    own = {"scalar": {"scalar"}, "avx2": {"avx2"}, "avx512": {"avx512", "avx2"}}
    for isa in isas():
        for op in ("direct_tile_f32", "direct_tile_f64", "direct_plane_f32", "direct_plane_f64"):
            k = slots[isa, op]
            assert k["isa"] in own[isa] and k["name"] == f"{op}_{k['isa']}", k
            assert k["mr"] == 1 if "plane" in op else k["mr"] >= 2, k


# ----------------------------------------------------------------------------- AVX-512
# direct_plane_avx512 (kernels/README.md): 16 float / 8 double lanes, reading the NCHW
# input in place (stride_w == 1), padding columns masked off the loads and padding rows
# read as a zero row; 3x3, 5x5 and 7x7 row reuse in tiles of 4 rows x up to 4 vectors
# (64 / 32 columns), other taps 4 x 4 or 2 x 8 vectors; a band (stride_w > 1) goes to
# the AVX2 kernel. The cases below walk its edges (which are not AVX2's) on every ISA,
# bitwise against the scalar twin.

WIDE_EDGES = [1, 7, 8, 15, 16, 17, 31, 32, 33, 47, 48, 49, 63, 64, 65, 79, 80, 81]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("width", WIDE_EDGES)
def test_plane_avx512_widths(rng, dtype, width):
    # depthwise 3x3 pad 1 (in place, row reuse: 4-row tiles then a 2-row and a 1-row rest)
    check(rng, dtype, 1, 2, 7, width, 2, 3, 3, groups=2, padding=1)
    # one channel, no padding (a 'valid' filter: plain loads where the tile allows)
    if width >= 3:
        check(rng, dtype, 1, 1, 9, width, 1, 3, 3)
    # 5x5 and 7x7 row reuse (shifts up to 6 lanes past the tile)
    check(rng, dtype, 1, 1, 9, width, 1, 5, 5, padding=2)
    check(rng, dtype, 1, 1, 11, width, 1, 7, 7, padding=3)
    # stride_w 2: a band, handed to the AVX2 kernel
    check(rng, dtype, 1, 1, 6, width, 1, 3, 3, stride=(1, 2), padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("height", [1, 2, 3, 4, 5, 6, 7, 8, 9, 13])
def test_plane_avx512_heights(rng, dtype, height):
    # row groups of 4 (reuse), then pairs and single rows; padding rows at both ends
    check(rng, dtype, 1, 3, height, 37, 3, 3, 3, groups=3, padding=1)
    check(rng, dtype, 1, 1, height, 70, 1, 3, 3, padding=(2, 1))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "geometry",
    [
        dict(padding=0),
        dict(padding=2),
        dict(padding=(0, 3)),
        dict(padding=(3, 0)),
        dict(padding=(6, 20)),  # whole tiles of padding rows, masked middle vectors
        dict(stride=(2, 1), padding=1),  # in place, stride_h 2: no row reuse
        dict(stride=(3, 1), dilation=(3, 1), padding=3),  # reuse with rows 3 apart
        dict(dilation=(1, 2), padding=2),  # in place, columns not consecutive
        dict(dilation=2, padding=2),
        dict(stride=2, padding=1),  # band
        dict(stride=(1, 3), dilation=(2, 2), padding=(2, 4)),  # band, phases
    ],
    ids=lambda g: ",".join(f"{k}={v}" for k, v in g.items()),
)
def test_plane_avx512_geometry(rng, dtype, geometry):
    check(rng, dtype, 2, 4, 11, 35, 4, 3, 3, groups=4, **geometry)
    check(rng, dtype, 1, 2, 9, 18, 2, 5, 5, groups=2, **geometry)  # 5x5
    check(rng, dtype, 1, 2, 14, 21, 2, 7, 7, groups=2, **geometry)  # 7x7
    check(rng, dtype, 1, 2, 9, 19, 2, 3, 5, groups=2, **geometry)  # other taps
    check(rng, dtype, 1, 1, 5, 3, 1, 1, 1, **geometry)  # 1x1, tiny plane


@pytest.mark.parametrize("dtype", DTYPES)
def test_plane_avx512_channels_per_group(rng, dtype):
    # one output channel per group, several input channels (C > 1 in the kernel, in place)
    check(rng, dtype, 2, 6, 9, 33, 2, 3, 3, groups=2, padding=1)
    check(rng, dtype, 1, 3, 8, 17, 1, 3, 3, padding=1)
    check(rng, dtype, 1, 4, 7, 21, 2, 3, 2, groups=2, padding=(1, 0), stride=(1, 2))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "abs", "square",
                                        "leaky_relu", LectureSigmoid()],
                         ids=lambda a: a if isinstance(a, str) else "sigmoid_lecture")
def test_plane_avx512_activation(rng, dtype, activation):
    check(rng, dtype, 1, 2, 9, 49, 2, 3, 3, groups=2, padding=1, activation=activation)
    check(rng, dtype, 1, 1, 5, 33, 1, 5, 5, padding=2, activation=activation)
    check(rng, dtype, 1, 1, 6, 20, 1, 2, 3, padding=1, activation=activation)  # other taps


@pytest.mark.parametrize("dtype", DTYPES)
def test_plane_avx512_padding_times_inf(rng, dtype):
    """Padding is multiplied like any input (0 * inf = NaN at the border, as the
    reference and every table compute it); NaN and inf inside the image propagate."""
    x = rng.standard_normal((1, 2, 9, 40)).astype(dtype)
    x[0, 0, 0, 0] = np.nan
    x[0, 1, 8, 39] = np.inf
    x[0, 1, 4, 17] = -np.inf
    w = rng.standard_normal((2, 1, 3, 3)).astype(dtype)
    w[0, 0, 0, 0] = np.inf  # reads the top-left padding for the first row and column
    w[1, 0, 2, 1] = -np.inf  # reads the bottom padding row
    results = run_everywhere(x, w, None, groups=2, padding=1)
    for key, y in results.items():
        check_conv2d(y, x, w, None, groups=2, padding=1)
        assert np.array_equal(y, results["scalar", 1], equal_nan=True), key
    y = results["scalar", 1]
    assert np.isnan(y[0, 0, 0, :]).all() and np.isnan(y[0, 0, :, 0]).all()
    assert np.isnan(y[0, 1, -1, :]).all()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("height", [5, 6, 7, 13])
def test_tile_band_rows(rng, dtype, height):
    # many channels: on one thread float32 bands of 6 rows (band within 128 KiB), float64
    # and two threads 4 rows; results bitwise the same either way
    check(rng, dtype, 1, 64, height, 48, 9, 3, 3, padding=1)
    check(rng, dtype, 1, 40, height, 30, 12, 3, 3, stride=(2, 1), padding=(2, 1))
