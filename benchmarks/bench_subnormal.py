"""conv2d with subnormal weights (and subnormal inputs) beside the same call with normal
ones: a CPU that takes a microcode assist on subnormal operands would slow the kernels
many times over. The contract (issue "Hardening"): at most 2x slower. One ``group`` per
shape and algorithm; compare the ``operands=normal`` row with the others.
"""

import numpy as np
import pytest
from benchutil import check_conv, is_small, params

import convcore
from convcore import bench
from convcore.testing import anchors

SHAPES = [anchors()[k] for k in "afhe"]
TINY = np.float32(1e-39)  # below float32's smallest normal, 1.2e-38


@pytest.mark.parametrize("operands", ["normal", "subnormal-weights", "subnormal-inputs"])
@pytest.mark.parametrize("algorithm", ["direct", "im2col"])
@pytest.mark.parametrize("shape", params(SHAPES, cost=lambda s: s.flops))
def test_subnormal(run, shape, algorithm, operands):
    x, w = bench.conv_inputs(shape)
    if operands == "subnormal-weights":
        w = w * TINY
    elif operands == "subnormal-inputs":
        x = x * TINY
    kwargs = shape.conv2d_kwargs
    y = run(lambda: convcore.conv2d(x, w, **kwargs, algorithm=algorithm),
            group=f"{shape.name}-{algorithm}", flops=shape.flops, operands=operands)
    if is_small(shape.flops):
        check_conv(y, shape, x, w, f"{algorithm} with {operands} on {shape.name}")
