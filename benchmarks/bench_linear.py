"""linear (``x @ weight.T + bias``): convcore beside NumPy matmul and PyTorch F.linear,
on the fully connected layers of the networks SHAPES comes from, and on every 1x1
stride-1 conv of SHAPES seen as a linear layer over channels ((N*H*W, C) -> K).
FLOPs = 2 * rows * in * out; one ``group`` per layer.
"""

import dataclasses

import numpy as np
import pytest
from benchutil import assert_matches, is_small, make_or_skip, params

import convcore
from convcore import bench
from convcore.testing import SHAPES


@dataclasses.dataclass(frozen=True)
class LinearShape:
    name: str
    rows: int
    n_in: int
    n_out: int

    @property
    def flops(self):
        return 2 * self.rows * self.n_in * self.n_out


LAYERS = [
    LinearShape("lenet-fc1", 1, 400, 120),
    LinearShape("lenet-fc1-b64", 64, 400, 120),
    LinearShape("resnet18-fc", 1, 512, 1000),
    LinearShape("resnet50-fc-b8", 8, 2048, 1000),
    LinearShape("alexnet-fc6", 1, 9216, 4096),
    LinearShape("alexnet-fc7-b8", 8, 4096, 4096),
] + [LinearShape(f"{s.name}-as-linear", s.n * s.h * s.w, s.c, s.k) for s in SHAPES
     if s.r == s.s == 1 and s.stride == 1 and s.groups == 1]


def _inputs(s):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((s.rows, s.n_in), dtype=np.float32)
    w = rng.standard_normal((s.n_out, s.n_in), dtype=np.float32)
    b = rng.standard_normal(s.n_out, dtype=np.float32)
    return x, w, b


def _convcore(x, w, b):
    return lambda: convcore.linear(x, w, b)


def _numpy(x, w, b):
    return lambda: x @ w.T + b


def _torch(x, w, b):
    torch = bench.require("torch")
    xt, wt, bt = (torch.from_numpy(a) for a in (x, w, b))

    def run():
        with torch.inference_mode():
            return torch.nn.functional.linear(xt, wt, bt).numpy()

    return run


IMPLS = {"convcore": _convcore, "numpy-matmul": _numpy, "torch": _torch}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", params(LAYERS, cost=lambda s: s.flops))
def test_linear(run, shape, impl):
    x, w, b = _inputs(shape)
    fn = make_or_skip(IMPLS[impl], x, w, b)
    y = run(fn, group=shape.name, flops=shape.flops, impl=impl)
    if is_small(shape.flops):
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        assert_matches(y, x64 @ w64.T + b, np.abs(x64) @ np.abs(w64).T + np.abs(b),
                       f"{impl} on {shape.name}")
