"""Element-wise activations (relu, sigmoid, tanh, abs, square, leaky_relu) on arrays the
size of each SHAPES layer's output (deduplicated): convcore beside NumPy and PyTorch.
``extra_info`` carries Gelements/s (an activation is memory-bound, not FMA-bound).
One ``group`` per array and activation.
"""

import numpy as np
import pytest
from benchutil import assert_matches, is_small, make_or_skip, params

import convcore
from convcore import bench
from convcore.testing import SHAPES

CASES = list({s.output_shape: s for s in SHAPES}.values())

NUMPY = {
    "relu": lambda x: np.maximum(x, 0),
    "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
    "tanh": np.tanh,
    "abs": np.abs,
    "square": np.square,
    "leaky_relu": lambda x: np.where(x >= 0, x, x * np.asarray(0.01, x.dtype)),
}


def _numpy(name, x):
    f = NUMPY[name]
    return lambda: f(x)


def _convcore(name, x):
    f = getattr(convcore, name)
    return lambda: f(x)


def _torch(name, x):
    torch = bench.require("torch")
    xt = torch.from_numpy(x)
    f = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh, "abs": torch.abs,
         "square": torch.square,
         "leaky_relu": torch.nn.functional.leaky_relu}[name]

    def run():
        with torch.inference_mode():
            return f(xt).numpy()

    return run


IMPLS = {"convcore": _convcore, "numpy": _numpy, "torch": _torch}


def _elements(s):
    return int(np.prod(s.output_shape))


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("activation", list(NUMPY))
# Cost: a sigmoid takes some 20 operations per element in NumPy and in the check.
@pytest.mark.parametrize("shape", params(CASES, cost=lambda s: 20 * _elements(s),
                                         name=lambda s: f"{s.name}-output"))
def test_activation(run, shape, activation, impl):
    x = np.random.default_rng(0).standard_normal(shape.output_shape, dtype=np.float32)
    fn = make_or_skip(IMPLS[impl], activation, x)
    y = run(fn, group=f"{activation} {shape.name}-output", elements=x.size, impl=impl)
    if is_small(20 * x.size):
        expected = NUMPY[activation](x.astype(np.float64))
        assert_matches(y, expected, np.abs(expected) + 1, f"{impl} {activation}")
