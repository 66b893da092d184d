"""locally_connected2d (one filter bank per output position) on the SHAPES it fits:
convcore beside NumPy (sliding-window view + einsum) and PyTorch's unfold + einsum
recipe; one ``group`` per shape. The filters are the conv's, copied to every position,
so the result is checked against the conv reference. Shapes with groups, or whose
(Ho, Wo, K, C, R, S) weights exceed WEIGHT_BUDGET, are left out.
"""

import numpy as np
import pytest
from benchutil import check_conv, is_small, make_or_skip, params

import convcore
from convcore import bench
from convcore.testing import SHAPES

WEIGHT_BUDGET = 512 << 20


def weight_bytes(s):
    ho, wo = s.out_hw
    return ho * wo * s.k * s.c * s.r * s.s * 4


FITTING = [s for s in SHAPES if s.groups == 1 and weight_bytes(s) <= WEIGHT_BUDGET]


def _inputs(s):
    x, w = bench.conv_inputs(s)
    ho, wo = s.out_hw
    return x, w, np.ascontiguousarray(np.broadcast_to(w, (ho, wo) + w.shape))


def _convcore(s, x, lc_w):
    return lambda: convcore.locally_connected2d(x, lc_w, stride=s.stride, padding=s.padding, dilation=s.dilation)


def _numpy(s, x, lc_w):
    def run():
        v = bench.windows(s, bench.padded(s, x))[:, 0]  # (N, C, Ho, Wo, R, S)
        return np.einsum("nchwrs,hwkcrs->nkhw", v, lc_w, optimize=True)

    return run


def _torch(s, x, lc_w):
    torch = bench.require("torch")
    ho, wo = s.out_hw
    xt = torch.from_numpy(x)
    wt = torch.from_numpy(lc_w.reshape(ho * wo, s.k, -1))  # (L, K, C*R*S)

    def run():
        with torch.inference_mode():
            cols = torch.nn.functional.unfold(xt, (s.r, s.s), dilation=s.dilation,
                                              padding=s.padding, stride=s.stride)
            return torch.einsum("ncl,lkc->nkl", cols, wt).reshape(s.n, s.k, ho, wo).numpy()

    return run


IMPLS = {"convcore": _convcore, "numpy-einsum": _numpy, "torch-unfold-einsum": _torch}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", params(FITTING, cost=lambda s: max(s.flops, weight_bytes(s))))
def test_locally_connected2d(run, shape, impl):
    x, w, lc_w = _inputs(shape)
    fn = make_or_skip(IMPLS[impl], shape, x, lc_w)
    y = run(fn, group=shape.name, flops=shape.flops, impl=impl, weight_bytes=weight_bytes(shape))
    if is_small(shape.flops):
        check_conv(y, shape, x, w, f"{impl} on {shape.name}")
