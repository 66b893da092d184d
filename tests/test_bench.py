"""convcore.bench and the peak probe: the probe's contract on every ISA, the analytic
costs of the connectivity sweep, the permutation experiment, the NumPy/SciPy/OpenCV peers
against the float64 reference (the benchmarks compare against them, so they must be
right), the timer, and ``python -m convcore bench --quick`` end to end."""

import math
import os

import numpy as np
import pytest

import convcore
from convcore import _core, bench
from convcore.__main__ import main
from convcore.testing import ConvShape, check_conv2d


def test_peak_probe_every_isa(isa, threads):
    # Includes the probe's self-check: every chain keeps its exact start value.
    gflops = _core.measure_peak_gflops(threads, 0.02)
    assert math.isfinite(gflops) and gflops > 0.1


def test_peak_probe_slots():
    slots = [k for k in _core.kernels() if k["op"] == "peak_fma_f32"]
    assert {k["table"] for k in slots} == set(_core.isas_compiled())
    # 12 chains of one vector each: 8 lanes (scalar twin, AVX2), 16 (AVX-512).
    lanes = {"scalar": 8, "avx2": 8, "avx512": 16}
    assert all((k["mr"], k["nr"]) == (12, lanes[k["table"]]) for k in slots)


@pytest.mark.parametrize("threads, seconds", [(0, 0.1), (1025, 0.1), (1, 0.0), (1, 61.0),
                                              (1, float("nan"))])
def test_peak_probe_rejects(threads, seconds):
    with pytest.raises(ValueError, match="measure_peak_gflops"):
        _core.measure_peak_gflops(threads, seconds)


def test_sweep_costs():
    for size in bench.SWEEP_SIZES:
        c = bench.sweep_costs(size)
        pixels = size * size
        assert c["conv"].params == 16 * 3 * 9 + 16  # independent of the image size
        assert c["locally connected"].params == pixels * (16 * 3 * 9 + 16)
        assert c["dense"].params == (16 * pixels) * (3 * pixels) + 16 * pixels
        assert c["conv"].macs == c["locally connected"].macs == pixels * 16 * 27
        assert c["dense"].macs == (16 * pixels) * (3 * pixels)
        assert all(l.weight_bytes == 4 * l.params for l in c.values())
    # The dense layer's weights are exactly the conv's dense matrix (plus the bias).
    m = convcore.conv2d_dense_matrix(np.zeros((16, 3, 3, 3), np.float32), (3, 8, 8), padding=1)
    assert m.size + 16 * 64 == bench.sweep_costs(8)["dense"].params


def test_permutation_experiment():
    p = bench.permutation_experiment(size=8)
    assert p.dense_vs_conv < 1e-12
    assert p.dense_permuted < 1e-12
    assert p.conv_permuted > 0.1


PEER_SHAPES = [
    ConvShape("plain", 2, 3, 9, 11, 4, 3, 3, 1, 1),
    ConvShape("strided-dilated", 1, 4, 13, 10, 6, 3, 2, 2, 2, dilation=2),
    ConvShape("grouped", 1, 6, 8, 8, 4, 3, 3, 1, 0, groups=2),
    ConvShape("depthwise", 2, 5, 7, 9, 5, 5, 5, 1, 2, groups=5),
    ConvShape("even-kernel", 1, 2, 10, 10, 3, 4, 4, 1, 1),
]


@pytest.mark.parametrize("impl", list(bench.CONV2D))
@pytest.mark.parametrize("shape", PEER_SHAPES, ids=lambda s: s.name)
def test_conv2d_implementations(shape, impl):
    x, w = bench.conv_inputs(shape)
    try:
        fn = bench.CONV2D[impl](shape, x, w)
    except bench.Unavailable as e:
        pytest.skip(str(e))
    # Peers that round differently (FFT, Winograd) are not held to conv2d's a-priori bound.
    y = fn()
    if impl.startswith("convcore") or impl.startswith("numpy"):
        check_conv2d(y, x, w, **shape.conv2d_kwargs)
    else:
        ref = bench.CONV2D["numpy-einsum"](shape, x.astype(np.float64), w.astype(np.float64))()
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4 * np.abs(ref).max())


@pytest.mark.parametrize("shape", PEER_SHAPES[:3], ids=lambda s: s.name)
def test_onnx_model_by_hand(shape):
    """The hand-serialised Conv model is the onnx helper's, and ONNX Runtime computes the
    convolution with it."""
    x, w = bench.conv_inputs(shape)
    model = bench.onnx_conv_model(shape, w)
    onnx = pytest.importorskip("onnx")
    assert onnx.load_from_string(model) == onnx.load_from_string(
        bench.onnx_conv_model_via_helper(shape, w))
    ort = pytest.importorskip("onnxruntime")
    session = ort.InferenceSession(model, providers=["CPUExecutionProvider"])
    check_conv2d(session.run(None, {"x": x})[0], x, w, **shape.conv2d_kwargs)


def test_per_plane_peers_refuse_strides():
    s = PEER_SHAPES[1]
    x, w = bench.conv_inputs(s)
    with pytest.raises(bench.Unavailable, match="stride 1"):
        bench.CONV2D["scipy-correlate2d"](s, x, w)


def test_measure():
    out = bench.measure({"a": lambda: sum(range(100)), "b": lambda: sum(range(1000))},
                        rounds=3, sample_s=0.001, baseline="a")
    assert out["a"][1] == 1.0
    assert out["b"][0] > 0 and out["b"][1] > 1.0


def test_pinned_threads_restores():
    before = convcore.get_num_threads()
    with bench.pinned_threads(1):
        assert convcore.get_num_threads() == 1 and bench.current_threads() == 1
    assert convcore.get_num_threads() == before and bench.current_threads() == 1


def test_cli_quick(tmp_path, capsys):
    assert main(["bench", "--quick", "--out", str(tmp_path)]) == 0
    report = (tmp_path / "report.md").read_text()
    for heading in ("## conv2d", "## The cost of full connectivity", "## The permutation"):
        assert heading in report
    assert "(est.)" in report  # 32x32's dense matrix is beyond the quick budget
    assert "the same output" in capsys.readouterr().out
    pngs = {"connectivity.png", "gflops.png"} & set(os.listdir(tmp_path))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        assert not pngs
    else:
        assert pngs == {"connectivity.png", "gflops.png"}
