"""Per-call overhead: a conv2d on one 1x1x4x4 image with a 3x3 filter (72 FLOP, so the
time is all call overhead) through ``convcore.conv2d`` and a ``layers.Conv2d`` in eval
mode, beside PyTorch's ``F.conv2d`` and ``nn.Conv2d``; ``relu`` on 16 floats beside NumPy
and PyTorch. Run with ``--convcore-threads 1`` and ``2``: a tiny call runs on the caller's
thread either way. One ``group`` per operation; compare the medians within a group.
"""

import numpy as np
import pytest
from benchutil import assert_matches, make_or_skip

import convcore
from convcore import bench, layers
from convcore.testing import reference_conv2d, reference_conv2d_abs

X = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
W = np.linspace(-1, 1, 9, dtype=np.float32).reshape(1, 1, 3, 3)
FLOPS = 2 * 2 * 2 * 9  # Ho * Wo * (multiply + add) * taps


def _convcore_functional():
    return lambda: convcore.conv2d(X, W)


def _convcore_layer():
    layer = layers.Conv2d(1, 1, 3, bias=False).eval()
    layer.weight = W.copy()
    return lambda: layer(X)


def _torch_functional():
    torch = bench.require("torch")
    xt, wt = torch.from_numpy(X), torch.from_numpy(W)

    def run():
        with torch.inference_mode():
            return torch.nn.functional.conv2d(xt, wt).numpy()

    return run


def _torch_layer():
    torch = bench.require("torch")
    layer = torch.nn.Conv2d(1, 1, 3, bias=False).eval()
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(W))
    xt = torch.from_numpy(X)

    def run():
        with torch.inference_mode():
            return layer(xt).numpy()

    return run


CONV = {"convcore": _convcore_functional, "convcore-layer": _convcore_layer,
        "torch": _torch_functional, "torch-layer": _torch_layer}


@pytest.mark.parametrize("impl", list(CONV))
def test_conv2d_tiny(run, impl):
    fn = make_or_skip(CONV[impl])
    y = run(fn, group="conv2d 1x1x4x4 3x3", flops=FLOPS, impl=impl)
    x64, w64 = X.astype(np.float64), W.astype(np.float64)
    assert_matches(y, reference_conv2d(x64, w64), reference_conv2d_abs(x64, w64),
                   f"{impl} conv2d")


R = np.linspace(-1, 1, 16, dtype=np.float32)


def _relu_torch():
    torch = bench.require("torch")
    xt = torch.from_numpy(R)

    def run():
        with torch.inference_mode():
            return torch.relu(xt).numpy()

    return run


RELU = {"convcore": lambda: (lambda: convcore.relu(R)),
        "numpy": lambda: (lambda: np.maximum(R, 0)),
        "torch": _relu_torch}


@pytest.mark.parametrize("impl", list(RELU))
def test_relu_tiny(run, impl):
    fn = make_or_skip(RELU[impl])
    y = run(fn, group="relu 16 floats", elements=R.size, impl=impl)
    assert np.array_equal(y, np.maximum(R, 0))
