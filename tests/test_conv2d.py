"""``convcore.conv2d`` against the float64 reference, within the a-priori
rounding-error bound of ``convcore.testing`` — for every algorithm, every ISA
this machine runs, both dtypes, tile-edge sizes, every parameter, odd memory
layouts, NaN/Inf, and random shapes (hypothesis).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import convcore
from convcore import _core, testing

DTYPES = [np.float32, np.float64]
ALGORITHMS = ["direct", "im2col", "auto"]
# Channel and width counts around the SIMD widths (8 floats / 4 doubles per AVX2 register).
EDGE_SIZES = [1, 7, 8, 9, 15, 16, 17, 31, 33]
ACTIVATION_NAMES = ["relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]


class Spec:
    """A minimal activation object: conv2d accepts anything with ``activation_spec``."""

    def __init__(self, *spec):
        self.activation_spec = spec

    def __repr__(self):
        return f"Spec{self.activation_spec}"


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def conv_and_check(x, w, b=None, *, algorithm="auto", **params):
    """Run conv2d, check it against the reference, return the result."""
    y = convcore.conv2d(x, w, b, algorithm=algorithm, **params)
    assert isinstance(y, np.ndarray) and y.flags.c_contiguous
    testing.check_conv2d(y, x, w, b, **params)
    return y


def output_shape(x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, **_):
    """The expected output shape, computed with the reference."""
    x = np.zeros((1,) + tuple(x_shape[1:]))
    ref = testing.reference_conv2d(x, np.zeros(w_shape), stride=stride, padding=padding,
                                   dilation=dilation, groups=groups)
    return (x_shape[0],) + ref.shape[1:]


# --------------------------------------------------------------------------
# Basics, every algorithm x ISA x dtype x thread count
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
def test_basic(rng, isa, threads, algorithm, dtype, with_bias):
    x = randn(rng, (2, 5, 9, 11), dtype)
    w = randn(rng, (7, 5, 3, 3), dtype)
    b = randn(rng, (7,), dtype) if with_bias else None
    y = conv_and_check(x, w, b, algorithm=algorithm, padding=1)
    assert y.shape == (2, 7, 9, 11) and y.dtype == dtype


def test_defaults_and_positional_parameters(rng):
    x = randn(rng, (1, 4, 10, 9), np.float32)
    w = randn(rng, (6, 2, 3, 3), np.float32)
    b = randn(rng, (6,), np.float32)
    y = convcore.conv2d(x, randn(rng, (6, 4, 3, 3), np.float32))  # stride 1, no padding
    assert y.shape == (1, 6, 8, 7)
    positional = convcore.conv2d(x, w, b, 2, 1, 1, 2)
    keywords = convcore.conv2d(x, w, b, stride=2, padding=1, dilation=1, groups=2)
    np.testing.assert_array_equal(positional, keywords)
    with pytest.raises(TypeError):  # padding_mode onwards are keyword-only
        convcore.conv2d(x, w, b, 2, 1, 1, 2, "zeros")


def test_numpy_integer_parameters(rng):
    x = randn(rng, (1, 4, 10, 9), np.float64)
    w = randn(rng, (6, 2, 3, 3), np.float64)
    y = convcore.conv2d(x, w, stride=np.int64(2), padding=(np.int32(1), 2),
                        dilation=np.uint8(1), groups=np.int16(2))
    np.testing.assert_array_equal(y, convcore.conv2d(x, w, stride=2, padding=(1, 2), groups=2))


# --------------------------------------------------------------------------
# Tile edges
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_tile_edge_channels(rng, isa, algorithm, dtype, size):
    x = randn(rng, (1, size, 5, 6), dtype)
    w = randn(rng, (size, size, 3, 3), dtype)
    conv_and_check(x, w, randn(rng, (size,), dtype), algorithm=algorithm, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_tile_edge_width(rng, isa, algorithm, dtype, size):
    x = randn(rng, (2, 3, 4, size), dtype)
    w = randn(rng, (5, 3, 3, 3), dtype)
    conv_and_check(x, w, randn(rng, (5,), dtype), algorithm=algorithm, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_tile_edge_depthwise(rng, isa, algorithm, dtype, size):
    x = randn(rng, (1, size, 6, size), dtype)
    w = randn(rng, (size, 1, 3, 3), dtype)
    conv_and_check(x, w, randn(rng, (size,), dtype), algorithm=algorithm, padding=1, groups=size)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("size", EDGE_SIZES)
def test_tile_edge_single_channel(rng, isa, algorithm, dtype, size):
    x = randn(rng, (1, 1, size + 2, size), dtype)
    w = randn(rng, (1, 1, 3, 3), dtype)
    conv_and_check(x, w, algorithm=algorithm, padding=1)


# --------------------------------------------------------------------------
# Parameters: stride, dilation, padding, groups, padding modes
# --------------------------------------------------------------------------

# (id, input shape, weight shape, parameters); every case runs with a bias.
CASES = [
    ("1x1", (2, 6, 5, 7), (9, 6, 1, 1), {}),
    ("1x1-stride2", (1, 6, 9, 8), (4, 6, 1, 1), dict(stride=2)),
    ("1x1-pad1", (1, 5, 4, 6), (3, 5, 1, 1), dict(padding=1)),
    ("stride2", (1, 3, 11, 10), (5, 3, 3, 3), dict(stride=2, padding=1)),
    ("stride3-5x5", (2, 4, 13, 14), (3, 4, 5, 5), dict(stride=3, padding=2)),
    ("stride-pair", (1, 3, 12, 11), (4, 3, 3, 2), dict(stride=(2, 1), padding=(1, 0))),
    ("stride-larger-than-kernel", (1, 2, 13, 13), (3, 2, 2, 2), dict(stride=5)),
    ("dilation2", (1, 3, 12, 12), (4, 3, 3, 3), dict(dilation=2, padding=2)),
    ("dilation-pair", (1, 2, 10, 13), (3, 2, 2, 3), dict(dilation=(1, 3), padding=(0, 3))),
    ("dilation-stride", (2, 3, 15, 14), (4, 3, 3, 3), dict(dilation=2, stride=2, padding=1)),
    ("kernel-1x5", (1, 3, 8, 12), (4, 3, 1, 5), dict(padding=(0, 2))),
    ("kernel-7x1", (1, 3, 9, 5), (4, 3, 7, 1), {}),
    ("kernel-equals-input", (2, 3, 5, 6), (4, 3, 5, 6), {}),
    ("kernel-11x11-stride4", (1, 3, 27, 27), (8, 3, 11, 11), dict(stride=4, padding=2)),
    ("pad-larger-than-kernel", (1, 3, 4, 5), (2, 3, 3, 3), dict(padding=4)),
    ("pad-pair", (1, 2, 6, 7), (3, 2, 3, 3), dict(padding=(2, 0))),
    ("same-odd", (1, 3, 8, 9), (4, 3, 3, 5), dict(padding="same")),
    ("same-even", (1, 3, 8, 9), (4, 3, 2, 4), dict(padding="same")),
    ("same-even-dilated", (1, 3, 9, 8), (4, 3, 4, 2), dict(padding="same", dilation=(2, 3))),
    ("valid", (1, 3, 8, 9), (4, 3, 3, 3), dict(padding="valid")),
    ("groups2", (2, 6, 7, 8), (4, 3, 3, 3), dict(groups=2, padding=1)),
    ("groups3-stride2", (1, 9, 9, 10), (6, 3, 3, 3), dict(groups=3, stride=2, padding=1)),
    ("groups-4in-per-group", (1, 8, 6, 7), (6, 4, 3, 3), dict(groups=2, padding=1)),
    ("depthwise", (2, 8, 9, 10), (8, 1, 3, 3), dict(groups=8, padding=1)),
    ("depthwise-multiplier2", (1, 5, 9, 8), (10, 1, 3, 3), dict(groups=5, padding=1)),
    ("depthwise-5x5-stride2", (1, 17, 11, 12), (17, 1, 5, 5), dict(groups=17, stride=2, padding=2)),
    ("depthwise-dilated", (1, 9, 12, 12), (9, 1, 3, 3), dict(groups=9, dilation=2, padding=2)),
    ("single-channel", (1, 1, 20, 23), (1, 1, 3, 3), dict(padding=1)),
    ("single-channel-5x5-batch", (3, 1, 12, 12), (1, 1, 5, 5), {}),
    ("one-in-many-out", (4, 1, 14, 14), (8, 1, 5, 5), {}),
    ("reflect", (1, 3, 7, 8), (4, 3, 3, 3), dict(padding=(2, 1), padding_mode="reflect")),
    ("reflect-same-dilated", (1, 2, 9, 9), (3, 2, 3, 3),
     dict(padding="same", dilation=2, padding_mode="reflect")),
    ("reflect-depthwise-stride2", (1, 6, 9, 10), (6, 1, 3, 3),
     dict(groups=6, stride=2, padding=1, padding_mode="reflect")),
    ("replicate-pad-larger-than-kernel", (1, 3, 5, 6), (4, 3, 3, 3),
     dict(padding=4, padding_mode="replicate")),
    ("replicate-groups", (1, 4, 7, 6), (6, 2, 3, 3),
     dict(groups=2, padding=2, padding_mode="replicate")),
    ("circular", (1, 3, 7, 8), (4, 3, 3, 3), dict(padding=(1, 2), padding_mode="circular")),
    ("circular-same-even", (1, 3, 6, 7), (5, 3, 4, 2),
     dict(padding="same", padding_mode="circular")),
    ("circular-pad-equals-size", (1, 2, 3, 4), (3, 2, 3, 3),
     dict(padding=3, padding_mode="circular")),
    ("zeros-explicit-mode", (1, 3, 7, 8), (4, 3, 3, 3), dict(padding=1, padding_mode="zeros")),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape,w_shape,params", [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_parameters(rng, isa, algorithm, dtype, x_shape, w_shape, params):
    x = randn(rng, x_shape, dtype)
    w = randn(rng, w_shape, dtype)
    b = randn(rng, (w_shape[0],), dtype)
    y = conv_and_check(x, w, b, algorithm=algorithm, **params)
    assert y.shape == output_shape(x_shape, w_shape, **params)


# --------------------------------------------------------------------------
# Activations (fused)
# --------------------------------------------------------------------------

ACTIVATIONS = ACTIVATION_NAMES + [Spec("sigmoid", 0.08, 50.0), Spec("leaky_relu", 0.2, 0.0)]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("activation", ACTIVATIONS, ids=str)
@pytest.mark.parametrize("groups", [1, 6], ids=["dense", "depthwise"])
def test_activation(rng, isa, algorithm, dtype, activation, groups):
    x = randn(rng, (2, 6, 7, 9), dtype) * 2
    w = randn(rng, (6, 6 // groups, 3, 3), dtype)
    b = randn(rng, (6,), dtype)
    conv_and_check(x, w, b, algorithm=algorithm, padding=1, groups=groups, activation=activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_lecture_sigmoid_on_8bit_intensities(rng, isa, algorithm, dtype):
    """The lecture's feature detector: Sobel, then sigmoid(a=0.08, b=50) on 0..255 images."""
    x = rng.integers(0, 256, (1, 1, 24, 30)).astype(dtype)
    sobel = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=dtype)
    w = np.stack([sobel, sobel.T])[:, None]
    spec = Spec("sigmoid", 0.08, 50.0)
    y = conv_and_check(x, w, algorithm=algorithm, padding=1, activation=spec)
    assert 0 <= y.min() and y.max() <= 1


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_activation_name_equals_object(rng, algorithm):
    x = randn(rng, (1, 3, 8, 8), np.float32)
    w = randn(rng, (4, 3, 3, 3), np.float32)
    np.testing.assert_array_equal(
        convcore.conv2d(x, w, algorithm=algorithm, activation="sigmoid"),
        convcore.conv2d(x, w, algorithm=algorithm, activation=Spec("sigmoid", 1.0, 0.0)))


# --------------------------------------------------------------------------
# Real-network shapes (scaled down to keep the suite fast)
# --------------------------------------------------------------------------

def scaled(s):
    """The shape ``s`` with batch, channels and image cut down, its structure kept."""
    n = min(s.n, 2)
    eff = s.dilation * (max(s.r, s.s) - 1) + 1
    hw = max(eff + 3 * s.stride - 2 * s.padding, 12)
    h, w = min(s.h, hw), min(s.w, hw)
    if s.groups == s.c:  # depthwise (possibly with a depth multiplier)
        c = min(s.c, 12)
        return dict(n=n, c=c, h=h, w=w, k=c * (s.k // s.c), groups=c)
    g = s.groups
    return dict(n=n, c=g * max(1, min(s.c, 16) // g), h=h, w=w, k=g * max(1, min(s.k, 16) // g),
                groups=g)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("s", testing.SHAPES, ids=[s.name for s in testing.SHAPES])
def test_named_shapes_scaled(rng, isa, algorithm, dtype, s):
    d = scaled(s)
    x = randn(rng, (d["n"], d["c"], d["h"], d["w"]), dtype)
    w = randn(rng, (d["k"], d["c"] // d["groups"], s.r, s.s), dtype)
    b = randn(rng, (d["k"],), dtype)
    conv_and_check(x, w, b, algorithm=algorithm, stride=s.stride, padding=s.padding,
                   dilation=s.dilation, groups=d["groups"], activation="relu")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", ["lenet-conv1", "lenet-conv2", "resnet18-layer4.0.conv2"])
def test_named_shapes_full_size(rng, isa, algorithm, name):
    s = testing.shape(name)
    x = randn(rng, s.input_shape, np.float32)
    w = randn(rng, s.weight_shape, np.float32)
    y = conv_and_check(x, w, algorithm=algorithm, **s.conv2d_kwargs)
    assert y.shape == s.output_shape


# --------------------------------------------------------------------------
# Threads: same bits on 1 and 2 threads
# --------------------------------------------------------------------------

THREAD_CASES = [
    ("3x3", (3, 16, 20, 20), (24, 16, 3, 3), dict(padding=1)),
    ("batch1-wide", (1, 8, 9, 70), (16, 8, 3, 3), dict(padding=1)),
    ("1x1", (2, 40, 13, 13), (48, 40, 1, 1), {}),
    ("depthwise", (2, 32, 17, 19), (32, 1, 3, 3), dict(groups=32, padding=1)),
    ("single-channel", (1, 1, 64, 70), (1, 1, 3, 3), dict(padding=1)),
    ("strided-grouped", (2, 12, 21, 22), (12, 4, 5, 5), dict(groups=3, stride=2, padding=2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("x_shape,w_shape,params", [c[1:] for c in THREAD_CASES],
                         ids=[c[0] for c in THREAD_CASES])
def test_threads_bitwise_equal(rng, isa, algorithm, dtype, x_shape, w_shape, params):
    x = randn(rng, x_shape, dtype)
    w = randn(rng, w_shape, dtype)
    b = randn(rng, (w_shape[0],), dtype)
    previous = convcore.get_num_threads()
    try:
        results = []
        for n in (1, 2, 1):
            convcore.set_num_threads(n)
            assert convcore.get_num_threads() == n
            results.append(convcore.conv2d(x, w, b, algorithm=algorithm, activation="tanh",
                                           **params))
    finally:
        convcore.set_num_threads(previous)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])
    testing.check_conv2d(results[1], x, w, b, activation="tanh", **params)


# --------------------------------------------------------------------------
# Shapes of the call: unbatched, empty batch, out=
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_unbatched_input(rng, algorithm, dtype):
    x = randn(rng, (3, 8, 9), dtype)
    w = randn(rng, (5, 3, 3, 3), dtype)
    b = randn(rng, (5,), dtype)
    y = conv_and_check(x, w, b, algorithm=algorithm, padding=1, stride=(1, 2))
    assert y.shape == (5, 8, 5)
    np.testing.assert_array_equal(
        y, convcore.conv2d(x[None], w, b, algorithm=algorithm, padding=1, stride=(1, 2))[0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("groups", [1, 4])
def test_empty_batch(algorithm, dtype, groups):
    x = np.zeros((0, 4, 10, 9), dtype)
    w = np.ones((8, 4 // groups, 3, 3), dtype)
    y = convcore.conv2d(x, w, np.ones(8, dtype), stride=2, padding=1, groups=groups,
                        algorithm=algorithm, activation="relu")
    assert y.shape == (0, 8, 5, 5) and y.dtype == dtype
    out = np.empty((0, 8, 5, 5), dtype)
    assert convcore.conv2d(x, w, stride=2, padding=1, groups=groups, out=out) is out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
def test_out_parameter(rng, algorithm, dtype, unbatched):
    x = randn(rng, (2, 4, 9, 8), dtype)
    w = randn(rng, (6, 4, 3, 3), dtype)
    b = randn(rng, (6,), dtype)
    if unbatched:
        x = x[0]
    expected = convcore.conv2d(x, w, b, padding=1, algorithm=algorithm, activation="relu")
    out = np.full(expected.shape, np.nan, dtype)
    result = convcore.conv2d(x, w, b, padding=1, algorithm=algorithm, activation="relu", out=out)
    assert result is out
    np.testing.assert_array_equal(out, expected)
    # A second call overwrites (does not accumulate into) out.
    convcore.conv2d(x, w, b, padding=1, algorithm=algorithm, activation="relu", out=out)
    np.testing.assert_array_equal(out, expected)


def test_out_may_be_a_slice_of_a_larger_buffer(rng):
    x = randn(rng, (2, 4, 9, 8), np.float32)
    w = randn(rng, (6, 4, 3, 3), np.float32)
    buffer = np.full((3, 6, 9, 8), 7.0, np.float32)
    out = buffer[1:]  # C-contiguous, offset from the allocation
    assert out.flags.c_contiguous
    convcore.conv2d(x, w, padding=1, out=out)
    np.testing.assert_array_equal(out, convcore.conv2d(x, w, padding=1))
    assert (buffer[0] == 7).all()


# --------------------------------------------------------------------------
# Memory layouts: same bits as contiguous copies
# --------------------------------------------------------------------------

def misaligned(a):
    """A copy of ``a`` that starts one byte past an aligned address."""
    buf = np.empty(a.nbytes + 1, np.uint8)
    m = buf[1:].view(a.dtype).reshape(a.shape)
    m[...] = a
    assert not m.flags.aligned
    return m


def read_only(a):
    a = a.copy()
    a.setflags(write=False)
    return a


def reversed_strides(a):
    """Equal to ``a``, stored with negative strides on every axis."""
    flipped = tuple(slice(None, None, -1) for _ in a.shape)
    r = np.ascontiguousarray(a[flipped])[flipped]
    assert all(s < 0 for s in r.strides if s)
    return r


def strided(a):
    """Equal to ``a``, a view with gaps on every axis."""
    big = np.zeros(tuple(2 * n + 1 for n in a.shape), a.dtype)
    view = big[tuple(slice(1, None, 2) for _ in a.shape)]
    view[...] = a
    return view


LAYOUTS = {
    "noncontiguous": strided,
    "fortran": np.asfortranarray,
    "reversed": reversed_strides,
    "readonly": read_only,
    "misaligned": misaligned,
}


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("layout", list(LAYOUTS))
@pytest.mark.parametrize("groups", [1, 5], ids=["dense", "depthwise"])
def test_layouts_match_contiguous(rng, algorithm, dtype, layout, groups):
    x = randn(rng, (2, 5, 9, 11), dtype)
    w = randn(rng, (5, 5 // groups, 3, 3), dtype)
    b = randn(rng, (5,), dtype)
    params = dict(padding=1, groups=groups, algorithm=algorithm, activation="relu")
    expected = convcore.conv2d(x, w, b, **params)
    make = LAYOUTS[layout]
    for args in [(make(x), w, b), (x, make(w), b), (x, w, make(b)), (make(x), make(w), make(b))]:
        np.testing.assert_array_equal(convcore.conv2d(*args, **params), expected)
    if layout != "fortran":  # 3-D input
        np.testing.assert_array_equal(convcore.conv2d(make(x[1]), w, b, **params), expected[1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_broadcast_zero_strides(rng, algorithm, dtype):
    x0 = randn(rng, (1, 3, 1, 10), dtype)
    x = np.broadcast_to(x0, (4, 3, 8, 10))  # stride 0 on batch and rows
    w = np.broadcast_to(randn(rng, (4, 3, 1, 1), dtype), (4, 3, 3, 3))
    b = np.broadcast_to(dtype(0.5), (4,))
    assert 0 in x.strides and 0 in w.strides and b.strides == (0,)
    y = conv_and_check(x, w, b, algorithm=algorithm, padding=1)
    np.testing.assert_array_equal(
        y, convcore.conv2d(x.copy(), w.copy(), b.copy(), algorithm=algorithm, padding=1))


def test_inputs_are_not_modified(rng):
    x = randn(rng, (2, 3, 6, 7), np.float64)
    w = randn(rng, (4, 3, 3, 3), np.float64)
    b = randn(rng, (4,), np.float64)
    copies = [a.copy() for a in (x, w, b)]
    for algorithm in ALGORITHMS:
        convcore.conv2d(x, w, b, padding=1, algorithm=algorithm, activation="square")
    for a, c in zip((x, w, b), copies):
        np.testing.assert_array_equal(a, c)


# --------------------------------------------------------------------------
# NaN and Inf
# --------------------------------------------------------------------------

NAN_CASES = [
    ("3x3", (2, 3, 8, 9), (4, 3, 3, 3), dict(padding=1)),
    ("1x1", (2, 3, 8, 9), (4, 3, 1, 1), {}),
    ("depthwise", (2, 3, 8, 9), (3, 1, 3, 3), dict(padding=1, groups=3)),
    ("single-channel", (2, 1, 8, 9), (1, 1, 3, 3), dict(padding=1)),
    ("strided-reflect", (2, 3, 8, 9), (4, 3, 3, 3),
     dict(padding=1, stride=2, padding_mode="reflect")),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("activation", [None, "relu"])
@pytest.mark.parametrize("x_shape,w_shape,params", [c[1:] for c in NAN_CASES],
                         ids=[c[0] for c in NAN_CASES])
def test_nan_and_inf_in_input(rng, isa, algorithm, dtype, activation, x_shape, w_shape, params):
    x = randn(rng, x_shape, dtype)
    c = x_shape[1] - 1
    x[0, 0, 3, 4] = np.nan
    x[0, c, 6, 1] = np.inf
    x[1, 0, 0, 0] = -np.inf      # at the border, next to the padding
    x[1, c, 4, 4] = np.inf       # +inf and -inf meeting in one window: nan
    x[1, c, 5, 5] = -np.inf
    w = randn(rng, w_shape, dtype)
    b = randn(rng, (w_shape[0],), dtype)
    y = conv_and_check(x, w, b, algorithm=algorithm, activation=activation, **params)
    assert np.isnan(y).any() and np.isinf(y).any()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("value", [np.nan, np.inf], ids=["nan", "inf"])
def test_nan_and_inf_in_weight_and_bias(rng, isa, algorithm, dtype, value):
    # padding "valid": every tap meets real input, so the answer is unambiguous.
    x = randn(rng, (1, 4, 6, 7), dtype)
    w = randn(rng, (5, 4, 3, 3), dtype)
    b = randn(rng, (5,), dtype)
    w[1, 2, 0, 1] = value
    b[3] = value
    y = conv_and_check(x, w, b, algorithm=algorithm, padding="valid")
    assert not np.isfinite(y[0, 1]).any() and not np.isfinite(y[0, 3]).any()
    assert np.isfinite(y[0, [0, 2, 4]]).all()


# --------------------------------------------------------------------------
# Random shapes and parameters (hypothesis)
# --------------------------------------------------------------------------

@st.composite
def conv_problems(draw):
    groups = draw(st.integers(1, 3))
    cg, kg = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    r, s = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    dilation = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    mode = draw(st.sampled_from(["zeros", "reflect", "replicate", "circular"]))
    kinds = ["int", "pair", "valid"] + (["same"] if stride == (1, 1) else [])
    kind = draw(st.sampled_from(kinds))
    if kind == "int":
        padding = draw(st.integers(0, 3))
        pads = (padding, padding)
    elif kind == "pair":
        padding = (draw(st.integers(0, 3)), draw(st.integers(0, 3)))
        pads = padding
    elif kind == "same":
        padding = "same"
        pads = tuple(d * (k - 1) - d * (k - 1) // 2 for d, k in zip(dilation, (r, s)))
    else:
        padding = "valid"
        pads = (0, 0)

    def size(k, d, p):
        low = max(1, d * (k - 1) + 1 - 2 * p)
        if mode == "reflect":
            low = max(low, p + 1)
        elif mode == "circular":
            low = max(low, p)
        return draw(st.integers(low, low + 12))

    h, w = size(r, dilation[0], pads[0]), size(s, dilation[1], pads[1])
    n = draw(st.integers(0, 3))
    dtype = draw(st.sampled_from(DTYPES))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    x = randn(rng, (n, groups * cg, h, w), dtype)
    if draw(st.booleans()):
        x = x[0] if n else x  # sometimes unbatched
    weight = randn(rng, (groups * kg, cg, r, s), dtype)
    bias = randn(rng, (groups * kg,), dtype) if draw(st.booleans()) else None
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=mode,
                  activation=draw(st.sampled_from([None] + ACTIVATION_NAMES)))
    return x, weight, bias, params


@settings(max_examples=150, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(problem=conv_problems(), algorithm=st.sampled_from(ALGORITHMS),
       isa_index=st.integers(0, 7))
def test_random_problems(problem, algorithm, isa_index):
    x, w, b, params = problem
    info = convcore.info()
    isas = [i for i in info["isas_supported"] if i in info.get("isas_compiled", [i])]
    previous = _core.get_isa()
    _core.set_isa(isas[isa_index % len(isas)])
    try:
        y = conv_and_check(x, w, b, algorithm=algorithm, **params)
    finally:
        _core.set_isa(previous)
    assert y.shape[:-2] == x.shape[:-3] + (w.shape[0],)


@settings(max_examples=40, deadline=None, database=None)
@given(shift=st.tuples(st.integers(-6, 6), st.integers(-6, 6)), seed=st.integers(0, 2**32 - 1),
       algorithm=st.sampled_from(ALGORITHMS))
def test_translation_equivariance_circular(shift, seed, algorithm):
    """With circular padding, shifting the image shifts the feature map (the lecture's claim)."""
    rng = np.random.default_rng(seed)
    x = randn(rng, (1, 3, 10, 12), np.float64)
    w = randn(rng, (4, 3, 3, 3), np.float64)
    params = dict(padding=1, padding_mode="circular", algorithm=algorithm)
    shifted = convcore.conv2d(np.roll(x, shift, axis=(2, 3)), w, **params)
    expected = np.roll(convcore.conv2d(x, w, **params), shift, axis=(2, 3))
    np.testing.assert_allclose(shifted, expected, rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# Many Python threads at once
# --------------------------------------------------------------------------

@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_concurrent_calls_from_python_threads(rng, algorithm):
    problems = []
    for i in range(8):
        c = 3 + i
        x = randn(rng, (2, c, 12 + i, 10), np.float32)
        w = randn(rng, (c, 1 if i % 2 else c, 3, 3), np.float32)
        problems.append((x, w, dict(padding=1, groups=c if i % 2 else 1, algorithm=algorithm)))
    serial = [convcore.conv2d(x, w, **p) for x, w, p in problems]
    with ThreadPoolExecutor(max_workers=4) as pool:
        for _ in range(3):
            results = list(pool.map(lambda a: convcore.conv2d(a[0], a[1], **a[2]), problems))
            for got, expected in zip(results, serial):
                np.testing.assert_array_equal(got, expected)
