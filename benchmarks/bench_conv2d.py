"""conv2d on every shape of convcore.testing.SHAPES: convcore's direct, im2col and auto
algorithms beside every installed peer (NumPy sliding-window + matmul and einsum, SciPy
correlate2d and ndimage, OpenCV filter2D, the dense-matrix equivalent, PyTorch, ONNX
Runtime); one ``group`` per shape, so the implementations of a shape sit side by side.
float32, NCHW, output allocated per call. The implementations live in convcore.bench.
"""

import pytest
from benchutil import check_conv, is_small, make_or_skip, params

from convcore import bench
from convcore.testing import SHAPES


@pytest.mark.parametrize("impl", list(bench.CONV2D))
@pytest.mark.parametrize("shape", params(SHAPES, cost=lambda s: s.flops))
def test_conv2d(run, shape, impl):
    x, w = bench.conv_inputs(shape)
    fn = make_or_skip(bench.CONV2D[impl], shape, x, w)
    y = run(fn, group=shape.name, flops=shape.flops, impl=impl, anchor=shape.anchor)
    if is_small(shape.flops):
        check_conv(y, shape, x, w, f"{impl} on {shape.name}")
