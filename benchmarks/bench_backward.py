"""conv2d_backward (grad_input + grad_weight, as training needs for a hidden layer) on the
anchor shapes a, b, d, e, f, h of convcore.testing.SHAPES, beside PyTorch's
``torch.ops.aten.convolution_backward`` on the same arrays (output_mask grad_input and
grad_weight), and convcore's own forward conv2d of the shape (the targets compare backward
with it: at most 2.3x on a, b and d). One ``group`` per shape. FLOPs = 2x the forward's
(grad_input and grad_weight each cost one forward). float32, NCHW.
"""

import numpy as np
import pytest
from benchutil import assert_matches, is_small, make_or_skip, params

import convcore
from convcore import bench
from convcore.testing import anchors, reference_conv2d_backward

SHAPES = [anchors()[k] for k in "abdefh"]
MASK = (True, True, False)


def _inputs(s):
    x, w = bench.conv_inputs(s)
    y = convcore.conv2d(x, w, **s.conv2d_kwargs)
    g = np.random.default_rng(1).standard_normal(y.shape, dtype=np.float32)
    return g, x, w


def _convcore(s, g, x, w):
    return lambda: convcore.conv2d_backward(g, x, w, output_mask=MASK, **s.conv2d_kwargs)[:2]


def _convcore_forward(s, g, x, w):
    return lambda: convcore.conv2d(x, w, **s.conv2d_kwargs)


def _torch(s, g, x, w):
    torch = bench.require("torch")
    tg, tx, tw = (torch.from_numpy(a) for a in (g, x, w))

    def run():
        with torch.inference_mode():
            gi, gw, _ = torch.ops.aten.convolution_backward(
                tg, tx, tw, None, [s.stride] * 2, [s.padding] * 2, [s.dilation] * 2, False,
                [0, 0], s.groups, list(MASK))
            return gi.numpy(), gw.numpy()

    return run


IMPLS = {"convcore": _convcore, "torch": _torch, "convcore-forward": _convcore_forward}


@pytest.mark.parametrize("impl", list(IMPLS))
@pytest.mark.parametrize("shape", params(SHAPES, cost=lambda s: 2 * s.flops))
def test_conv2d_backward(run, shape, impl):
    g, x, w = _inputs(shape)
    fn = make_or_skip(IMPLS[impl], shape, g, x, w)
    flops = shape.flops if impl == "convcore-forward" else 2 * shape.flops
    out = run(fn, group=shape.name, flops=flops, impl=impl, anchor=shape.anchor)
    if is_small(2 * shape.flops) and impl != "convcore-forward":
        kw = shape.conv2d_kwargs
        ref = reference_conv2d_backward(g, x, w, **kw)
        ref_abs = reference_conv2d_backward(np.abs(g), np.abs(x), np.abs(w), **kw)
        for got, want, want_abs, name in zip(out, ref, ref_abs, ("grad_input", "grad_weight")):
            assert_matches(got, want, want_abs, f"{impl} {name} on {shape.name}")


def test_backward_workspace_is_reported(threads):
    """workspace_bytes of every shape: bounded (16 MiB), recorded for the report."""
    for s in SHAPES:
        ws = convcore.functional.conv2d_backward_workspace_bytes(
            s.input_shape, s.weight_shape, **s.conv2d_kwargs)
        assert ws <= 16 << 20, (s.name, ws)
