"""The cost of full connectivity: a conv layer (3 -> 16 channels, 3x3, padding 1), the
equivalent locally connected layer and the equivalent fully connected (dense) layer on
one image from 8x8 to 256x256; one ``group`` per image size. ``extra_info`` carries each
layer's parameters, weight bytes and MACs. The dense layer (its matrix from
convcore.conv2d_dense_matrix, NumPy matmul) is timed while the matrix fits
convcore.bench.DENSE_BUDGET; beyond, the test skips and ``python -m convcore bench``
reports the time estimated from the measured bandwidth, marked "est.".
Also the permutation experiment, checked: a dense layer with its columns permuted like
the pixels gives the same output; a conv's output changes.
"""

import numpy as np
import pytest
from benchutil import is_small, make_or_skip, params

import convcore
from convcore import bench

R = bench.SWEEP_R


def _conv(s, x, w):
    return lambda: convcore.conv2d(x, w, padding=R // 2)


def _locally_connected(s, x, w):
    return bench.locally_connected(x, w, R)


def _dense(s, x, w):
    return bench.dense_matmul(s, x, w)


LAYERS = {"conv": _conv, "locally connected": _locally_connected, "dense": _dense}


def _cost(size):
    """Rough operations of the case and its check: the dense matrix has 48 * size**4
    entries; building it and the reference dominate from 32x32 on."""
    return 4e4 * size * size


@pytest.mark.parametrize("layer", list(LAYERS))
@pytest.mark.parametrize("size", params(bench.SWEEP_SIZES, cost=_cost, name=lambda n: f"{n}x{n}"))
def test_cost_of_full_connectivity(run, size, layer):
    s = bench.sweep_shape(size)
    x, w = bench.conv_inputs(s)
    fn = make_or_skip(LAYERS[layer], s, x, w)
    costs = bench.sweep_costs(size)[layer]
    y = run(fn, group=f"{size}x{size}", flops=2 * costs.macs, layer=layer, params=costs.params,
            weight_bytes=costs.weight_bytes, macs=costs.macs)
    if is_small(_cost(size)):
        np.testing.assert_allclose(y, convcore.conv2d(x, w, padding=R // 2), rtol=1e-4, atol=1e-4)


def test_permutation_experiment():
    p = bench.permutation_experiment()
    assert p.dense_vs_conv < 1e-12
    assert p.dense_permuted < 1e-12
    assert p.conv_permuted > 0.1
