"""max_pool2d and avg_pool2d on the inputs of SHAPES (deduplicated), 2x2 stride 2 and
3x3 stride 2 padding 1: convcore beside NumPy (sliding-window view + max / mean) and
PyTorch. Pooling does no multiply-adds: ``extra_info`` carries Gelements/s, the window
elements read (N*C*Ho*Wo*k*k) per second. One ``group`` per input and pooling.
"""

import dataclasses

import numpy as np
import pytest
from benchutil import assert_matches, is_small, make_or_skip, params

import convcore
from convcore import bench
from convcore.testing import SHAPES


@dataclasses.dataclass(frozen=True)
class Pool:
    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    stride: int
    padding: int

    @property
    def out_hw(self):
        return tuple((d + 2 * self.padding - self.k) // self.stride + 1 for d in (self.h, self.w))

    @property
    def elements(self):
        ho, wo = self.out_hw
        return self.n * self.c * ho * wo * self.k * self.k


CASES = [Pool(f"{s.name}-input-{k}x{k}s2p{p}", s.n, s.c, s.h, s.w, k, 2, p)
         for s in {(s.n, s.c, s.h, s.w): s for s in SHAPES}.values() if min(s.h, s.w) >= 3
         for k, p in ((2, 0), (3, 1))]


def _numpy(op, p, x):
    fill = -np.inf if op == "max" else 0.0
    pad = ((0, 0), (0, 0), (p.padding,) * 2, (p.padding,) * 2)

    def run():
        xp = np.pad(x, pad, constant_values=fill) if p.padding else x
        v = np.lib.stride_tricks.sliding_window_view(xp, (p.k, p.k), axis=(2, 3))
        v = v[:, :, ::p.stride, ::p.stride]
        return v.max(axis=(4, 5)) if op == "max" else v.mean(axis=(4, 5), dtype=x.dtype)

    return run


def _convcore(op, p, x):
    pool = getattr(convcore, f"{op}_pool2d")
    return lambda: pool(x, p.k, p.stride, p.padding)


def _torch(op, p, x):
    torch = bench.require("torch")
    pool = getattr(torch.nn.functional, f"{op}_pool2d")
    xt = torch.from_numpy(x)

    def run():
        with torch.inference_mode():
            return pool(xt, p.k, p.stride, p.padding).numpy()

    return run


IMPLS = {"convcore": _convcore, "numpy": _numpy, "torch": _torch}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("op", ["max", "avg"])
# Cost: ~64 operations per window element in the NumPy peer and the checks.
@pytest.mark.parametrize("case", params(CASES, cost=lambda p: 64 * p.elements))
def test_pool2d(run, case, op, impl):
    x = np.random.default_rng(0).standard_normal((case.n, case.c, case.h, case.w),
                                                 dtype=np.float32)
    fn = make_or_skip(IMPLS[impl], op, case, x)
    y = run(fn, group=f"{op}-pool {case.name}", elements=case.elements, impl=impl)
    if is_small(64 * case.elements):
        expected = _numpy(op, case, x.astype(np.float64))()
        assert_matches(y, expected, np.full(expected.shape, np.abs(x).max()),
                       f"{impl} {op}-pool on {case.name}")
