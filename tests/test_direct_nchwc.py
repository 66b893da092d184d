"""The direct algorithm's channels-in-lanes layout (NCHW16c: the direct_nchwc kernels).

The layout is forced with ``_core.set_direct_layout("nchwc")`` so that every shape runs
the blocked kernels (on the tables without one of their own, the AVX2 table, the slot
holds the scalar twin). Every case runs through ``conv2d(..., algorithm="direct")`` on
every ISA the machine has, on 1 and 2 threads, in float32 and float64, and checks the
result against the float64 reference within the a-priori bound (``check_conv2d``:
(C/groups)*R*S summed terms), bitwise equality between 1 and 2 threads, and bitwise
equality with the scalar twin (one FMA per product in the order c, r, s) when the
activation is exact. The sizes walk the kernel's edges, drawn from the registry: its
channel panel (mr = 2 vectors of channels: 32 floats, 16 doubles), half of it (one
vector: a single-block tile), its pixel tile (nr = 14) and multiples of it.
"""

import numpy as np
import pytest

import convcore
from convcore import _core
from convcore.testing import check_conv2d
from direct_cases import DTYPES, check, edges, isas

ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]


def _registered():
    """{dtype: (mr, nr)} of the widest table's direct_nchwc kernels this CPU runs."""
    supported = _core.isas_supported()
    out = {}
    for k in _core.kernels():
        if k["op"].startswith("direct_nchwc_") and k["table"] in supported:
            dtype = np.float32 if k["op"].endswith("f32") else np.float64
            out.setdefault(dtype, (k["mr"], k["nr"]))
    return out


TILES = _registered()


def channel_edges(dtype):
    mr = TILES[dtype][0]
    return sorted(edges(mr) | edges(mr // 2))


def width_edges(dtype):
    nr = TILES[dtype][1]
    return sorted(edges(nr) | {2 * nr, 4 * nr - 1})


@pytest.fixture(autouse=True)
def nchwc_layout():
    _core.set_direct_layout("nchwc")
    yield
    _core.set_direct_layout("auto")


@pytest.mark.parametrize("dtype", DTYPES)
def test_channels(rng, dtype):
    # kn = K mod mr in the last panel: one or two vectors of channels, partial ones
    for k in channel_edges(dtype):
        check(rng, dtype, 1, 3, 4, 17, k, 3, 3, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
def test_widths(rng, dtype):
    # rows cut into tiles of <= nr pixels: 1..nr, two tiles, a row's last tile short
    for width in width_edges(dtype):
        check(rng, dtype, 1, 2, 3, width, 20, 3, 3, padding=(0, 1))
        check(rng, dtype, 2, 3, 2, width, 7, 1, 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
def test_activations(rng, dtype, activation):
    # the epilogue: bias in the lanes, transposed, activated, stored whole or masked
    check(rng, dtype, 1, 4, 5, 30, 33, 3, 3, padding=1, activation=activation)
    check(rng, dtype, 1, 2, 3, 9, 5, 3, 3, padding=1, activation=activation, bias=False)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "geometry",
    [
        dict(stride=2, padding=3),
        dict(stride=(1, 4), padding=(0, 5)),
        dict(dilation=(2, 3), padding=2),
        dict(stride=(2, 3), dilation=(1, 2), padding=(1, 4)),
        dict(padding=5),
        dict(padding="same"),
        dict(padding=1, padding_mode="reflect"),
        dict(padding=(1, 2), padding_mode="circular"),
        dict(padding=2, padding_mode="replicate"),
    ],
    ids=lambda g: ",".join(f"{k}={v}" for k, v in g.items()),
)
def test_geometry(rng, dtype, geometry):
    check(rng, dtype, 2, 3, 13, 31, 18, 3, 3, **geometry)


@pytest.mark.parametrize("dtype", DTYPES)
def test_groups_stems_and_chunks(rng, dtype):
    check(rng, dtype, 1, 8, 7, 16, 36, 3, 3, groups=4, padding=1)   # 9 channels a group
    check(rng, dtype, 1, 6, 6, 15, 6, 3, 3, groups=3, padding=1)    # 2 a group
    check(rng, dtype, 1, 3, 31, 35, 40, 11, 11, stride=4)           # AlexNet-like
    # weight panels packed in pieces of 256 (c, tap) positions: 363 a channel, 20 filters
    # a group (each group's panel part zero), pieces of two groups' panels in parallel
    check(rng, dtype, 1, 6, 23, 27, 40, 11, 11, groups=2, stride=4)
    check(rng, dtype, 1, 3, 30, 30, 17, 7, 7, stride=2, padding=3)  # ResNet stem-like
    check(rng, dtype, 2, 37, 6, 14, 33, 3, 3, padding=1)            # many input channels
    # chunks of input channels (about 16 KiB of weights: 14 channels of 3x3, one of 11x11)
    # over groups of 8 tiles, their partial sums kept between chunks: 3 tiles a row x 12 rows
    check(rng, dtype, 1, 29, 12, 30, 21, 3, 3, padding=1)
    check(rng, dtype, 1, 2, 40, 70, 18, 11, 11, stride=(1, 4), padding=2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "case",
    [
        # (C, H, W, K, R, S, stride, dilation, groups): unpadded with stride_w > 1, where
        # the kernel reads the NCHW planes in place (pixels stride_w apart, no band)
        (3, 31, 71, 40, 11, 11, 4, 1, 1),      # AlexNet-like: the stride-4, 11-tap variant
        (3, 19, 4 * 14 + 10, 33, 11, 11, 4, 1, 1),  # 14 and 15 pixels a row
        (2, 12, 4 * 27 + 7, 16, 3, 7, (2, 4), 1, 1),  # stride 4, 7 taps: the run-time stride
        (5, 9, 41, 17, 3, 3, 2, 1, 1),         # 3x3 stride 2, 20 pixels a row
        (4, 11, 44, 31, 3, 3, 3, (2, 1), 1),   # stride 3, dilated rows
        (6, 13, 37, 64, 3, 2, (1, 2), (1, 3), 2),  # groups, dilated columns
        (7, 8, 29, 18, 1, 1, 2, 1, 1),         # 1x1 stride 2: a subsampled pointwise layer
        (2, 6, 2 * 28 + 1, 5, 3, 3, 2, 1, 1),  # 5 output channels: a one-vector block
    ],
    ids=str,
)
def test_strided_in_place(rng, dtype, case):
    c, h, w, k, r, s, stride, dilation, groups = case
    check(rng, dtype, 1, c, h, w, k, r, s, stride=stride, dilation=dilation, groups=groups)
    # the same order of accumulation as the width-vectorised kernel (c, then tap): the
    # same bits as the nchw layout's band path
    x = rng.standard_normal((2, c, h, w)).astype(dtype)
    wt = rng.standard_normal((k, c // groups, r, s)).astype(dtype)
    b = rng.standard_normal(k).astype(dtype)
    kw = dict(stride=stride, dilation=dilation, groups=groups, algorithm="direct")
    y = convcore.conv2d(x, wt, b, **kw)
    _core.set_direct_layout("nchw")
    try:
        assert np.array_equal(y, convcore.conv2d(x, wt, b, **kw))
    finally:
        _core.set_direct_layout("nchwc")


@pytest.mark.parametrize("dtype", DTYPES)
def test_special_values(dtype):
    # NaN and infinities propagate as the reference says (a whole-vector store must not
    # leave a neighbour's stale value behind)
    x = np.ones((1, 2, 3, 20), dtype)
    x[0, 0, 1, 5] = np.nan
    x[0, 1, 2, 17] = np.inf
    w = np.ones((18, 2, 3, 3), dtype)
    for isa in isas():
        _core.set_isa(isa)
        try:
            y = convcore.conv2d(x, w, padding=1, algorithm="direct")
        finally:
            _core.set_isa(isas()[0])
        check_conv2d(y, x, w, padding=1)


def test_layout_rule_and_switch():
    a = ((1, 64, 56, 56), (64, 3, 3, 1), (1, 1), (1, 1, 1, 1), (1, 1))
    assert _core.get_direct_layout() == "nchwc"
    assert _core.direct_layout(*a) == "nchwc"
    _core.set_direct_layout("nchw")
    assert _core.direct_layout(*a) == "nchw"
    _core.set_direct_layout("auto")
    assert _core.get_direct_layout() == "auto"
    # depthwise always runs direct_plane, whatever is forced
    _core.set_direct_layout("nchwc")
    assert _core.direct_layout((1, 8, 9, 9), (8, 3, 3, 8), (1, 1), (1, 1, 1, 1), (1, 1)) == "nchw"
    with pytest.raises(ValueError, match="direct layout must be one of"):
        _core.set_direct_layout("nhwc")
    assert _core.get_direct_layout() == "nchwc"


def _layout(n, c, h, w, k, r, stride, pad, groups=1):
    return _core.direct_layout((n, c, h, w), (k, r, r, groups), (stride,) * 2, (pad,) * 4, (1, 1))


def test_layout_rule():
    _core.set_direct_layout("auto")
    prev = _core.get_isa()
    try:
        for isa in isas():
            _core.set_isa(isa)
            own = isa != "avx2"  # the AVX2 table has no direct_nchwc of its own
            want = "nchwc" if own else "nchw"
            assert _layout(1, 64, 56, 56, 64, 3, 1, 1) == want          # a: 7 ymm a row
            assert _layout(1, 3, 227, 227, 96, 11, 4, 0) == want        # i: 55 wide
            assert _layout(1, 256, 14, 14, 256, 3, 1, 1) == want        # d: 14 wide
            assert _layout(1, 3, 224, 224, 64, 7, 2, 3) == "nchw"       # c: 112 = 7 zmm
            assert _layout(64, 1, 28, 28, 8, 5, 1, 0) == "nchw"         # h: 8 channels
            assert _layout(1, 512, 7, 7, 512, 3, 1, 1) == "nchw"        # 7 wide
            assert _layout(1, 8, 9, 9, 8, 3, 1, 1, groups=8) == "nchw"  # depthwise: plane
    finally:
        _core.set_isa(prev)
        _core.set_direct_layout("nchwc")


def test_layer_packs_once_for_the_layout(rng):
    # an eval-mode layer (its plan made on the first call) keeps the layout it was made with
    from convcore import layers as L
    x = rng.standard_normal((2, 5, 9, 29)).astype(np.float32)
    conv = L.Conv2d(5, 19, 3, padding=1, seed=0).eval()
    y1 = conv(x)
    _core.set_direct_layout("nchw")
    y2 = conv(x)
    np.testing.assert_array_equal(y1, y2)
    check_conv2d(y1, x, conv.weight.data, conv.bias.data, padding=1)
