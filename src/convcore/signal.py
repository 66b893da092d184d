"""``correlate2d`` / ``convolve2d``: drop-ins for ``scipy.signal``'s functions of the same names.

Same arguments, modes (``full``, ``same``, ``valid``), boundaries (``fill``/``pad``,
``wrap``/``circular``, ``symm``/``symmetric``), ``fillvalue`` rules, result dtypes and
errors as SciPy (checked against SciPy 1.17 in tests/test_signal.py), computed by
convcore's one-channel convolution (``_core.conv2d``: threaded, GIL released).

How each case is computed:

* float32 / float64: one ``conv2d`` call with zero padding (no copy of the image); for
  ``wrap``, ``symm`` or a non-zero fill, the bands of output within reach of the border
  are then recomputed from small extended strips (one more call per side).
* complex: the real and imaginary planes go through one ``conv2d`` call as a batch of 2
  images x 2 filters, combined as (a+ib)(c+id) = (ac-bd) + i(ad+bc).
* integers: SciPy accumulates in the integer type itself, wrapping on overflow, so its
  result is the exact sum modulo 2**bits. When max|in1|*max|in2|*taps bounds every partial
  sum below 2**24 (2**53) the sum is computed exactly in float32 (float64) and wrapped
  into the type; larger values fall back to an exact tap-by-tap sum in wrapping 64-bit
  integers.
* long double (and its complex): the tap-by-tap sum in that dtype.
"""

from __future__ import annotations

from typing import Any, Tuple

import numpy as np

from . import _core

_MODES = {"valid": 0, "same": 1, "full": 2}
# SciPy's boundary names; "reflect" passes its Python-level check and is refused later.
_BOUNDARIES = {"fill": "fill", "pad": "fill", "wrap": "wrap", "circular": "wrap",
               "symm": "symm", "symmetric": "symm", "reflect": None}
# Largest integer bound for which every partial sum is exact in float32 / float64.
_EXACT_F32 = 2**24
_EXACT_F64 = 2**53
_FLOATS = (np.float32, np.float64, np.complex64, np.complex128)


def correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
                fillvalue: Any = 0) -> np.ndarray:
    """Cross-correlate two 2-D arrays, as ``scipy.signal.correlate2d``:
    ``out[i, j] = sum_{k,l} in1[i + k - r0, j + l - c0] * conj(in2[k, l])`` with the
    offset ``(r0, c0)`` and the out-of-range values of ``in1`` given by ``mode`` and
    ``boundary``/``fillvalue``. In ``valid`` mode the inputs are swapped (and the result
    reversed) when ``in2`` is the larger one, as SciPy does."""
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    if not in1.ndim == in2.ndim == 2:
        raise ValueError("correlate2d inputs must both be 2-D arrays")
    swapped = _inputs_swap_needed(mode, in1.shape, in2.shape)
    if swapped:
        in1, in2 = in2, in1
    out = _filter2d(in1, in2.conj(), mode, boundary, fillvalue, flip=False)
    return out[::-1, ::-1] if swapped else out


def convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
               fillvalue: Any = 0) -> np.ndarray:
    """Convolve two 2-D arrays, as ``scipy.signal.convolve2d`` (the kernel ``in2`` is
    flipped; in ``valid`` mode the larger input is taken as the image)."""
    in1 = np.asarray(in1)
    in2 = np.asarray(in2)
    if not in1.ndim == in2.ndim == 2:
        raise ValueError("convolve2d inputs must both be 2-D arrays")
    if _inputs_swap_needed(mode, in1.shape, in2.shape):
        in1, in2 = in2, in1
    return _filter2d(in1, in2, mode, boundary, fillvalue, flip=True)


# ----------------------------------------------------------------------------- checks


def _inputs_swap_needed(mode: Any, shape1: Tuple[int, ...], shape2: Tuple[int, ...]) -> bool:
    """In ``valid`` mode one input must be at least as large as the other in every
    dimension; the larger one becomes the image."""
    if mode != "valid":
        return False
    ok1 = all(a >= b for a, b in zip(shape1, shape2))
    ok2 = all(b >= a for a, b in zip(shape1, shape2))
    if not (ok1 or ok2):
        raise ValueError("For 'valid' mode, one must be at least "
                         "as large as the other in every dimension")
    return not ok1


def _mode_value(mode: Any) -> int:
    try:
        return _MODES[mode]
    except KeyError:
        raise ValueError("Acceptable mode flags are 'valid', 'same', or 'full'.") from None


def _boundary_value(boundary: Any) -> str:
    try:
        value = _BOUNDARIES[boundary]
    except KeyError:
        raise ValueError("Acceptable boundary flags are 'fill', 'circular' "
                         "(or 'wrap'), and 'symmetric' (or 'symm').") from None
    if value is None:
        raise ValueError("Incorrect boundary value.")
    return value


def _fill_value(fillvalue: Any, dtype: np.dtype) -> Any:
    """``fillvalue`` as a scalar of ``dtype``, with SciPy's rules: Python and NumPy
    scalars and lists convert by value (2.5 -> 2 for integers), arrays only by a safe
    cast; anything that does not convert, or only through complex, is a ValueError."""
    try:
        if isinstance(fillvalue, np.ndarray):
            if not np.can_cast(fillvalue.dtype, dtype, "safe"):
                raise TypeError("unsafe cast")
            fill = fillvalue.astype(dtype)
        else:
            fill = np.array(fillvalue, dtype=dtype)
    except (TypeError, ValueError, OverflowError):
        # SciPy retries through complex128 and refuses even when that cast succeeds;
        # a value complex() cannot read keeps its own error.
        np.array(fillvalue, dtype=np.complex128)
        raise ValueError("could not cast `fillvalue` directly to the output "
                         "type (it was first converted to complex).") from None
    if fill.size != 1:
        if fill.size == 0:
            raise ValueError("`fillvalue` cannot be an empty array.")
        raise ValueError("`fillvalue` must be scalar or an array with one element.")
    return fill.reshape(())[()]


def _supported(dtype: np.dtype) -> bool:
    """SciPy's kernel exists for integers, float32/64, long double and their complex."""
    if dtype.kind in "iu":
        return True
    return dtype.kind in "fc" and dtype != np.float16


# ----------------------------------------------------------------------------- driver


def _filter2d(image: np.ndarray, kernel: np.ndarray, mode: Any, boundary: Any,
              fillvalue: Any, flip: bool) -> np.ndarray:
    """Correlation of ``image`` with ``kernel`` (flipped first when ``flip``), in SciPy's
    output geometry. ``kernel`` is already conjugated for correlation."""
    mode_v = _mode_value(mode)
    bnd = _boundary_value(boundary)
    dtype = np.result_type(image, kernel)
    fill = _fill_value(fillvalue, dtype) if bnd == "fill" else 0
    if not _supported(dtype):
        raise ValueError("convolve2d not available for this type.")

    shape, pads = geometry(mode_v, image.shape, kernel.shape, flip)
    if min(shape) < 0:
        raise ValueError("negative dimensions are not allowed")
    if min(shape) == 0 or kernel.size == 0:
        return np.zeros(shape, dtype=dtype)  # no output, or sums of no terms
    if image.size == 0 and bnd != "fill":  # SciPy crashes here (division by zero)
        raise ValueError(
            f"boundary={boundary!r} needs a non-empty in1 to extend, got in1 of shape "
            f"{image.shape}"
        )
    # Uninitialised and recycled (_core.empty): fresh pages (np.zeros' calloc, or malloc
    # of a block it had returned to the OS) cost a page fault per 4 KiB on first touch,
    # more than the filter itself.
    out = _core.empty(shape, np.dtype(dtype))
    x = np.asarray(image, dtype=dtype)
    w = np.asarray(kernel, dtype=dtype)
    if flip:
        w = w[::-1, ::-1]
    correlate_into(x, w, pads, bnd, fill, out)
    return out


def geometry(mode_v: int, shape1: Tuple[int, int], shape2: Tuple[int, int],
             flip: bool) -> Tuple[Tuple[int, int], Tuple[int, int, int, int]]:
    """(output shape, pads): the output of image ``shape1`` and kernel ``shape2`` in mode
    ``mode_v`` (0 valid, 1 same, 2 full), and the rows/columns (top, bottom, left, right)
    of the extended image it reads beyond the image, as padding around it."""
    m1, n1 = shape1
    m2, n2 = shape2
    # The output's offset (r0, c0) inside the 'full' output. 'same' centres the kernel at
    # (m2//2, n2//2) for correlation and at ((m2-1)//2, (n2-1)//2) for convolution (the
    # flipped kernel's centre), as SciPy.
    if mode_v == 2:
        shape, r0, c0 = (m1 + m2 - 1, n1 + n2 - 1), 0, 0
    elif mode_v == 1:
        shape = (m1, n1)
        r0, c0 = ((m2 - 1) // 2, (n2 - 1) // 2) if flip else (m2 // 2, n2 // 2)
    else:
        shape, r0, c0 = (m1 - m2 + 1, n1 - n2 + 1), m2 - 1, n2 - 1
    return shape, (m2 - 1 - r0, r0 + shape[0] - m1, n2 - 1 - c0, c0 + shape[1] - n1)


def correlate_into(x: np.ndarray, w: np.ndarray, pads: Tuple[int, int, int, int], bnd: str,
                   fill: Any, out: np.ndarray) -> None:
    """out = ``x`` extended by ``pads`` (top, bottom, left, right) cells of boundary ``bnd``
    ("fill", "wrap", "symm"), correlated with ``w`` (valid). ``x``, ``w`` and ``out`` share
    one supported dtype; ``fill`` is a scalar of it. Also the per-block call of
    ``convcore.dask``."""
    dtype = out.dtype
    if x.size == 0 or not (dtype.kind in "iu" or dtype in _FLOATS):
        # An empty image (only fill values are read), or long double and its complex
        # (no convcore kernel): the sum tap by tap in the dtype itself.
        _correlate_taps(_pad(x, pads, bnd, fill), w, out)
    elif dtype in (np.float32, np.float64):
        _correlate_real(x, w, pads, bnd, fill, out)
    elif dtype in (np.complex64, np.complex128):
        _correlate_complex(x, w, pads, bnd, fill, out)
    else:
        _correlate_int(x, w, pads, bnd, fill, out)


def _extended(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, bnd: str,
              fill: Any) -> np.ndarray:
    """``x`` read at image coordinates ``rows`` x ``cols`` (which may fall outside it),
    the outside given by the boundary: constant ``fill``, periodic (``wrap``), or mirrored
    with the edge repeated (``symm``, period 2n), over as many periods as needed."""
    m, n = x.shape
    if bnd == "fill":
        r_in = (rows >= 0) & (rows < m)
        c_in = (cols >= 0) & (cols < n)
        block = np.full((rows.size, cols.size), fill, dtype=x.dtype)
        block[np.ix_(r_in, c_in)] = x[np.ix_(rows[r_in], cols[c_in])]
        return block
    if bnd == "wrap":
        return x[np.ix_(rows % m, cols % n)]
    r, c = rows % (2 * m), cols % (2 * n)
    return x[np.ix_(np.where(r < m, r, 2 * m - 1 - r), np.where(c < n, c, 2 * n - 1 - c))]


def _pad(x: np.ndarray, pads: Tuple[int, int, int, int], bnd: str, fill: Any) -> np.ndarray:
    """``x`` extended by (top, bottom, left, right) cells."""
    t, b, l, r = pads
    m, n = x.shape
    return _extended(x, np.arange(-t, m + b), np.arange(-l, n + r), bnd, fill)


def _conv_planes(x: np.ndarray, w: np.ndarray, pads: Tuple[int, int, int, int],
                 out: np.ndarray) -> None:
    """out[n, k] = x[n] correlated with w[k], zero padding ``pads``: one ``conv2d`` call
    (x: (N, H, W), w: (K, R, S), out: (N, K, Ho, Wo), all one float dtype)."""
    _core.conv2d(
        np.require(x[:, None], requirements=["C", "A"]),
        np.require(w[:, None], requirements=["C", "A"]),
        None, out, (1, 1), pads, (1, 1), 1, "zeros", "none", 1.0, 0.0, "direct",
    )


def _correlate_planes(xs: np.ndarray, ws: np.ndarray, pads: Tuple[int, int, int, int],
                      bnd: str, fills: Tuple[Any, ...], out: np.ndarray) -> None:
    """out[n, k] = xs[n] (extended by the boundary, ``fills[n]`` for fill) correlated
    with ws[k], over the output region that ``pads`` describes.

    One zero-padded ``conv2d`` call computes everything; for any other boundary only
    the bands of output that read outside the image (``pads`` rows/columns at each side)
    are recomputed from small extended strips, so no padded copy of the image is made.
    """
    _conv_planes(xs, ws, pads, out)
    if bnd == "fill" and all(f == 0 for f in fills):
        return
    t, b, l, r = pads
    ho, wo = out.shape[2:]
    m2, n2 = ws.shape[1:]
    top, bottom = min(t, ho), max(ho - b, min(t, ho))
    left, right = min(l, wo), max(wo - r, min(l, wo))
    bands = ((0, top, 0, wo), (bottom, ho, 0, wo),  # full-width rows at the top, bottom
             (top, bottom, 0, left), (top, bottom, right, wo))  # then the side columns
    for r0, r1, c0, c1 in bands:
        if r0 == r1 or c0 == c1:
            continue
        # Output (i, j) reads image rows i - t .. i - t + m2 - 1 (columns likewise).
        rows, cols = np.arange(r0 - t, r1 - t + m2 - 1), np.arange(c0 - l, c1 - l + n2 - 1)
        strips = np.stack([_extended(x, rows, cols, bnd, f) for x, f in zip(xs, fills)])
        band = _core.empty(out.shape[:2] + (r1 - r0, c1 - c0), np.dtype(out.dtype))
        _conv_planes(strips, ws, (0, 0, 0, 0), band)
        out[:, :, r0:r1, c0:c1] = band


def _correlate_real(x: np.ndarray, w: np.ndarray, pads: Tuple[int, int, int, int],
                    bnd: str, fill: Any, out: np.ndarray) -> None:
    _correlate_planes(x[None], w[None], pads, bnd, (fill,), out[None, None])


def _correlate_complex(x: np.ndarray, w: np.ndarray, pads: Tuple[int, int, int, int],
                       bnd: str, fill: Any, out: np.ndarray) -> None:
    xs = np.stack([x.real, x.imag])
    ws = np.stack([w.real, w.imag])
    y = _core.empty((2, 2) + out.shape, np.dtype(xs.dtype))
    fill = complex(fill)
    _correlate_planes(xs, ws, pads, bnd, (fill.real, fill.imag), y)
    out.real = y[0, 0] - y[1, 1]
    out.imag = y[0, 1] + y[1, 0]


def _max_abs(a: np.ndarray) -> int:
    """max |a| as a Python int (exact, also for the most negative int64)."""
    return max(abs(int(a.max())), abs(int(a.min()))) if a.size else 0


def _correlate_int(x: np.ndarray, w: np.ndarray, pads: Tuple[int, int, int, int],
                   bnd: str, fill: int, out: np.ndarray) -> None:
    padded = bnd != "fill" or fill != 0
    bound = max(_max_abs(x), abs(int(fill)) if padded else 0) * _max_abs(w) * w.size
    if bound > _EXACT_F64:
        xp = _pad(x, pads, bnd, fill)
        _correlate_taps(xp, w, out)
        return
    work = np.float32 if bound <= _EXACT_F32 else np.float64
    y = _core.empty(out.shape, np.dtype(work))
    _correlate_real(x.astype(work), w.astype(work), pads, bnd, work(fill), y)
    # Every value is an exact integer with |y| <= bound: through int32 (float32 path,
    # bound <= 2**24) or int64, then wrapped into the type as SciPy's accumulation wraps.
    exact = y.astype(np.int32 if work is np.float32 else np.int64)
    out[...] = exact.astype(out.dtype, copy=False)


def _correlate_taps(xp: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
    """out = valid correlation of the padded ``xp`` with ``w``, one tap at a time. For
    integers the sum runs in uint64 (wrapping, i.e. exact modulo 2**64) and is then
    wrapped into the type; other dtypes sum in their own type."""
    ho, wo = out.shape
    if out.dtype.kind in "iu":
        acc = np.zeros(out.shape, dtype=np.uint64)
        xs = xp.astype(np.int64).view(np.uint64) if xp.dtype.kind == "i" else xp.astype(np.uint64)
        ws = w.astype(np.int64).view(np.uint64) if w.dtype.kind == "i" else w.astype(np.uint64)
    else:
        acc, xs, ws = out, xp, w
        acc[...] = 0
    for k in range(w.shape[0]):
        for l in range(w.shape[1]):
            acc += xs[k:k + ho, l:l + wo] * ws[k, l]
    if acc is not out:
        out[...] = (acc.view(np.int64) if out.dtype.kind == "i" else acc).astype(out.dtype)


__all__ = ["convolve2d", "correlate2d"]
