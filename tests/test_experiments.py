"""convcore.experiments (the connectivity and permutation experiments shared by the demo
and the report), the report's dense-layer estimate and plot, and the demo's labels
(issue 19 items 3, 4 and 6; issue 13 item 5)."""

import math

import numpy as np
import pytest

import convcore
from convcore import bench, demo, experiments
from convcore import layers as L


@pytest.mark.parametrize("c, k, r, hw", [(3, 16, 3, (8, 8)), (1, 1, 3, (5, 7)),
                                         (2, 4, (3, 5), (6, 9)), (4, 2, 1, (3, 3))])
def test_costs_are_the_layers_counts(c, k, r, hw):
    """The formulas used beyond the budget give what the layers themselves count."""
    rs = (r, r) if isinstance(r, int) else r
    counts = experiments.costs(c, k, rs, hw)
    conv = L.Conv2d(c, k, rs, padding="same", seed=0)
    lc, dense = conv.to_locally_connected(hw), conv.to_dense((c,) + hw)
    chw = (c,) + hw
    for kind, layer, shape in (("conv", conv, chw), ("locally connected", lc, chw),
                               ("dense", dense, (c * hw[0] * hw[1],))):
        assert counts[kind].params == layer.num_params, kind
        assert counts[kind].macs == layer.macs(shape), kind
        assert counts[kind].weight_bytes == 4 * layer.num_params


def test_connectivity_builds_within_the_budget_and_agrees():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 10, 12)).astype(np.float32)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    run = experiments.connectivity(x, w, b, budget=1 << 30)
    assert set(run.runs) == set(experiments.KINDS)
    ref = convcore.conv2d(x, w, b, padding=1)
    for kind, fn in run.runs.items():
        np.testing.assert_allclose(fn(), ref, rtol=1e-5, atol=1e-4, err_msg=kind)
    assert run.costs == experiments.costs(3, 4, (3, 3), (10, 12))
    small = experiments.connectivity(x, w, budget=run.costs["locally connected"].weight_bytes)
    assert set(small.runs) == {"conv", "locally connected"}
    assert small.layers["dense"] is None
    assert small.costs["dense"].params == run.costs["dense"].params


def test_permutation_experiment_numbers():
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 9, 7)), rng.standard_normal((5, 2, 3, 3))
    p = experiments.permutation(x, w, seed=4)
    pixels = np.random.default_rng(4).permutation(63)
    np.testing.assert_array_equal(p.permuted.reshape(2, -1), x.reshape(2, -1)[:, pixels])
    np.testing.assert_array_equal(p.unscrambled.reshape(5, -1)[:, pixels],
                                  p.permuted_maps.reshape(5, -1))
    eps = np.finfo(np.float64).eps
    assert p.dense_vs_conv <= 40 * eps * p.scale  # 18 products per output, float64
    assert p.dense_permuted <= 40 * eps * p.dense_scale
    assert p.conv_changed > 0.1 * p.scale and p.conv_not_permuted > 0.1 * p.scale
    no_dense = experiments.permutation(x, w, seed=4, dense_budget=0)
    assert no_dense.dense_permuted is None and no_dense.conv_changed == p.conv_changed


def test_dense_estimate_uses_an_out_of_cache_bandwidth(monkeypatch):
    """Beyond the budget the dense time is its bytes over a bandwidth measured on a
    matrix of at least OUT_OF_CACHE_BYTES, not on the small (cached) one timed."""
    calls = []

    def fake_bandwidth(nbytes=bench.OUT_OF_CACHE_BYTES, rounds=3):
        calls.append(nbytes)
        return 1e10

    monkeypatch.setattr(bench, "matvec_bandwidth", fake_bandwidth)
    budget = bench.sweep_costs(8)["dense"].weight_bytes  # 8x8 timed, 16x16 estimated
    rows = bench.connectivity_sweep((8, 16), budget=budget, rounds=1)
    assert calls and all(n >= bench.OUT_OF_CACHE_BYTES for n in calls)
    dense16 = rows[1]["dense"]
    assert dense16.estimated and dense16.seconds == dense16.weight_bytes / 1e10
    assert not rows[0]["dense"].estimated and math.isfinite(rows[0]["dense"].seconds)


def test_matvec_bandwidth_measures():
    assert 1e6 < bench.matvec_bandwidth(1 << 20, rounds=1) < 1e13


def test_quick_budget_is_documented():
    parser = __import__("argparse").ArgumentParser()
    bench.add_arguments(parser)
    text = parser.format_help().replace("\n", " ")
    assert f"{bench.QUICK_BUDGET >> 20} MiB" in " ".join(text.split())


def test_connectivity_plot_draws_measured_points_filled():
    pytest.importorskip("matplotlib")
    rows = []
    for size, estimated in ((8, False), (16, False), (32, True), (64, True)):
        layers = bench.sweep_costs(size)
        for layer in layers.values():
            layer.seconds = 1e-3 * size
        layers["dense"].estimated = estimated
        rows.append(layers)
    fig = bench.connectivity_figure(rows)
    try:
        time_axis = fig.axes[-1]
        hollow = [l for l in time_axis.lines if l.get_markerfacecolor() == "white"]
        assert [list(l.get_xdata()) for l in hollow] == [[32, 64]]  # estimated only
        dashed = [l for l in time_axis.lines if l.get_linestyle() == "--"]
        assert [list(l.get_xdata()) for l in dashed] == [[16, 32, 64]]
        assert all(l.get_marker() in ("None", "", None) for l in dashed)
    finally:
        import matplotlib.pyplot as plt

        plt.close(fig)


def test_demo_labels_the_padding_of_each_max():
    lines = []
    demo.run(demo.default_image()[100:140, 20:72].copy(), plot=False, classify=False,
             print_fn=lines.append)
    text = "\n".join(lines)
    section3 = text[text.index("3. Translation"):text.index("4. Locality")]
    assert "with zero padding" in section3 and "replicate padding of sections 1" in section3
    section4 = text[text.index("4. Locality"):]
    assert "replicate padding as in section 1" in section4
    assert "replicate padding" in text[text.index("1. A linear"):text.index("2. Param")]
