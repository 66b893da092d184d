"""Reference convolution, error bounds and named shapes for tests and benchmarks.

Pure NumPy on purpose: this module is the yardstick every kernel is measured
against, so it is written to be *obviously* correct rather than fast, and it
imports nothing beyond NumPy (SciPy and PyTorch are only used by the tests that
check this module itself, ``tests/test_reference.py``).

Contents
--------
``reference_conv2d``
    2D convolution with PyTorch semantics (cross-correlation), accumulated in
    float64.
``reference_conv2d_abs``
    The same sum taken over absolute values, ``sum |x*w| + |bias|``: the scale
    that the rounding-error bound is proportional to.
``conv_tolerance``, ``assert_conv_close``, ``check_conv2d``
    An element-wise a-priori error bound (no ad-hoc ``rtol``/``atol``) and the
    assertions built on it.
``bitwise_over_threads``
    Runs a call on 1 and on 2 threads and asserts the results are bitwise equal.
``SHAPES``, ``shape``, ``anchors``
    The one list of named convolution layers from real networks, shared by the
    tests and the benchmarks.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Optional, Tuple

import numpy as np

__all__ = [
    "ACTIVATIONS",
    "ConvShape",
    "SHAPES",
    "anchors",
    "apply_activation",
    "bitwise_over_threads",
    "assert_conv_close",
    "check_conv2d",
    "conv_tolerance",
    "reference_conv2d",
    "reference_conv2d_abs",
    "reference_conv2d_backward",
    "shape",
    "unit_roundoff",
    "winograd_tile",
    "winograd_tolerance",
    "reference_winograd_scale",
    "WINOGRAD_CONSTANTS",
]

# --------------------------------------------------------------------------
# Activations
# --------------------------------------------------------------------------

#: Activation names and their default parameters ``(a, b)``. Only ``sigmoid``
#: (``1/(1+exp(-a*(x-b)))``) and ``leaky_relu`` (``a`` = negative slope) use them.
ACTIVATIONS: Dict[str, Tuple[float, float]] = {
    "relu": (0.0, 0.0),
    "sigmoid": (1.0, 0.0),
    "tanh": (0.0, 0.0),
    "abs": (0.0, 0.0),
    "square": (0.0, 0.0),
    "leaky_relu": (0.01, 0.0),
}


def _activation_spec(activation: Any) -> Optional[Tuple[str, float, float]]:
    """Normalise an activation to ``None`` or ``(name, a, b)``.

    Accepts ``None``, a name, a tuple ``(name[, a[, b]])``, or any object with
    an ``activation_spec`` attribute holding such a tuple (the way
    ``convcore.layers`` activation objects describe themselves).
    """
    if activation is None:
        return None
    spec = getattr(activation, "activation_spec", activation)
    if isinstance(spec, str):
        spec = (spec,)
    if not isinstance(spec, tuple) or not 1 <= len(spec) <= 3:
        raise TypeError(f"activation must be None, a name or (name, a, b); got {activation!r}")
    name = spec[0]
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(ACTIVATIONS)}")
    a, b = ACTIVATIONS[name]
    if len(spec) > 1:
        a = float(spec[1])
    if len(spec) > 2:
        b = float(spec[2])
    return name, a, b


def apply_activation(y: np.ndarray, activation: Any) -> np.ndarray:
    """Apply an activation (see ``_activation_spec``) element-wise in float64.

    NaN propagates through every activation (``relu(nan)`` is nan), as in
    PyTorch.
    """
    spec = _activation_spec(activation)
    y = np.asarray(y, dtype=np.float64)
    if spec is None:
        return y
    name, a, b = spec
    with np.errstate(over="ignore", invalid="ignore"):
        if name == "relu":
            return np.maximum(y, 0.0)
        if name == "sigmoid":
            return 1.0 / (1.0 + np.exp(-a * (y - b)))
        if name == "tanh":
            return np.tanh(y)
        if name == "abs":
            return np.abs(y)
        if name == "square":
            return y * y
        if name == "leaky_relu":
            return np.where(y >= 0, y, a * y)
    raise AssertionError(name)  # unreachable: _activation_spec checked the name


# --------------------------------------------------------------------------
# Reference convolution
# --------------------------------------------------------------------------

_NP_PAD_MODE = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def _pair(value: Any, name: str) -> Tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair, got {value!r}")
        return int(value[0]), int(value[1])
    return int(value), int(value)


def _padding_amounts(padding: Any, kernel: Tuple[int, int], stride: Tuple[int, int],
                     dilation: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """Return ``(top, bottom, left, right)`` padding."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if stride != (1, 1):
                raise ValueError("padding='same' requires stride 1")
            # Total padding d*(k-1); the odd extra cell goes bottom/right (as PyTorch).
            th = dilation[0] * (kernel[0] - 1)
            tw = dilation[1] * (kernel[1] - 1)
            return th // 2, th - th // 2, tw // 2, tw - tw // 2
        raise ValueError(f"unknown padding {padding!r}")
    ph, pw = _pair(padding, "padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"padding must be non-negative, got {padding!r}")
    return ph, ph, pw, pw


def _conv2d_float64(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups,
                    padding_mode) -> np.ndarray:
    """The shared core of the two public reference functions (no bias, no activation)."""
    if x.ndim != 4 or w.ndim != 4:
        raise ValueError("expected input (N,C,H,W) and weight (K,C/groups,R,S); "
                         f"got {x.shape}, {w.shape}")
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    if groups < 1 or c % groups or k % groups or c // groups != cg:
        raise ValueError(f"groups={groups} does not fit input {x.shape} and weight {w.shape}")
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    if min(sh, sw, dh, dw) < 1:
        raise ValueError("stride and dilation must be positive")
    if padding_mode not in _NP_PAD_MODE:
        raise ValueError(f"unknown padding_mode {padding_mode!r}")
    top, bottom, left, right = _padding_amounts(padding, (r, s), (sh, sw), (dh, dw))
    # PyTorch's limits for the non-zero modes.
    if padding_mode == "reflect" and (max(top, bottom) >= h or max(left, right) >= wd):
        raise ValueError("reflect padding must be smaller than the input size")
    if padding_mode == "circular" and (max(top, bottom) > h or max(left, right) > wd):
        raise ValueError("circular padding must not exceed the input size")

    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=_NP_PAD_MODE[padding_mode])
    hp, wp = xp.shape[2:]
    ho = (hp - dh * (r - 1) - 1) // sh + 1
    wo = (wp - dw * (s - 1) - 1) // sw + 1
    if ho < 1 or wo < 1:
        raise ValueError("kernel larger than the padded input")

    kg = k // groups
    out = np.zeros((n, k, ho, wo), dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN, as it should be
        for g in range(groups):
            xg = xp[:, g * cg:(g + 1) * cg]
            wg = w[g * kg:(g + 1) * kg]
            for i in range(r):
                for j in range(s):
                    # The input pixels that kernel tap (i, j) meets, one per output pixel.
                    patch = xg[:, :, i * dh:i * dh + sh * (ho - 1) + 1:sh,
                               j * dw:j * dw + sw * (wo - 1) + 1:sw]
                    out[:, g * kg:(g + 1) * kg] += np.einsum("nchw,kc->nkhw", patch,
                                                             wg[:, :, i, j])
    return out


def _prepare(input, weight, bias):
    x = np.asarray(input, dtype=np.float64)
    w = np.asarray(weight, dtype=np.float64)
    unbatched = x.ndim == 3
    if unbatched:
        x = x[None]
    b = None if bias is None else np.asarray(bias, dtype=np.float64)
    if b is not None and b.shape != (w.shape[0],):
        raise ValueError(f"bias must have shape ({w.shape[0]},), got {b.shape}")
    return x, w, b, unbatched


def reference_conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                     padding_mode="zeros", activation=None) -> np.ndarray:
    """2D convolution (cross-correlation) with ``torch.nn.functional.conv2d`` semantics.

    Every value is converted to float64 and accumulated in float64; the result
    is float64 whatever the input dtype (the caller casts if it wants to).

    Parameters are those of ``convcore.conv2d``: ``input`` ``(N,C,H,W)`` or
    ``(C,H,W)``; ``weight`` ``(K, C/groups, R, S)``; ``bias`` ``(K,)`` or None;
    ``stride``/``dilation`` int or pair; ``padding`` int, pair, ``"same"``
    (stride 1 only; total padding ``d*(k-1)``, ``total//2`` before and the
    rest after) or ``"valid"``; ``padding_mode`` ``"zeros"``, ``"reflect"``,
    ``"replicate"`` or ``"circular"`` as ``torch.nn.Conv2d``; ``activation``
    None, a name (``relu``, ``sigmoid``, ``tanh``, ``abs``, ``square``,
    ``leaky_relu``), a tuple ``(name, a, b)`` or an object with an
    ``activation_spec`` tuple.

    The method: pad with ``np.pad``, then for each group and each kernel tap
    ``(i, j)`` add ``weight[:, :, i, j]`` times the strided slice of the padded
    input that tap sees.
    """
    x, w, b, unbatched = _prepare(input, weight, bias)
    y = _conv2d_float64(x, w, stride, padding, dilation, groups, padding_mode)
    if b is not None:
        with np.errstate(invalid="ignore"):
            y += b[None, :, None, None]
    y = apply_activation(y, activation)
    return y[0] if unbatched else y


def reference_conv2d_abs(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                         padding_mode="zeros") -> np.ndarray:
    """``sum |x*w| + |bias|`` for each output element (before any activation).

    The same computation as ``reference_conv2d`` on absolute values. It is the
    quantity the rounding error of a convolution is proportional to (see
    ``conv_tolerance``).
    """
    x, w, b, unbatched = _prepare(input, weight, bias)
    y = _conv2d_float64(np.abs(x), np.abs(w), stride, padding, dilation, groups, padding_mode)
    if b is not None:
        y += np.abs(b)[None, :, None, None]
    return y[0] if unbatched else y


def winograd_tile(out_h: int, out_w: int) -> int:
    """The output tile ``m`` of ``algorithm="winograd"``: 2 (F(2x2, 3x3)) when the output
    is at most 14x14, else 4 (F(4x4, 3x3))."""
    return 2 if out_h <= 14 and out_w <= 14 else 4


def reference_winograd_scale(input, weight, bias=None, stride=1, padding=0, dilation=1,
                             groups=1, padding_mode="zeros") -> np.ndarray:
    """The quantity Winograd's rounding error is proportional to, for each output of a
    3x3, stride-1 convolution (before any activation).

    Winograd computes an output tile of ``m x m`` pixels from the ``(m+2) x (m+2)`` input
    tile it reads, through transforms that mix every input of the tile with every
    weight: an output's error depends on the whole tile, not only on its own 3x3 window
    (inputs of very different sizes within one tile make ``sum |x*w|`` of the window a
    poor scale). So the scale is, per output channel k and output tile,
    ``sum_c (sum of |x_c| over the input tile) * (sum of |w_kc|) + |bias_k|``, the
    channels c of k's group, the input padded by ``padding_mode`` (``winograd_tile``
    gives ``m``). ``winograd_tolerance`` is the matching factor.
    """
    x, w, b, unbatched = _prepare(input, weight, bias)
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    if (r, s) != (3, 3) or _pair(stride, "stride") != (1, 1) or _pair(dilation, "dilation") != (1, 1):
        raise ValueError("Winograd's scale is for 3x3 kernels, stride 1, dilation 1")
    top, bottom, left, right = _padding_amounts(padding, (3, 3), (1, 1), (1, 1))
    ho, wo = h + top + bottom - 2, wd + left + right - 2
    m = winograd_tile(ho, wo)
    th, tw = -(-ho // m), -(-wo // m)
    xp = np.abs(np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)),
                       mode=_NP_PAD_MODE[padding_mode]))
    # zeros past the padded input, where the last tiles stick out
    xp = np.pad(xp, ((0, 0), (0, 0), (0, th * m + 2 - xp.shape[2]), (0, tw * m + 2 - xp.shape[3])))
    tiles = np.lib.stride_tricks.sliding_window_view(xp, (m + 2, m + 2), axis=(2, 3))
    tile_sums = tiles[:, :, ::m, ::m].sum(axis=(4, 5))[:, :, :th, :tw]  # (n, c, th, tw)
    w_sums = np.abs(w).sum(axis=(2, 3))  # (k, cg)
    kg = k // groups
    scale = np.empty((n, k, th, tw))
    for g in range(groups):
        scale[:, g * kg:(g + 1) * kg] = np.einsum(
            "nctu,kc->nktu", tile_sums[:, g * cg:(g + 1) * cg], w_sums[g * kg:(g + 1) * kg])
    y = np.repeat(np.repeat(scale, m, axis=2), m, axis=3)[:, :, :ho, :wo]
    if b is not None:
        y = y + np.abs(b)[None, :, None, None]
    return y[0] if unbatched else y


#: Winograd's measured error constants: ``|y - y_exact| <= (A + B * C/groups) * u *
#: reference_winograd_scale`` (see ``winograd_tolerance``).
WINOGRAD_CONSTANTS = (8.0, 1.0 / 64)


def winograd_tolerance(channels: int, dtype) -> float:
    """The factor ``g`` in ``|y - r| <= g * reference_winograd_scale`` for
    ``algorithm="winograd"`` with ``channels`` input channels per group.

    ``(A + B * channels) * u`` with ``WINOGRAD_CONSTANTS = (A, B)``, measured (README.md,
    "Accuracy"; ``benchmarks/winograd_error.py`` re-measures them): the transforms' own
    roundings grow with the size of their coefficients (a constant), the sum over the
    channels with their number. Plus the float64 reference's rounding, as
    ``conv_tolerance``.
    """
    a, b = WINOGRAD_CONSTANTS
    return (a + b * int(channels)) * unit_roundoff(dtype) + _gamma(9 * int(channels) + 2,
                                                                     unit_roundoff(np.float64))


def reference_conv2d_backward(grad_output, input, weight, stride=1, padding=0, dilation=1,
                              groups=1, padding_mode="zeros"):
    """``(grad_input, grad_weight, grad_bias)`` of ``reference_conv2d`` (no activation),
    in float64, for ``grad_output`` of the output's shape; unbatched ``(C, H, W)`` works.

    The method mirrors ``reference_conv2d``: for each group and tap ``(i, j)`` the strided
    slice of the padded input the tap sees meets ``grad_output`` (grad_weight) and
    ``grad_output`` times the tap's weights is added back onto that slice of the padded
    input's gradient (grad_input); the padding is folded back by padding an index map with
    the same ``np.pad`` mode and adding each padded cell onto the cell it copies.
    Called on absolute values it gives the sums of ``|products|`` that bound the
    rounding error (as ``reference_conv2d_abs``).
    """
    x, w, _, unbatched = _prepare(input, weight, None)
    g = np.asarray(grad_output, dtype=np.float64)
    if unbatched:
        g = g[None]
    n, c, h, wd = x.shape
    k, cg, r, s = w.shape
    sh, sw = _pair(stride, "stride")
    dh, dw = _pair(dilation, "dilation")
    top, bottom, left, right = _padding_amounts(padding, (r, s), (sh, sw), (dh, dw))
    pads = ((0, 0), (0, 0), (top, bottom), (left, right))
    xp = np.pad(x, pads, mode=_NP_PAD_MODE[padding_mode])
    ho, wo = g.shape[2:]
    kg = k // groups
    gxp = np.zeros_like(xp)
    gw = np.zeros((k, cg, r, s))
    with np.errstate(invalid="ignore", over="ignore"):
        for grp in range(groups):
            gg = g[:, grp * kg:(grp + 1) * kg]
            for i in range(r):
                for j in range(s):
                    rows = slice(i * dh, i * dh + sh * (ho - 1) + 1, sh)
                    cols = slice(j * dw, j * dw + sw * (wo - 1) + 1, sw)
                    patch = xp[:, grp * cg:(grp + 1) * cg, rows, cols]
                    gw[grp * kg:(grp + 1) * kg, :, i, j] = np.einsum("nkhw,nchw->kc", gg, patch)
                    gxp[:, grp * cg:(grp + 1) * cg, rows, cols] += np.einsum(
                        "nkhw,kc->nchw", gg, w[grp * kg:(grp + 1) * kg, :, i, j])
    # Fold: padded cell -> the input cell it copies (-1: a zero of the padding).
    index = np.arange(h * wd).reshape(h, wd)
    if padding_mode == "zeros":
        pidx = np.pad(index, pads[2:], mode="constant", constant_values=-1)
    else:
        pidx = np.pad(index, pads[2:], mode=_NP_PAD_MODE[padding_mode])
    keep = pidx.ravel() >= 0
    gx = np.zeros((n * c, h * wd))
    flat = gxp.reshape(n * c, -1)[:, keep]
    for col, target in enumerate(pidx.ravel()[keep]):
        gx[:, target] += flat[:, col]
    gx = gx.reshape(n, c, h, wd)
    gb = g.sum(axis=(0, 2, 3))
    return (gx[0] if unbatched else gx), gw, gb


# --------------------------------------------------------------------------
# Error bounds
# --------------------------------------------------------------------------

#: ulps an activation evaluation may add (exp/tanh from a vector math library
#: are typically within 1-4 ulp; the division and addition around them add 1).
ACTIVATION_ULPS = 8


def unit_roundoff(dtype) -> float:
    """``u``: 2**-24 for float32, 2**-53 for float64."""
    return float(np.finfo(dtype).eps) / 2


def _gamma(n: int, u: float) -> float:
    nu = n * u
    if nu >= 1:
        raise ValueError(f"n*u = {nu} >= 1: no useful rounding-error bound")
    return nu / (1 - nu)


def conv_tolerance(n_terms: int, dtype) -> float:
    """The factor ``g`` in the element-wise bound ``|y - r| <= g * sum|x*w|``.

    ``n_terms`` is the number of products per output element,
    ``(C/groups) * R * S``. Any summation order (blocked, pairwise, with or
    without FMA, split over threads) of ``n`` products in a precision with unit
    roundoff ``u`` satisfies ``|fl(sum) - sum| <= gamma_n * sum |x_i w_i|``
    with ``gamma_n = n*u / (1 - n*u)`` (Higham, *Accuracy and Stability of
    Numerical Algorithms*, sec. 3.1). We use ``n_terms + 2`` (one more term for
    the bias, one for slack in the store) and add ``gamma`` at float64 for the
    reference's own rounding, which matters when testing float64 results.

    Gradual underflow adds an absolute error of at most one smallest normal
    number per product; ``assert_conv_close`` adds that term separately.

    This holds for algorithms that compute each output as a sum of the exact
    input-weight products (direct, im2col + GEMM). Transform-based algorithms
    (Winograd, FFT) need a different bound.
    """
    n = int(n_terms) + 2
    return _gamma(n, unit_roundoff(dtype)) + _gamma(n, unit_roundoff(np.float64))


def _activation_bound(y: np.ndarray, e: np.ndarray, spec, u: float) -> np.ndarray:
    """Bound on ``|fl(f(y_hat)) - f(y)|`` given ``|y_hat - y| <= e``.

    The pre-activation error is propagated through a bound on the activation's
    derivative, then the activation's own rounding is added as a few ulps of
    the output:

    * ``relu``, ``abs``: Lipschitz 1 and exact in floating point.
    * ``leaky_relu(slope)``: Lipschitz ``max(1, |slope|)``; one rounded multiply.
    * ``tanh``: Lipschitz 1; ``ACTIVATION_ULPS`` ulps of the output.
    * ``sigmoid(a, b)``: Lipschitz ``|a|/4``; forming the argument
      ``a*(y-b)`` (or ``a*y - a*b``) rounds with error at most
      ``3u|a|(|y|+|b|)``, which moves the output by a quarter of that; then
      ``ACTIVATION_ULPS`` ulps of the output for exp and the division.
    * ``square``: ``|yh^2 - y^2| = |yh - y| |yh + y| <= e (2|y| + e)`` — the
      derivative ``2y`` grows with the output; one rounded multiply.
    """
    if spec is None:
        return e
    name, a, b = spec
    f = np.abs(apply_activation(y, spec))
    u_total = u + unit_roundoff(np.float64)  # the float64 reference rounds too
    if name in ("relu", "abs"):
        return e
    if name == "leaky_relu":
        prop = max(1.0, abs(a)) * e
        return prop + u_total * (f + prop)
    if name == "tanh":
        return e + ACTIVATION_ULPS * u_total * (f + e)
    if name == "sigmoid":
        prop = abs(a) / 4 * e + 0.75 * u_total * abs(a) * (np.abs(y) + abs(b) + e)
        return prop + ACTIVATION_ULPS * u_total * (f + prop)
    if name == "square":
        prop = e * (2 * np.abs(y) + e)
        return prop + u_total * (f + prop)
    raise AssertionError(name)


def assert_conv_close(actual, ref, ref_abs, n_terms: int, dtype, activation=None) -> None:
    """Assert ``actual`` is within the rounding-error bound of the reference.

    ``ref`` is the float64 reference *before* the activation
    (``reference_conv2d(..., activation=None)``) and ``ref_abs`` the matching
    ``reference_conv2d_abs``; the activation is applied here so that the bound
    can be propagated through it. Element-wise::

        e     = conv_tolerance(n_terms, dtype) * ref_abs + (n_terms + 2) * tiny
        bound = activation bound of e (see ``_activation_bound``) + tiny

    where ``tiny`` is the dtype's smallest normal number (underflow). Where the
    pre-activation reference is NaN or +-Inf the result must match it exactly
    (NaN at the same positions, infinities with the same sign). On failure the
    message names the worst element, its index, the values and the bound.
    """
    actual = np.asarray(actual)
    ref = np.asarray(ref, dtype=np.float64)
    ref_abs = np.asarray(ref_abs, dtype=np.float64)
    if actual.shape != ref.shape:
        raise AssertionError(f"shape {actual.shape} != reference shape {ref.shape}")
    spec = _activation_spec(activation)
    tiny = float(np.finfo(dtype).tiny)
    expected = apply_activation(ref, spec)
    got = actual.astype(np.float64)

    special = ~np.isfinite(ref)
    if special.any():
        same = (np.isnan(got) & np.isnan(expected)) | (got == expected)
        bad = special & ~same
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise AssertionError(
                f"{int(bad.sum())} non-finite reference element(s) not reproduced; first at "
                f"index {idx}: actual {got[idx]!r}, expected {expected[idx]!r} "
                f"(pre-activation reference {ref[idx]!r})")

    with np.errstate(invalid="ignore", over="ignore"):
        e = conv_tolerance(n_terms, dtype) * ref_abs + (int(n_terms) + 2) * tiny
        bound = _activation_bound(ref, e, spec, unit_roundoff(dtype)) + tiny
        err = np.abs(got - expected)
        # got == expected: exact, also where both overflowed to the same infinity (square
        # of a large finite value); NaN in actual fails here.
        ok = special | (got == expected) | (err <= bound)
    if not ok.all():
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(ok, 0.0, err / bound)
        ratio = np.where(np.isnan(ratio), np.inf, ratio)
        idx = tuple(int(i) for i in np.unravel_index(np.argmax(ratio), ratio.shape))
        raise AssertionError(
            f"{int((~ok).sum())} of {ok.size} elements outside the error bound "
            f"(dtype {np.dtype(dtype).name}, n_terms {n_terms}, activation {spec}); worst at index "
            f"{idx}: actual {got[idx]!r}, expected {expected[idx]!r}, |error| {err[idx]:.3e}, "
            f"bound {bound[idx]:.3e} ({ratio[idx]:.3g}x), sum|x*w| {ref_abs[idx]:.3e}")


def check_conv2d(actual, input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1,
                 padding_mode="zeros", activation=None) -> None:
    """Check ``actual`` (a convolution result) against the reference, all in one call.

    Asserts the dtype is the input's, then ``assert_conv_close`` with the
    reference, its absolute-value twin and ``n_terms = (C/groups)*R*S``.
    """
    dtype = np.asarray(input).dtype
    if np.asarray(actual).dtype != dtype:
        raise AssertionError(f"result dtype {np.asarray(actual).dtype} != input dtype {dtype}")
    params = dict(stride=stride, padding=padding, dilation=dilation, groups=groups,
                  padding_mode=padding_mode)
    ref = reference_conv2d(input, weight, bias, **params)
    ref_abs = reference_conv2d_abs(input, weight, bias, **params)
    w = np.asarray(weight)
    n_terms = w.shape[1] * w.shape[2] * w.shape[3]
    assert_conv_close(actual, ref, ref_abs, n_terms, dtype, activation)


def bitwise_over_threads(fn):
    """``fn()`` on 1 and on 2 threads (``convcore.set_num_threads``); asserts the results
    are bitwise equal (convcore never splits one output's sum across threads) and returns
    one of them. The thread count is restored afterwards."""
    import convcore  # here, so that this module imports without the compiled core

    previous = convcore.get_num_threads()
    try:
        convcore.set_num_threads(1)
        one = fn()
        convcore.set_num_threads(2)
        two = fn()
    finally:
        convcore.set_num_threads(previous)
    np.testing.assert_array_equal(one, two)
    return one


# --------------------------------------------------------------------------
# Named shapes from real networks
# --------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class ConvShape:
    """One convolution layer: batch ``n``, input ``c x h x w``, ``k`` filters of
    ``r x s``, square ``stride``/``padding``/``dilation``, ``groups``.

    ``anchor`` is the shape's id in the benchmark table (``ANCHORS.md``),
    ``None`` for the others.
    """

    name: str
    n: int
    c: int
    h: int
    w: int
    k: int
    r: int
    s: int
    stride: int
    padding: int
    dilation: int = 1
    groups: int = 1
    anchor: Optional[str] = None

    @property
    def out_hw(self) -> Tuple[int, int]:
        """Output height and width (PyTorch's formula)."""
        def size(n, k):
            return (n + 2 * self.padding - self.dilation * (k - 1) - 1) // self.stride + 1
        return size(self.h, self.r), size(self.w, self.s)

    @property
    def input_shape(self) -> Tuple[int, int, int, int]:
        return self.n, self.c, self.h, self.w

    @property
    def weight_shape(self) -> Tuple[int, int, int, int]:
        return self.k, self.c // self.groups, self.r, self.s

    @property
    def output_shape(self) -> Tuple[int, int, int, int]:
        return (self.n, self.k) + self.out_hw

    @property
    def flops(self) -> int:
        """``2*N*K*(C/groups)*R*S*Ho*Wo`` (one multiply and one add per product)."""
        ho, wo = self.out_hw
        return 2 * self.n * self.k * (self.c // self.groups) * self.r * self.s * ho * wo

    @property
    def conv2d_kwargs(self) -> Dict[str, int]:
        """``stride``, ``padding``, ``dilation``, ``groups`` for ``conv2d``."""
        return dict(stride=self.stride, padding=self.padding, dilation=self.dilation,
                    groups=self.groups)


#: Named layers of real networks (batch 1 unless the name says otherwise).
#: Anchors a-i are the shapes of the comparison table in ANCHORS.md.
SHAPES: Tuple[ConvShape, ...] = (
    # The anchors.
    ConvShape("resnet18-layer1.0.conv1", 1, 64, 56, 56, 64, 3, 3, 1, 1, anchor="a"),
    ConvShape("resnet18-layer1.0.conv1-b8", 8, 64, 56, 56, 64, 3, 3, 1, 1, anchor="b"),
    ConvShape("resnet18-conv1", 1, 3, 224, 224, 64, 7, 7, 2, 3, anchor="c"),
    ConvShape("resnet18-layer3.0.conv2", 1, 256, 14, 14, 256, 3, 3, 1, 1, anchor="d"),
    ConvShape("resnet50-layer1.1.conv1", 1, 256, 56, 56, 64, 1, 1, 1, 0, anchor="e"),
    ConvShape("mobilenetv1-conv_dw_3", 1, 128, 56, 56, 128, 3, 3, 1, 1, groups=128, anchor="f"),
    ConvShape("sobel-1024", 1, 1, 1024, 1024, 1, 3, 3, 1, 1, anchor="g"),
    ConvShape("lenetlike-conv1-b64", 64, 1, 28, 28, 8, 5, 5, 1, 0, anchor="h"),
    ConvShape("alexnet-conv1", 1, 3, 227, 227, 96, 11, 11, 4, 0, anchor="i"),
    # More real layers: strided, pointwise, depthwise, grouped, dilated, tiny.
    ConvShape("resnet18-layer2.0.downsample", 1, 64, 56, 56, 128, 1, 1, 2, 0),
    ConvShape("resnet18-layer3.0.conv1", 1, 128, 28, 28, 256, 3, 3, 2, 1),
    ConvShape("resnet18-layer4.0.conv2", 1, 512, 7, 7, 512, 3, 3, 1, 1),
    ConvShape("vgg16-conv1_2", 1, 64, 224, 224, 64, 3, 3, 1, 1),
    ConvShape("mobilenetv2-block2.pw", 1, 16, 112, 112, 96, 1, 1, 1, 0),
    ConvShape("mobilenetv2-block2.dw", 1, 96, 112, 112, 96, 3, 3, 2, 1, groups=96),
    ConvShape("mobilenetv2-block2.project", 1, 96, 56, 56, 24, 1, 1, 1, 0),
    ConvShape("alexnet-conv2", 1, 96, 27, 27, 256, 5, 5, 1, 2, groups=2),
    ConvShape("deeplabv3-resnet50-layer4.1.conv2", 1, 512, 28, 28, 512, 3, 3, 1, 4, dilation=4),
    ConvShape("lenet-conv1", 1, 1, 32, 32, 6, 5, 5, 1, 0),
    ConvShape("lenet-conv2", 1, 6, 14, 14, 16, 5, 5, 1, 0),
    # The long tail (issue 20): depthwise with stride 2 and on small images with many
    # channels, 1x1 with stride 2 (a subsample, then a GEMM), padding wider than the
    # kernel (output borders that see only zeros), small 5x5 layers with few channels.
    ConvShape("mobilenetv1-conv_dw_2", 1, 64, 112, 112, 64, 3, 3, 2, 1, groups=64),
    ConvShape("mobilenetv1-conv_dw_6", 1, 256, 28, 28, 256, 3, 3, 2, 1, groups=256),
    ConvShape("mobilenetv1-conv_dw_12", 1, 512, 14, 14, 512, 3, 3, 2, 1, groups=512),
    ConvShape("mobilenetv1-conv_dw_7", 1, 512, 14, 14, 512, 3, 3, 1, 1, groups=512),
    ConvShape("mobilenetv1-conv_dw_13", 1, 1024, 7, 7, 1024, 3, 3, 1, 1, groups=1024),
    ConvShape("mobilenetv2-block16.dw", 1, 960, 7, 7, 960, 3, 3, 1, 1, groups=960),
    ConvShape("resnet50-layer2.0.downsample", 1, 256, 56, 56, 512, 1, 1, 2, 0),
    ConvShape("resnet50-layer3.0.downsample", 1, 512, 28, 28, 1024, 1, 1, 2, 0),
    ConvShape("edge-3x3-pad4", 1, 64, 28, 28, 64, 3, 3, 1, 4),
    ConvShape("edge-1x1-pad2", 1, 128, 28, 28, 128, 1, 1, 1, 2),
    ConvShape("googlenet-inception3a.5x5", 1, 16, 28, 28, 32, 5, 5, 1, 2),
    ConvShape("googlenet-inception4a.5x5", 1, 16, 14, 14, 48, 5, 5, 1, 2),
    ConvShape("googlenet-inception5a.5x5", 1, 32, 7, 7, 128, 5, 5, 1, 2),
)

_BY_NAME = {s.name: s for s in SHAPES}


def shape(name: str) -> ConvShape:
    """The shape called ``name`` in ``SHAPES``."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise KeyError(f"no shape named {name!r}; known: {sorted(_BY_NAME)}") from None


def anchors() -> Dict[str, ConvShape]:
    """The ANCHORS.md shapes by their letter, ``{"a": ..., ..., "i": ...}``."""
    return {s.anchor: s for s in SHAPES if s.anchor is not None}

