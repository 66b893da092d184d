"""The packed GEMM (cpp/src/ops/gemm.hpp) against a float64 reference, through its two
users: ``linear`` (A = the input packed per block, B = the weight) and ``conv2d``'s
im2col algorithm (A = the weights packed once, B = the gathered patches, or the input
itself for a 1x1 stride-1 convolution). Sizes sit on the edges of the micro-tiles (AVX2 and
scalar: 6 x 16 floats, 6 x 8 doubles; AVX-512: 14 x 32 floats, 14 x 16 doubles, with a
half-vector tail: 8 floats / 4 doubles), of the KC / MC blocks and of the pixel tiles; every
ISA; 1 and 2 threads give bitwise the same result; the im2col workspace stays bounded.
"""

import numpy as np
import pytest

import convcore
from convcore import _core, testing
from convcore.testing import bitwise_over_threads

DTYPES = [np.float32, np.float64]
_BLOCKING = _core.gemm_blocking()         # gemm.hpp's blocking, exported by C++
KC = _BLOCKING["kc"]
MC = {np.float32: _BLOCKING["mc_f32"], np.float64: _BLOCKING["mc_f64"]}


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def check_linear(y, x, w, b=None, activation=None):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ref, ref_abs = x64 @ w64.T, np.abs(x64) @ np.abs(w64).T
    if b is not None:
        ref, ref_abs = ref + b, ref_abs + np.abs(b)
    testing.assert_conv_close(y, ref, ref_abs, w.shape[1], x.dtype, activation)



# --------------------------------------------------------------------------
# Through linear: C (m x n) = X (m x k) W^T (k x n)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m,n,k", [
    (1, 1, 1), (6, 16, 1), (5, 15, 1), (7, 17, 1), (12, 32, 3), (11, 31, 5), (13, 33, 7),
    (2, 3, 5), (3, 5, 7), (7, 11, 13), (13, 17, 19), (29, 37, 41),          # primes
    (6, 8, KC - 1), (6, 8, KC), (6, 8, KC + 1), (7, 9, 2 * KC), (5, 7, 2 * KC + 1),  # KC
    (MC[np.float32] - 1, 17, 9), (MC[np.float32], 16, 10), (MC[np.float32] + 1, 15, 11),
    (2 * MC[np.float32] + 1, 9, 3),                                          # MC (float)
    (MC[np.float64] - 1, 17, 9), (MC[np.float64], 16, 10), (MC[np.float64] + 1, 15, 11),
    (8 * MC[np.float32] + 49, 20, 3),                # row blocks of 8 MC per linear task
])
def test_linear_edges(rng, isa, dtype, m, n, k):
    x, w, b = randn(rng, (m, k), dtype), randn(rng, (n, k), dtype), randn(rng, (n,), dtype)
    y = bitwise_over_threads(lambda: convcore.linear(x, w, b, activation="leaky_relu"))
    check_linear(y, x, w, b, "leaky_relu")
    # The same through a LinearOp (weights packed once: another B source).
    op = _core.LinearOp(w, b, "leaky_relu", 0.01, 0.0)
    y2 = np.empty((m, n), dtype)
    op.run(x, y2)
    np.testing.assert_array_equal(y, y2)


@pytest.mark.parametrize("dtype", DTYPES)
def test_linear_column_blocks(rng, isa, dtype):
    # Several column tasks (1024 columns each) and 16 KC blocks, in both B sources
    # (linear() packs W per KC x NC block, prefetching the next; LinearOp packed it once).
    x, w = randn(rng, (7, 4096), dtype), randn(rng, (1043, 4096), dtype)
    y = bitwise_over_threads(lambda: convcore.linear(x, w))
    check_linear(y, x, w)
    op = _core.LinearOp(w, None, "none", 1.0, 0.0)
    y2 = np.empty_like(y)
    op.run(x, y2)
    np.testing.assert_array_equal(y, y2)


# --------------------------------------------------------------------------
# The AVX-512 tile's edges (14 x 32 floats, 14 x 16 doubles; tails of at most half a
# vector, alone or after whole vectors, run on 256-bit vectors): rows and columns on each
# side of every edge, bitwise equal to the AVX2 kernel (same FMA chains; the same vector
# sigmoid / tanh)
# --------------------------------------------------------------------------

ACTIVATIONS = [None, "relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"]
ROWS_512 = [1, 7, 8, 13, 14, 15, 27, 28, 29]
COLS_512 = [1, 3, 4, 5, 8, 9, 12, 13, 15, 16, 17, 20, 24, 25, 31, 32, 33, 47, 48, 49, 56, 57,
            64, 65]


def under_isas(fn, isas=("avx512", "avx2")):
    """{isa: fn()} under each ISA of ``isas``; skipped when one is not supported."""
    supported = _core.isas_supported()
    if any(i not in supported for i in isas):
        pytest.skip("needs " + " and ".join(isas))
    previous = _core.get_isa()
    try:
        out = {}
        for isa in isas:
            _core.set_isa(isa)
            out[isa] = fn()
        return out
    finally:
        _core.set_isa(previous)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_avx512_tile_edges_linear(rng, dtype, activation):
    # k = 300: two KC blocks, so the second accumulates into C; bias per column.
    for m in ROWS_512:
        for n in COLS_512:
            x, w = randn(rng, (m, 300), dtype), randn(rng, (n, 300), dtype)
            b = randn(rng, (n,), dtype)
            y = under_isas(lambda: convcore.linear(x, w, b, activation=activation))
            np.testing.assert_array_equal(y["avx512"], y["avx2"], err_msg=f"m={m} n={n}")
            if m in (14, 15) or n in (32, 33):
                check_linear(y["avx512"], x, w, b, activation)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("params", [
    dict(padding=1),                                 # 3x3, gathered
    dict(stride=(1, 2), padding=2, dilation=2),
    dict(kernel=1),                                  # 1x1: B read in place
    dict(kernel=1, stride=2),
])
def test_avx512_tile_edges_conv(rng, dtype, activation, params):
    params = dict(params)
    r = params.pop("kernel", 3)
    sh, sw = np.broadcast_to(params.get("stride", 1), 2)
    for k_out in (1, 7, 13, 14, 15, 29):
        for width in (1, 4, 9, 17, 33, 49, 65):      # output pixels per row x 2 rows
            c = 29 if k_out == 15 else 3                 # 29*9 = 261: two KC blocks
            x = randn(rng, (1, c, 2 * sh, width * sw), dtype)
            w, b = randn(rng, (k_out, c, r, r), dtype), randn(rng, (k_out,), dtype)
            y = under_isas(lambda: conv(x, w, b, activation=activation, **params))
            np.testing.assert_array_equal(y["avx512"], y["avx2"],
                                          err_msg=f"k_out={k_out} width={width}")
            if width in (17, 33):
                testing.check_conv2d(y["avx512"], x, w, b, activation=activation, **params)


# --------------------------------------------------------------------------
# Through conv2d's im2col: C (K/g x P) = W (K/g x C/g*R*S) B (C/g*R*S x P)
# --------------------------------------------------------------------------

def conv(x, w, b=None, **params):
    return bitwise_over_threads(
        lambda: convcore.conv2d(x, w, b, algorithm="im2col", **params))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k_out", [1, 5, 6, 7, 12, 13, 145])
@pytest.mark.parametrize("pixels", [(1, 1), (3, 5), (4, 4), (1, 17), (5, 7), (16, 17)])
def test_im2col_tile_edges(rng, isa, dtype, k_out, pixels):
    x = randn(rng, (1, 3) + pixels, dtype)
    w = randn(rng, (k_out, 3, 1, 2), dtype)
    b = randn(rng, (k_out,), dtype)
    params = dict(padding=(0, 1))
    testing.check_conv2d(conv(x, w, b, **params), x, w, b, **params)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("channels", [1, 28, 29, 57])   # C*R*S = 9, 252, 261 (2 KC blocks), 513
def test_im2col_kc_blocks(rng, isa, dtype, channels):
    x = randn(rng, (1, channels, 6, 7), dtype)
    w = randn(rng, (8, channels, 3, 3), dtype)
    testing.check_conv2d(conv(x, w, padding=1), x, w, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hw", [(7, 9), (4, 4), (1, 33), (2, 1)])
def test_im2col_1x1_reads_input_in_place(rng, isa, dtype, hw):
    # P = 63, 16, 33, 2 pixels: full panels read in place, the partial last one packed.
    x = randn(rng, (2, 17) + hw, dtype)
    w = randn(rng, (7, 17, 1, 1), dtype)
    b = randn(rng, (7,), dtype)
    y = conv(x, w, b, activation="relu")
    testing.check_conv2d(y, x, w, b, activation="relu")
    # Strided or padded 1x1 convolutions go through the gather instead.
    for params in (dict(stride=2), dict(padding=1)):
        testing.check_conv2d(conv(x, w, **params), x, w, **params)


@pytest.mark.parametrize("dtype", DTYPES)
def test_im2col_many_pixel_tiles(rng, isa, dtype):
    # One input channel, 3x3: a B block holds 256 KiB / (9 elements) pixels; 128 x 120
    # output pixels need several tiles, the last one partial.
    x = randn(rng, (1, 1, 130, 122), dtype)
    w = randn(rng, (3, 1, 3, 3), dtype)
    testing.check_conv2d(conv(x, w), x, w)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("groups", [2, 3])
def test_im2col_groups_and_channel_blocks(rng, isa, dtype, groups):
    # Few pixels (2 x 2): the output channels of each group are split into row blocks.
    x = randn(rng, (2, 6 * groups, 2, 2), dtype)
    w = randn(rng, (25 * groups, 6, 2, 2), dtype)
    b = randn(rng, (25 * groups,), dtype)
    params = dict(padding=1, groups=groups, stride=(1, 2), dilation=(2, 1))
    y = conv(x, w, b, activation="sigmoid", **params)
    testing.check_conv2d(y, x, w, b, activation="sigmoid", **params)


@pytest.mark.parametrize("padding_mode", ["zeros", "reflect"])
def test_workspace_is_bounded(rng, padding_mode):
    """1x64x1024x1024, 3x3: the im2col workspace is one gathered B block (256 KiB and a
    panel) and one block of weights (144 KiB) per thread, <= 16 MiB in all whatever the
    image size; a padding mode other than zeros adds the padded copy."""
    def workspace(h, w, dtype_bytes):
        return _core.conv2d_workspace_bytes((1, 64, h, w), (64, 3, 3, 1), (1, 1), (1, 1, 1, 1),
                                            (1, 1), padding_mode, "im2col", dtype_bytes)
    previous = convcore.get_num_threads()
    try:
        for threads in (1, 2, 8, 64, 256):
            convcore.set_num_threads(threads)
            for dtype_bytes in (4, 8):
                big, small = workspace(1024, 1024, dtype_bytes), workspace(64, 64, dtype_bytes)
                padded = 64 * 1026 * 1026 * dtype_bytes if padding_mode != "zeros" else 0
                assert 0 < big - padded
                assert big - padded <= threads * (512 << 10)
                if threads <= 64:  # beyond, one panel per thread is the floor
                    assert big - padded <= 16 << 20
                assert small <= big
    finally:
        convcore.set_num_threads(previous)
    # And a real call on that image runs and matches the reference on a corner.
    if padding_mode == "zeros":
        x = randn(rng, (1, 64, 1024, 1024), np.float32)
        w = randn(rng, (4, 64, 3, 3), np.float32)
        y = convcore.conv2d(x, w, padding=1, algorithm="im2col")
        corner = x[:, :, :22, :22]  # outputs [0, 20) see rows and columns [0, 21) only
        ref = testing.reference_conv2d(corner, w, padding=1)[:, :, :20, :20]
        ref_abs = testing.reference_conv2d_abs(corner, w, padding=1)[:, :, :20, :20]
        testing.assert_conv_close(y[:, :, :20, :20], ref, ref_abs, 64 * 9, np.float32)


def test_workspace_errors():
    with pytest.raises(ValueError, match="dtype_bytes"):
        _core.conv2d_workspace_bytes((1, 1, 4, 4), (1, 3, 3, 1), (1, 1), (0, 0, 0, 0), (1, 1),
                                     "zeros", "im2col", 2)
    with pytest.raises(ValueError, match="groups"):
        _core.conv2d_workspace_bytes((1, 3, 4, 4), (2, 3, 3, 2), (1, 1), (0, 0, 0, 0), (1, 1),
                                     "zeros", "im2col", 4)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("algorithm", ["im2col", "direct"])
def test_operators_keep_their_isa_after_a_switch(rng, dtype, algorithm):
    """LinearOp and Conv2dOp keep the kernels of the ISA active when they were built (the
    plan pins its kernel table, and the weights stay packed for its tile): run after
    set_isa switched to any other ISA, every (build ISA, run ISA) pair gives bitwise the
    result of running under the build ISA (tanh/relu epilogues included), and the layers
    built on them keep working. Sizes off every tile: 37 output features / 23 output
    channels, 45 / 3*5*3 reduction values, 2 x 33 pixels."""
    from convcore import layers

    isas = _core.isas_supported()
    x, w, b = randn(rng, (9, 45), dtype), randn(rng, (37, 45), dtype), randn(rng, (37,), dtype)
    xc, wc = randn(rng, (1, 5, 4, 35), dtype), randn(rng, (23, 5, 3, 3), dtype)
    conv_args = (None, (5, 4, 35), (1, 1), (0, 0, 0, 0), (1, 1), 1, "zeros", "tanh", 0.0, 0.0,
                 algorithm)
    previous = _core.get_isa()
    results = {}
    try:
        for build_isa in isas:
            _core.set_isa(build_isa)
            lin = _core.LinearOp(w, b, "tanh", 1.0, 0.0)
            cv = _core.Conv2dOp(wc, *conv_args)
            # In eval mode a layer packs its weights into an operator (training mode runs
            # the functional call on the current weights, under the current ISA).
            layer = layers.Conv2d(5, 23, 3, activation="tanh", dtype=dtype, seed=1).eval()
            layer(xc)  # builds and caches its operator under build_isa
            for run_isa in isas:
                _core.set_isa(run_isa)
                y, yc = np.empty((9, 37), dtype), np.empty((1, 23, 2, 33), dtype)
                lin.run(x, y)
                cv.run(xc, yc)
                results[build_isa, run_isa] = y, yc, layer(xc)
    finally:
        _core.set_isa(previous)
    for (build_isa, run_isa), got in results.items():
        for name, a, b_ in zip(("linear", "conv", "layer"), got, results[build_isa, build_isa]):
            np.testing.assert_array_equal(a, b_, err_msg=f"{name}: built under {build_isa}, "
                                                         f"run under {run_isa}")
    check_linear(results["scalar", "scalar"][0], x, w, b, "tanh")
    testing.check_conv2d(results["scalar", "scalar"][1], xc, wc, activation="tanh")


@pytest.mark.parametrize("dtype", DTYPES)
def test_pack_kernels_match_scalar_twin(rng, dtype):
    """LinearOp packs its weight with the active ISA's pack kernel (and keeps that ISA's
    kernels): built under each ISA, then run with the scalar one active, the results are
    bitwise those of the scalar pack and GEMM."""
    # out = 37: two full panels and a partial one; in = 45: 8- and 4-column tiles + tail.
    x, w = randn(rng, (9, 45), dtype), randn(rng, (37, 45), dtype)
    previous = _core.get_isa()
    try:
        results = []
        for isa in _core.isas_supported():
            _core.set_isa(isa)
            op = _core.LinearOp(w, None, "none", 1.0, 0.0)
            _core.set_isa("scalar")
            y = np.empty((9, 37), dtype)
            op.run(x, y)
            results.append(y)
    finally:
        _core.set_isa(previous)
    for y in results[1:]:
        np.testing.assert_array_equal(y, results[0])
    check_linear(results[0], x, w)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("act", [None, "relu", "leaky_relu", "square"])
def test_gemm_bitwise_across_every_isa(rng, dtype, act):
    """Each output is one FMA chain over k in order within a KC block (scalar twin:
    std::fma), so every table's GEMM gives the same bits, whatever its tile."""
    x = rng.standard_normal((1, 70, 9, 13)).astype(dtype)   # 630-long reductions: 3 KC blocks
    w = rng.standard_normal((37, 70, 3, 3)).astype(dtype)
    b = rng.standard_normal(37).astype(dtype)
    xl = rng.standard_normal((19, 600)).astype(dtype)
    wl = rng.standard_normal((45, 600)).astype(dtype)
    bl = rng.standard_normal(45).astype(dtype)
    results = []
    for isa in _core.isas_supported():
        _core.set_isa(isa)
        try:
            results.append((isa,
                            convcore.conv2d(x, w, b, padding=1, algorithm="im2col", activation=act),
                            convcore.linear(xl, wl, bl, activation=act)))
        finally:
            _core.set_isa(_core.isas_supported()[0])
    for isa, y, z in results[1:]:
        np.testing.assert_array_equal(y, results[0][1], err_msg=isa)
        np.testing.assert_array_equal(z, results[0][2], err_msg=isa)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [30, 100])
def test_one_call_weights_whole_or_per_block(isa, rng, dtype, k):
    """The one-call conv2d packs a row block's weights whole once per call and thread
    (k = 30: 32 x 540 panels, 69 KiB of floats) or per MC x KC block (k = 100: 112 x 540,
    236 KiB of floats, over the 192 KiB limit), through the table's pack_mr kernel (14-row
    panels on AVX-512: 8 rows and a masked 6; 540 = 2 KC blocks of 270, an 8-column tail);
    either gives bitwise the result of the operator that packed them once, on 1 and 2
    threads (many pixel tiles: each thread re-uses its whole block)."""
    x = randn(rng, (2, 60, 10, 37), dtype)
    w = randn(rng, (k, 60, 3, 3), dtype)
    op = _core.Conv2dOp(w, None, (60, 10, 37), (1, 1), (1, 1, 1, 1), (1, 1), 1, "zeros",
                        "none", 0.0, 0.0, "im2col")
    packed = np.empty((2, k, 10, 37), dtype)
    op.run(x, packed)
    y = bitwise_over_threads(lambda: convcore.conv2d(x, w, padding=1, algorithm="im2col"))
    np.testing.assert_array_equal(y, packed)
    testing.check_conv2d(y, x, w, padding=1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("stride, padding", [((2, 2), (2, 1)), ((3, 2), (0, 0)),
                                             ((1, 3), (1, 2)), ((4, 4), (0, 0))])
def test_gather_copies_tap_rows_from_above(isa, rng, dtype, stride, padding):
    """The gather copies tap row r from tap row r - stride_h one output row later (all but
    a block's last Wo pixels) and gathers the rest; pixel tiles start mid output row,
    the 500-long reduction is 2 KC blocks (the row above must be in the same block), rows
    in the top and bottom padding: against the reference, bitwise on 1 and 2 threads."""
    x = randn(rng, (1, 20, 61, 66), dtype)
    w = randn(rng, (9, 20, 5, 5), dtype)
    params = dict(stride=stride, padding=padding)
    y = bitwise_over_threads(lambda: convcore.conv2d(x, w, algorithm="im2col", **params))
    testing.check_conv2d(y, x, w, **params)
