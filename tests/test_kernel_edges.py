"""Kernel testers generated from the registry (as XNNPACK's): every tiled kernel the
machine runs is listed by ``_core.kernels()`` with its register tile (mr x nr), and the
GEMM's cache blocking comes from ``_core.gemm_blocking()``; each tester draws its sizes
from those — 1, t-1, t, t+1, 2t+1 around every tile or block edge t — so changing a tile
or a block moves the tested edges with it (no sizes copied by hand).

One tester per kernel signature, each running the kernel through its public operation
with the kernel's table forced (``set_isa``): the result is checked against the float64
reference within the a-priori bound and, where the contract fixes the order of
accumulation (GEMM, direct, with exact activations), bitwise against the scalar twin.
"""

import numpy as np
import pytest

import convcore
from convcore import _core, testing

BLOCKING = _core.gemm_blocking()
DTYPES = {"f32": np.float32, "f64": np.float64}


def edges(t):
    """The sizes around a tile or block edge t: 1, t-1, t, t+1, 2t+1 (those >= 1)."""
    return sorted({e for e in (1, t - 1, t, t + 1, 2 * t + 1) if e >= 1})


def registered(slot):
    """[(table, dtype, kernel)] for the slot in every table this CPU runs, by dtype."""
    supported = _core.isas_supported()
    out = []
    for k in _core.kernels():
        table, _, suffix = k["table"], None, k["op"].rsplit("_", 1)[1]
        if k["op"] == f"{slot}_{suffix}" and table in supported and suffix in DTYPES:
            out.append((table, DTYPES[suffix], k))
    return out


def case_id(case):
    table, dtype, k = case
    return f"{table}-{k['name']}"


def under(isa, fn):
    """fn() with the ISA `isa` active (restored after)."""
    previous = _core.get_isa()
    _core.set_isa(isa)
    try:
        return fn()
    finally:
        _core.set_isa(previous)


def randn(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def same_as_scalar(table, fn):
    """fn() under `table` and under the scalar twin's table: bitwise equal; returns it."""
    y = under(table, fn)
    np.testing.assert_array_equal(y, under("scalar", fn), err_msg=f"{table} vs scalar")
    return y


def check_linear(y, x, w, b, activation):
    x64, w64 = x.astype(np.float64), w.astype(np.float64)
    ref = x64 @ w64.T + b
    testing.assert_conv_close(y, ref, np.abs(x64) @ np.abs(w64).T + np.abs(b), w.shape[1],
                              x.dtype, activation)


# --------------------------------------------------------------------------
# GemmFn (gemm_MRxNR): through linear (A = the input, B = the weight) and im2col
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", registered("gemm"), ids=case_id)
def test_gemm_tile_edges(rng, case):
    table, dtype, k = case
    mr, nr = k["mr"], k["nr"]
    sizes = [(m, n, 5) for m in edges(mr) for n in edges(nr)]          # the register tile
    sizes += [(mr + 1, nr + 1, kk) for kk in edges(BLOCKING["kc"])]    # the KC blocks
    mc = BLOCKING["mc_" + ("f32" if dtype == np.float32 else "f64")]
    sizes += [(m, nr - 1, 3) for m in edges(mc)]                       # the MC blocks
    for m, n, kk in sizes:
        x, w, b = randn(rng, (m, kk), dtype), randn(rng, (n, kk), dtype), randn(rng, (n,), dtype)
        y = same_as_scalar(table, lambda: convcore.linear(x, w, b, activation="relu"))
        check_linear(y, x, w, b, "relu")


@pytest.mark.parametrize("case", registered("gemm"), ids=case_id)
@pytest.mark.parametrize("kernel", [1, 3])   # 1x1: B read in place; 3x3: B gathered
def test_im2col_tile_edges(rng, case, kernel):
    table, dtype, k = case
    for k_out in edges(k["mr"]):
        for pixels in edges(k["nr"]):
            x = randn(rng, (1, 3, 1, pixels), dtype)
            w, b = randn(rng, (k_out, 3, kernel, kernel), dtype), randn(rng, (k_out,), dtype)
            pad = kernel // 2
            y = same_as_scalar(table, lambda: convcore.conv2d(x, w, b, padding=pad,
                                                              algorithm="im2col"))
            testing.check_conv2d(y, x, w, b, padding=pad)


# --------------------------------------------------------------------------
# DirectTileFn: direct_tile (KB = mr output channels, tiles of nr pixels), direct_nchwc
# (mr channels in the lanes, nr pixels), direct_plane (one output channel per group, nr pixels)
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", registered("direct_tile"), ids=case_id)
def test_direct_tile_edges(rng, case):
    table, dtype, k = case
    for k_out in edges(k["mr"]):
        for width in edges(k["nr"]):
            x = randn(rng, (1, 2, 3, width), dtype)
            w, b = randn(rng, (k_out, 2, 3, 3), dtype), randn(rng, (k_out,), dtype)
            y = same_as_scalar(table, lambda: convcore.conv2d(x, w, b, padding=1,
                                                              algorithm="direct"))
            testing.check_conv2d(y, x, w, b, padding=1)


@pytest.mark.parametrize("case", registered("direct_nchwc"), ids=case_id)
def test_direct_nchwc_edges(rng, case):
    # channels in the lanes: panels of mr channels (two vectors; one when kn <= mr/2),
    # tiles of up to nr pixels of a row; the layout forced (the rule would pick direct_tile
    # for some of these sizes)
    table, dtype, k = case
    _core.set_direct_layout("nchwc")
    try:
        for k_out in edges(k["mr"]) + edges(k["mr"] // 2):
            for width in edges(k["nr"]):
                x = randn(rng, (1, 2, 3, width), dtype)
                w, b = randn(rng, (k_out, 2, 3, 3), dtype), randn(rng, (k_out,), dtype)
                y = same_as_scalar(table, lambda: convcore.conv2d(x, w, b, padding=1,
                                                                  algorithm="direct"))
                testing.check_conv2d(y, x, w, b, padding=1)
    finally:
        _core.set_direct_layout("auto")


@pytest.mark.parametrize("case", registered("direct_plane"), ids=case_id)
@pytest.mark.parametrize("stride", [1, 2])   # AVX-512: in place (stride 1) or a band
def test_direct_plane_edges(rng, case, stride):
    table, dtype, k = case
    for width in edges(k["nr"]):
        x = randn(rng, (1, 2, 5, width * stride), dtype)
        w, b = randn(rng, (2, 1, 3, 3), dtype), randn(rng, (2,), dtype)
        y = same_as_scalar(table, lambda: convcore.conv2d(x, w, b, stride=stride, padding=1,
                                                          groups=2, algorithm="direct"))
        testing.check_conv2d(y, x, w, b, stride=stride, padding=1, groups=2)


# --------------------------------------------------------------------------
# LocallyConnectedRowsFn (mr output channels x nr images): with the same filters at every
# position the layer is conv2d, whose reference checks it
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", registered("locally_connected_rows"), ids=case_id)
def test_locally_connected_rows_edges(rng, case):
    table, dtype, k = case
    for k_out in edges(k["mr"]):
        for n in edges(k["nr"]):
            x = randn(rng, (n, 2, 4, 4), dtype)
            w, b = randn(rng, (k_out, 2, 3, 3), dtype), randn(rng, (k_out,), dtype)
            wl = np.ascontiguousarray(np.broadcast_to(w, (2, 2) + w.shape))
            bl = np.ascontiguousarray(np.broadcast_to(b[:, None, None], (k_out, 2, 2)))
            y = under(table, lambda: convcore.locally_connected2d(x, wl, bl))
            testing.check_conv2d(y, x, w, b)


# --------------------------------------------------------------------------
# TapDotsFn (mr gradient rows x nr taps a block, dots in 64/itemsize lanes): conv2d's
# weight gradient with few filters on one input channel, or one filter per group
# --------------------------------------------------------------------------

@pytest.mark.parametrize("case", registered("tap_dots"), ids=case_id)
def test_tap_dots_edges(rng, case):
    table, dtype, k = case
    lanes = 64 // np.dtype(dtype).itemsize
    cases = [((1, 1, 1, lanes + 6), (k_out, 1, 1, taps), {})            # rows x tap blocks
             for k_out in edges(k["mr"]) for taps in edges(max(k["nr"], 2))]
    cases += [((1, 1, 1, width), (2, 1, 1, 3), {}) for width in edges(lanes)  # dot lengths
              if width >= 3]
    cases += [((2, 6, 5, lanes - 1), (3, 2, 3, 3), dict(padding=1, groups=3)),  # Kg = 1, Cg = 2
              ((3, 1, 7, 9), (5, 1, 3, 2), dict(padding=(2, 1), dilation=(2, 1)))]
    for xs, ws, kw in cases:
        x, w = randn(rng, xs, dtype), randn(rng, ws, dtype)
        g = randn(rng, convcore.conv2d(x, w, **kw).shape, dtype)
        gw = same_as_scalar(table, lambda: convcore.conv2d_backward(
            g, x, w, output_mask=(False, True, False), **kw)[1])
        want = testing.reference_conv2d_backward(g, x, w, **kw)[1]
        want_abs = testing.reference_conv2d_backward(np.abs(g), np.abs(x), np.abs(w), **kw)[1]
        n_terms = g.shape[0] * g.shape[2] * g.shape[3]
        bound = testing.conv_tolerance(n_terms, dtype) * want_abs + np.finfo(dtype).tiny * n_terms
        assert np.all(np.abs(gw - want) <= bound), (table, xs, ws, kw)
