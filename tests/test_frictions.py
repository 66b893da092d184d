"""What a new user meets first (issue 19, item 8): array-likes take the weights' dtype,
errors that say how to fix them (uint8 images, channels-last arrays, which layer of a
Sequential failed, summary without a shape), and docstrings that list the allowed
values. Results are checked against the float64 reference."""

import numpy as np
import pytest

import convcore
from convcore import layers as L
from convcore.functional import ACTIVATIONS, ALGORITHMS, PADDING_MODES
from convcore.testing import check_conv2d


def test_list_input_takes_the_weights_dtype():
    x = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    w = np.ones((3, 2, 3, 3), np.float32)
    y = convcore.conv2d(x.tolist(), w)  # a list: converted to float32, not float64
    assert y.dtype == np.float32
    check_conv2d(y, x, w)
    y64 = convcore.conv2d(x.tolist(), w.astype(np.float64).tolist())  # no array: float64
    assert y64.dtype == np.float64
    out = convcore.linear([[1.0, 2.0]], np.ones((3, 2), np.float32))
    assert out.dtype == np.float32 and out.tolist() == [[3.0, 3.0, 3.0]]


def test_layers_convert_lists_to_their_dtype():
    conv = L.Conv2d(1, 2, 3, seed=0, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((1, 5, 5))
    np.testing.assert_array_equal(conv(x.tolist()), conv(x))
    net = L.Sequential(L.Flatten(), L.Dense(4, 2, seed=0))  # Dense: float32
    assert net([[[1.0, 2.0], [3.0, 4.0]]]).dtype == np.float32


def test_uint8_image_error_says_how_to_convert():
    img = np.zeros((1, 1, 8, 8), np.uint8)
    with pytest.raises(TypeError, match=r"uint8.*\.astype\(np\.float32\)"):
        convcore.conv2d(img, np.ones((1, 1, 3, 3), np.float32))
    with pytest.raises(TypeError, match=r"\.astype\(np\.float32\)"):
        L.Conv2d(1, 1, 3)(img)


@pytest.mark.parametrize("batched", [True, False])
def test_channels_last_input_gets_a_layout_hint(batched):
    x = np.zeros((2, 8, 9, 3) if batched else (8, 9, 3), np.float32)  # NHWC / HWC
    w = np.ones((4, 3, 3, 3), np.float32)
    order = r"\(0, 3, 1, 2\)" if batched else r"\(2, 0, 1\)"
    with pytest.raises(ValueError, match=rf"channels-last.*transpose{order}"):
        convcore.conv2d(x, w)
    # the hint's transpose is the fix
    fixed = convcore.conv2d(x.transpose((0, 3, 1, 2) if batched else (2, 0, 1)), w)
    assert fixed.shape[-3] == 4
    with pytest.raises(ValueError, match="channels-last"):
        convcore.locally_connected2d(x, np.ones((6, 7, 4, 3, 3, 3), np.float32))


def test_a_real_channel_mismatch_is_not_called_channels_last():
    x = np.zeros((1, 5, 8, 8), np.float32)
    with pytest.raises(ValueError) as excinfo:
        convcore.conv2d(x, np.ones((4, 3, 3, 3), np.float32))
    assert "channels-last" not in str(excinfo.value)


def test_sequential_error_names_the_layer():
    net = L.Sequential(L.Conv2d(1, 4, 3, seed=0), L.ReLU(), L.Flatten(), L.Dense(10, 2, seed=0))
    with pytest.raises(ValueError, match=r"Sequential layer \(3\) Dense\(in_features=10") as e:
        net(np.zeros((1, 1, 6, 6), np.float32))
    assert "(..., 10)" in str(e.value)  # the layer's own message follows
    with pytest.raises(ValueError, match=r"Sequential layer \(3\) Dense"):
        net.summary((1, 6, 6))
    with pytest.raises(TypeError, match=r"Sequential layer \(0\) Conv2d\(1, 4"):
        net(np.zeros((1, 1, 6, 6), np.float64))


def test_nested_sequential_names_both_levels():
    inner = L.Sequential(L.Flatten(), L.Dense(3, 2, seed=0))
    net = L.Sequential(L.ReLU(), inner)
    with pytest.raises(ValueError, match=r"layer \(1\) Sequential: Sequential layer \(1\) Dense"):
        net(np.zeros((1, 5), np.float32))


def test_summary_without_input_shape():
    with pytest.raises(TypeError, match=r"summary\(\) needs input_shape.*Conv2d\(1, 6"):
        L.Sequential(L.Conv2d(1, 6, 5), L.ReLU()).summary()
    s = L.Sequential(L.Dense(8, 4, seed=0), L.ReLU(), L.Dense(4, 2, seed=0)).summary()
    assert s.totals["params"] == 8 * 4 + 4 + 4 * 2 + 2
    assert s.totals["output_shape"] == (1, 2)
    with pytest.raises(TypeError, match="needs input_shape"):
        L.Sequential().summary()


@pytest.mark.parametrize("fn", [convcore.conv2d, L.Conv2d])
def test_docstrings_list_the_allowed_values(fn):
    doc = fn.__doc__
    for value in PADDING_MODES + ACTIVATIONS:
        assert f'"{value}"' in doc, value
    if fn is convcore.conv2d:
        for value in ALGORITHMS:
            assert f'"{value}"' in doc, value


@pytest.mark.parametrize("name", ["conv2d", "linear", "locally_connected2d", "max_pool2d",
                                  "relu"])
def test_public_functions_document_their_errors(name):
    assert "TypeError" in getattr(convcore, name).__doc__


def test_only_real_number_lists_are_converted():
    w = np.ones((1, 1, 1, 1), np.float32)
    with pytest.raises(TypeError, match="complex128"):
        convcore.conv2d([[[1 + 2j]]], w)  # never silently dropping the imaginary part
    with pytest.raises(TypeError, match="bool"):
        convcore.conv2d([[[True]]], w)
    with pytest.raises(ValueError):
        convcore.conv2d([[[1.0, 2.0], [3.0]]], w)  # ragged
