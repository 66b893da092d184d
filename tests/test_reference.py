"""Checks of ``convcore.testing`` itself: the reference must be right before
anything is measured against it.

Three independent witnesses: SciPy's ``correlate2d`` (single channel), a naive
seven-loop implementation written from the definition (every parameter), and
PyTorch when it is installed. Then the error bound: tight enough to catch a
wrong answer, loose enough for real float32 implementations.
"""

import numpy as np
import pytest
from scipy import signal

from convcore import testing
from convcore.testing import reference_conv2d, reference_conv2d_abs

PADDING_MODES = ["zeros", "reflect", "replicate", "circular"]


# --------------------------------------------------------------------------
# A naive implementation straight from the definition
# --------------------------------------------------------------------------

def _source_index(i, size, mode):
    """Where padded coordinate ``i`` (may be < 0 or >= size) reads from; None = zero."""
    if 0 <= i < size:
        return i
    if mode == "zeros":
        return None
    if mode == "replicate":
        return min(max(i, 0), size - 1)
    if mode == "circular":
        return i % size
    if mode == "reflect":  # one reflection, without repeating the edge
        return -i if i < 0 else 2 * (size - 1) - i
    raise ValueError(mode)


def naive_conv2d(x, w, b=None, stride=(1, 1), padding=(0, 0), dilation=(1, 1), groups=1,
                 padding_mode="zeros"):
    """Seven nested loops; ``padding`` is a pair or "same"/"valid"."""
    n_, c_, h_, w_ = x.shape
    k_, cg, r_, s_ = w.shape
    sh, sw = stride
    dh, dw = dilation
    if padding == "valid":
        top = bottom = left = right = 0
    elif padding == "same":
        # PyTorch: total padding d*(k-1), half before, the odd one after.
        total_h, total_w = dh * (r_ - 1), dw * (s_ - 1)
        top, left = total_h // 2, total_w // 2
        bottom, right = total_h - top, total_w - left
    else:
        top = bottom = padding[0]
        left = right = padding[1]
    ho = (h_ + top + bottom - dh * (r_ - 1) - 1) // sh + 1
    wo = (w_ + left + right - dw * (s_ - 1) - 1) // sw + 1
    kg = k_ // groups
    out = np.zeros((n_, k_, ho, wo))
    for n in range(n_):
        for k in range(k_):
            g = k // kg
            for oh in range(ho):
                for ow in range(wo):
                    acc = 0.0
                    for c in range(cg):
                        for r in range(r_):
                            for s in range(s_):
                                ih = _source_index(oh * sh - top + r * dh, h_, padding_mode)
                                iw = _source_index(ow * sw - left + s * dw, w_, padding_mode)
                                if ih is None or iw is None:
                                    continue
                                acc += float(x[n, g * cg + c, ih, iw]) * float(w[k, c, r, s])
                    out[n, k, oh, ow] = acc + (0.0 if b is None else float(b[k]))
    return out


def random_case(seed):
    """A tiny random convolution problem exercising every parameter."""
    rng = np.random.default_rng(seed)
    groups = int(rng.integers(1, 4))
    cg, kg = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    r, s = int(rng.integers(1, 5)), int(rng.integers(1, 5))
    stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    dilation = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
    mode = PADDING_MODES[seed % 4]
    kind = rng.choice(["int", "pair", "same", "valid"])
    if kind == "same" and stride != (1, 1):
        kind = "pair"
    if kind == "int":
        padding = int(rng.integers(0, 4))
        pads = (padding, padding)
    elif kind == "pair":
        padding = (int(rng.integers(0, 4)), int(rng.integers(0, 4)))
        pads = padding
    elif kind == "same":
        padding = "same"
        pads = (dilation[0] * (r - 1) - dilation[0] * (r - 1) // 2,
                dilation[1] * (s - 1) - dilation[1] * (s - 1) // 2)
    else:
        padding = "valid"
        pads = (0, 0)

    def size(k, d, p):
        need = max(1, d * (k - 1) + 1 - 2 * p)
        if mode == "reflect":
            need = max(need, p + 1)
        if mode == "circular":
            need = max(need, p)
        return need + int(rng.integers(0, 5))

    h, w = size(r, dilation[0], pads[0]), size(s, dilation[1], pads[1])
    x = rng.standard_normal((int(rng.integers(1, 3)), groups * cg, h, w))
    weight = rng.standard_normal((groups * kg, cg, r, s))
    bias = rng.standard_normal(groups * kg) if rng.random() < 0.7 else None
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=mode)
    return x, weight, bias, params


def naive_from_params(x, w, b, params):
    p = params["padding"]
    if isinstance(p, int):
        p = (p, p)
    return naive_conv2d(x, w, b, params["stride"], p, params["dilation"], params["groups"],
                        params["padding_mode"])


# --------------------------------------------------------------------------
# Against the naive loops
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(80))
def test_reference_matches_naive_random(seed):
    x, w, b, params = random_case(seed)
    ref = reference_conv2d(x, w, b, **params)
    np.testing.assert_allclose(ref, naive_from_params(x, w, b, params), rtol=1e-12, atol=1e-12,
                               err_msg=str(params))


@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("kernel", [(2, 2), (4, 3), (1, 4), (3, 5)])
@pytest.mark.parametrize("dilation", [(1, 1), (2, 3)])
def test_reference_same_padding_even_kernels(rng, mode, kernel, dilation):
    x = rng.standard_normal((1, 2, 9, 10))
    w = rng.standard_normal((3, 2) + kernel)
    ref = reference_conv2d(x, w, padding="same", dilation=dilation, padding_mode=mode)
    assert ref.shape == (1, 3, 9, 10)
    np.testing.assert_allclose(ref, naive_conv2d(x, w, None, (1, 1), "same", dilation, 1, mode),
                               rtol=1e-12, atol=1e-12)


def test_reference_unbatched_and_dtype(rng):
    x = rng.standard_normal((3, 6, 7)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    ref = reference_conv2d(x, w, padding=1)
    assert ref.dtype == np.float64
    assert ref.shape == (4, 6, 7)
    np.testing.assert_array_equal(ref, reference_conv2d(x[None], w, padding=1)[0])


def test_reference_empty_batch():
    ref = reference_conv2d(np.zeros((0, 2, 5, 5)), np.ones((3, 2, 3, 3)), padding=1, stride=2)
    assert ref.shape == (0, 3, 3, 3)


def test_reference_padding_larger_than_kernel(rng):
    x = rng.standard_normal((1, 2, 3, 4))
    w = rng.standard_normal((2, 2, 2, 2))
    b = np.array([0.5, -2.0])
    ref = reference_conv2d(x, w, b, padding=4)
    assert ref.shape == (1, 2, 10, 11)
    # Windows that lie entirely in the zero padding give the bias alone.
    np.testing.assert_array_equal(ref[0, :, 0, 0], b)
    np.testing.assert_allclose(ref, naive_conv2d(x, w, b, padding=(4, 4)), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("bad", [
    dict(padding="same", stride=2),
    dict(padding="full"),
    dict(padding=-1),
    dict(padding_mode="mirror"),
    dict(groups=2),
    dict(padding=3, padding_mode="reflect"),
])
def test_reference_rejects_bad_arguments(bad):
    with pytest.raises(ValueError):
        reference_conv2d(np.zeros((1, 3, 3, 3)), np.zeros((2, 3, 2, 2)), **bad)


# --------------------------------------------------------------------------
# Against SciPy (single channel)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("shape", [(5, 5), (8, 13), (17, 9)])
@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (2, 5), (5, 4)])
def test_reference_matches_scipy_valid_and_full(rng, shape, kernel):
    x = rng.standard_normal(shape)
    w = rng.standard_normal(kernel)
    valid = reference_conv2d(x[None, None], w[None, None])[0, 0]
    np.testing.assert_allclose(valid, signal.correlate2d(x, w, mode="valid"),
                               rtol=1e-12, atol=1e-12)
    full = reference_conv2d(x[None, None], w[None, None], padding=(kernel[0] - 1, kernel[1] - 1))
    np.testing.assert_allclose(full[0, 0], signal.correlate2d(x, w, mode="full"),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kernel", [(1, 1), (3, 3), (5, 3), (3, 7)])
def test_reference_matches_scipy_same_fill_and_wrap(rng, kernel):
    # For odd kernels SciPy's "same" centring agrees with PyTorch's.
    x = rng.standard_normal((11, 12))
    w = rng.standard_normal(kernel)
    same = reference_conv2d(x[None, None], w[None, None], padding="same")[0, 0]
    np.testing.assert_allclose(same, signal.correlate2d(x, w, mode="same"), rtol=1e-12, atol=1e-12)
    wrap = reference_conv2d(x[None, None], w[None, None], padding="same",
                            padding_mode="circular")[0, 0]
    np.testing.assert_allclose(wrap, signal.correlate2d(x, w, mode="same", boundary="wrap"),
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("dilation", [1, 2, 3])
def test_reference_matches_scipy_strided_dilated(rng, stride, dilation):
    # Dilation = correlation with a kernel spread out with zeros; stride = subsampling.
    x = rng.standard_normal((16, 15))
    w = rng.standard_normal((3, 2))
    spread = np.zeros((dilation * 2 + 1, dilation + 1))
    spread[::dilation, ::dilation] = w
    expected = signal.correlate2d(x, spread, mode="valid")[::stride, ::stride]
    ref = reference_conv2d(x[None, None], w[None, None], stride=stride, dilation=dilation)
    np.testing.assert_allclose(ref[0, 0], expected, rtol=1e-12, atol=1e-12)


def test_reference_matches_scipy_channel_sum(rng):
    x = rng.standard_normal((2, 4, 9, 8))
    w = rng.standard_normal((3, 4, 3, 2))
    b = rng.standard_normal(3)
    ref = reference_conv2d(x, w, b)
    for n in range(2):
        for k in range(3):
            expected = sum(signal.correlate2d(x[n, c], w[k, c], mode="valid") for c in range(4))
            np.testing.assert_allclose(ref[n, k], expected + b[k], rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------
# Against PyTorch
# --------------------------------------------------------------------------

def torch_conv2d(x, w, b, params):
    torch = pytest.importorskip("torch")
    conv = torch.nn.Conv2d(x.shape[1], w.shape[0], w.shape[2:], bias=b is not None,
                           dtype=torch.float64, **params)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(w))
        if b is not None:
            conv.bias.copy_(torch.from_numpy(b))
        return conv(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("seed", range(80))
def test_reference_matches_torch_random(seed):
    x, w, b, params = random_case(seed)
    np.testing.assert_allclose(reference_conv2d(x, w, b, **params), torch_conv2d(x, w, b, params),
                               rtol=1e-12, atol=1e-12, err_msg=str(params))


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("mode", PADDING_MODES)
@pytest.mark.parametrize("kernel", [(2, 2), (4, 3), (3, 3)])
def test_reference_matches_torch_same(rng, mode, kernel):
    x = rng.standard_normal((2, 3, 7, 8))
    w = rng.standard_normal((4, 3) + kernel)
    params = dict(padding="same", dilation=(2, 1), padding_mode=mode)
    np.testing.assert_allclose(reference_conv2d(x, w, **params), torch_conv2d(x, w, None, params),
                               rtol=1e-12, atol=1e-12)


def test_reference_matches_torch_functional(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((2, 6, 12, 11))
    w = rng.standard_normal((9, 2, 3, 4))
    b = rng.standard_normal(9)
    expected = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w),
                                          torch.from_numpy(b), stride=(2, 1), padding=(3, 1),
                                          dilation=(1, 2), groups=3).numpy()
    ref = reference_conv2d(x, w, b, stride=(2, 1), padding=(3, 1), dilation=(1, 2), groups=3)
    np.testing.assert_allclose(ref, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "abs", "square", "leaky_relu",
                                        ("sigmoid", 0.08, 50.0), ("leaky_relu", 0.2)])
def test_reference_activations_match_torch(rng, activation):
    torch = pytest.importorskip("torch")
    y = np.concatenate([rng.standard_normal(50) * 60 + 40, [np.nan, np.inf, -np.inf, 0.0]])
    t = torch.from_numpy(y)
    name = activation if isinstance(activation, str) else activation[0]
    expected = {
        "relu": lambda: torch.relu(t),
        "sigmoid": lambda: torch.sigmoid(t) if isinstance(activation, str)
        else torch.sigmoid(activation[1] * (t - activation[2])),
        "tanh": lambda: torch.tanh(t),
        "abs": lambda: torch.abs(t),
        "square": lambda: torch.square(t),
        "leaky_relu": lambda: torch.nn.functional.leaky_relu(
            t, 0.01 if isinstance(activation, str) else activation[1]),
    }[name]().numpy()
    np.testing.assert_allclose(testing.apply_activation(y, activation), expected, rtol=1e-14)


def test_activation_object_and_errors():
    class Spec:
        activation_spec = ("sigmoid", 0.08, 50.0)

    y = np.array([0.0, 50.0, 100.0])
    np.testing.assert_array_equal(testing.apply_activation(y, Spec()),
                                  testing.apply_activation(y, ("sigmoid", 0.08, 50.0)))
    with pytest.raises(ValueError):
        testing.apply_activation(y, "gelu")
    with pytest.raises(TypeError):
        testing.apply_activation(y, 3)


# --------------------------------------------------------------------------
# The absolute-value twin and the error bound
# --------------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_reference_abs(seed):
    x, w, b, params = random_case(seed)
    ref = reference_conv2d(x, w, b, **params)
    ref_abs = reference_conv2d_abs(x, w, b, **params)
    bb = None if b is None else np.abs(b)
    np.testing.assert_allclose(ref_abs, reference_conv2d(np.abs(x), np.abs(w), bb, **params),
                               rtol=1e-15)
    assert np.all(ref_abs >= np.abs(ref) * (1 - 1e-12))


def test_conv_tolerance_values():
    t32 = testing.conv_tolerance(100, np.float32)
    assert 102 * 2.0 ** -24 <= t32 < 103 * 2.0 ** -24
    assert testing.conv_tolerance(100, np.float64) < 1e-13
    assert testing.conv_tolerance(1000, np.float32) > t32
    assert testing.unit_roundoff(np.float32) == 2.0 ** -24
    assert testing.unit_roundoff(np.float64) == 2.0 ** -53


def _float32_im2col_conv(x, w, padding):
    """A float32-accumulating convolution (sgemm) — a stand-in for a real kernel."""
    x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    win = np.lib.stride_tricks.sliding_window_view(x, w.shape[2:], axis=(2, 3))
    cols = win.transpose(0, 2, 3, 1, 4, 5).reshape(-1, np.prod(w.shape[1:]))
    y = cols @ w.reshape(w.shape[0], -1).T
    n, _, ho, wo = win.shape[:4]
    return y.reshape(n, ho, wo, -1).transpose(0, 3, 1, 2)


def test_bound_accepts_float32_computation(rng):
    x = rng.standard_normal((2, 64, 10, 10)).astype(np.float32)
    w = rng.standard_normal((32, 64, 3, 3)).astype(np.float32)
    actual = _float32_im2col_conv(x, w, 1)
    assert actual.dtype == np.float32
    testing.check_conv2d(actual, x, w, padding=1)
    # The bound is not vacuous: the float32 result really differs from float64.
    assert np.any(actual != reference_conv2d(x, w, padding=1).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", [None, "relu", "sigmoid", "tanh", "abs", "square",
                                        "leaky_relu", ("sigmoid", 0.08, 50.0)])
def test_bound_accepts_torch_float(rng, dtype, activation):
    """An optimised implementation (PyTorch/oneDNN, activation in its own dtype) passes."""
    torch = pytest.importorskip("torch")
    x = (rng.standard_normal((2, 48, 12, 12)) * 30 + 40).astype(dtype)
    w = rng.standard_normal((16, 48, 3, 3)).astype(dtype)
    b = rng.standard_normal(16).astype(dtype)
    y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(w), torch.from_numpy(b),
                                   padding=1)
    spec = testing._activation_spec(activation)
    if spec is not None:
        name, a, bb = spec
        y = {"relu": lambda: torch.relu(y), "sigmoid": lambda: torch.sigmoid(a * (y - bb)),
             "tanh": lambda: torch.tanh(y), "abs": lambda: torch.abs(y),
             "square": lambda: torch.square(y),
             "leaky_relu": lambda: torch.nn.functional.leaky_relu(y, a)}[name]()
    testing.check_conv2d(y.numpy(), x, w, b, padding=1, activation=activation)


def test_bound_rejects_wrong_answers(rng):
    x = rng.standard_normal((1, 8, 6, 6)).astype(np.float32)
    w = rng.standard_normal((4, 8, 3, 3)).astype(np.float32)
    ref = reference_conv2d(x, w)
    ref_abs = reference_conv2d_abs(x, w)
    good = ref.astype(np.float32)
    testing.assert_conv_close(good, ref, ref_abs, 72, np.float32)

    bad = good.copy()
    bound = testing.conv_tolerance(72, np.float32) * ref_abs[0, 2, 1, 3]
    bad[0, 2, 1, 3] += np.float32(4 * bound + 1e-6)
    with pytest.raises(AssertionError, match=r"index \(0, 2, 1, 3\)"):
        testing.assert_conv_close(bad, ref, ref_abs, 72, np.float32)

    bad = good.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(AssertionError, match="outside the error bound"):
        testing.assert_conv_close(bad, ref, ref_abs, 72, np.float32)

    with pytest.raises(AssertionError, match="shape"):
        testing.assert_conv_close(good[0], ref, ref_abs, 72, np.float32)

    with pytest.raises(AssertionError, match="dtype"):
        testing.check_conv2d(good.astype(np.float64), x, w)


def test_bound_checks_nan_and_inf_positions(rng):
    x = rng.standard_normal((1, 2, 6, 6))
    x[0, 0, 2, 2] = np.nan
    x[0, 1, 5, 5] = np.inf
    w = rng.standard_normal((3, 2, 2, 2)) + 3.0  # positive: Inf stays Inf
    ref = reference_conv2d(x, w)
    assert np.isnan(ref[0, :, 1:3, 1:3]).all() and np.isinf(ref[0, :, 4, 4]).all()
    testing.check_conv2d(ref.copy(), x, w)
    moved = ref.copy()
    moved[0, 0, 0, 0] = np.nan
    with pytest.raises(AssertionError):
        testing.check_conv2d(moved, x, w)
    lost = ref.copy()
    lost[0, 1, 1, 1] = 0.0
    with pytest.raises(AssertionError, match="non-finite"):
        testing.check_conv2d(lost, x, w)
    flipped = ref.copy()
    flipped[0, 2, 4, 4] = -np.inf
    with pytest.raises(AssertionError, match="non-finite"):
        testing.check_conv2d(flipped, x, w)
    # Through an activation: sigmoid(+inf) is exactly 1, relu(nan) is nan.
    testing.check_conv2d(testing.apply_activation(ref, "sigmoid"), x, w, activation="sigmoid")
    testing.check_conv2d(testing.apply_activation(ref, "relu"), x, w, activation="relu")


# --------------------------------------------------------------------------
# Named shapes
# --------------------------------------------------------------------------

ANCHOR_TABLE = {  # ANCHORS.md: N, C, H, W, K, R(=S), stride, pad, groups
    "a": (1, 64, 56, 56, 64, 3, 1, 1, 1),
    "b": (8, 64, 56, 56, 64, 3, 1, 1, 1),
    "c": (1, 3, 224, 224, 64, 7, 2, 3, 1),
    "d": (1, 256, 14, 14, 256, 3, 1, 1, 1),
    "e": (1, 256, 56, 56, 64, 1, 1, 0, 1),
    "f": (1, 128, 56, 56, 128, 3, 1, 1, 128),
    "g": (1, 1, 1024, 1024, 1, 3, 1, 1, 1),
    "h": (64, 1, 28, 28, 8, 5, 1, 0, 1),
    "i": (1, 3, 227, 227, 96, 11, 4, 0, 1),
}


def test_anchor_shapes_match_table():
    found = testing.anchors()
    assert sorted(found) == sorted(ANCHOR_TABLE)
    for letter, (n, c, h, w, k, r, stride, pad, groups) in ANCHOR_TABLE.items():
        s = found[letter]
        assert (s.n, s.c, s.h, s.w, s.k, s.r, s.s, s.stride, s.padding, s.dilation, s.groups) == \
            (n, c, h, w, k, r, r, stride, pad, 1, groups), letter
        assert testing.shape(s.name) is s


def test_shapes_are_consistent():
    names = [s.name for s in testing.SHAPES]
    assert len(set(names)) == len(names)
    assert 16 <= len(testing.SHAPES) <= 40
    for s in testing.SHAPES:
        assert s.c % s.groups == 0 and s.k % s.groups == 0, s.name
        ho, wo = s.out_hw
        assert ho >= 1 and wo >= 1, s.name
        assert s.weight_shape == (s.k, s.c // s.groups, s.r, s.s)
        assert s.input_shape == (s.n, s.c, s.h, s.w)
        assert s.output_shape == (s.n, s.k, ho, wo)
        assert s.flops == 2 * s.n * s.k * (s.c // s.groups) * s.r * s.s * ho * wo
    assert testing.shape("resnet18-layer1.0.conv1").flops == 2 * 64 * 64 * 9 * 56 * 56
    assert testing.shape("mobilenetv2-block2.dw").weight_shape == (96, 1, 3, 3)
    assert testing.shape("alexnet-conv1").out_hw == (55, 55)
    assert testing.shape("resnet18-conv1").out_hw == (112, 112)
    with pytest.raises(KeyError):
        testing.shape("no-such-layer")


@pytest.mark.parametrize("name", ["lenet-conv1", "lenet-conv2", "resnet18-layer4.0.conv2"])
def test_shape_output_matches_reference(rng, name):
    s = testing.shape(name)
    x = rng.standard_normal(s.input_shape)
    w = rng.standard_normal(s.weight_shape)
    assert reference_conv2d(x, w, **s.conv2d_kwargs).shape == s.output_shape
