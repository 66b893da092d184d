"""convcore on Dask arrays: images and batches larger than one machine, computed blockwise.

``conv2d``, ``max_pool2d``, ``avg_pool2d``, ``correlate2d``, ``convolve2d`` take the NumPy
calls' arguments with a ``dask.array.Array`` as the image (chunked in N, H and W; C whole)
and return one, computed block by block on any Dask scheduler: equal to the NumPy call
on the whole array, bitwise (each output's sum runs in the same order whatever block
computes it). ``predict(model, x)`` runs a model over a batch-chunked array. Arguments
are checked when the call is made, before any computing, with the NumPy calls' errors.

How a block is computed (the halo exchange, without map_overlap's copies):

* Output chunks follow the input chunks: output row ``o`` belongs to the block whose input
  chunk holds row ``o*stride`` (for ``"same"`` and stride 1 the chunks are the input's);
  with a stride > 1 the input is first rechunked so that chunk edges fall on multiples
  of the stride.
* Each input chunk publishes its edges (a few rows and columns, copied: small) as one
  task. A block's task reads its own chunk in place and its neighbours' edges. When the
  graph is made for a scheduler that runs tasks in this process (threaded, synchronous),
  there are no edge tasks: a block reads its neighbours' strips from their chunks in
  place (16 fewer tasks for 16 chunks, and Dask's cost per task is most of what a small
  filter costs). An input that only adds leading axes to another array (``img[None,
  None]``) is read through the same way: blocks take the source's chunks and add the axes
  themselves, so its view tasks leave the graph.
* conv2d / correlate2d: one call on the block's own chunk, zero-padded where it meets
  its neighbours, computes the block's output in place; the outputs within reach of a
  neighbour (a frame as thick as the halo) are then recomputed from small strips
  gathered from the neighbours' edges and the image border (the call's padding mode),
  and written over the frame. Only the strips are copied.
* Pooling: one call per block on the block's chunk (in place when the windows do not
  cross chunk edges, e.g. a 2x2 stride-2 pool on even chunks), else on the chunk with
  its halo gathered, the implicit padding left to the pooling kernel at the image
  border so that divisors and ceil_mode match the whole-array call.

Threads: each task caps convcore at ``dask.config.get("convcore.threads_per_task", 1)``
threads (``_core.set_thread_limit``, thread-local), so a scheduler running one task per
core does not oversubscribe; the GIL is released while convcore computes.

``compute()``: on an in-process scheduler the array a call returns is computed into one
output array (in recycled memory): each block task copies its result into its part of it
while the block is still in cache, both threads at once, so no serial concatenation into
fresh pages follows the last block (on a 4096x4096 image that step alone cost more than
the whole-array filter). Only the returned array itself works so: anything built on it
(``dask.array.store``, ``to_zarr``, slices, further operations) sees blocks of their own,
so writing a result to disk never holds it whole.

Memory: convcore writes each block's output into memory recycled from outputs that died
(:func:`convcore.set_output_cache_bytes`, ``CONVCORE_OUTPUT_CACHE_MB``; 256 MiB of them
kept per process by default). A fresh 16 MiB block costs its page faults, 3-6x the
Sobel filter it holds; with the default, a worker of a 2-worker cluster reuses all of its
share of an 8192x8192 image's 2048x2048 output blocks. Under a tight worker memory
limit, set a smaller value in the workers' environment: the kept memory counts in the
worker's process memory.
"""

from __future__ import annotations

import functools
import math
import pickle
import warnings
import weakref
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import numpy as np

try:
    import dask
    import dask.array as da
    import dask.local
    import dask.threaded
    from dask.highlevelgraph import HighLevelGraph, MaterializedLayer
    try:  # Dask's task objects (2024.12 on), to recognise a view of another array's chunks
        from dask._task_spec import Task, TaskRef
    except ImportError:  # pragma: no cover - older Dask: such inputs keep their own tasks
        Task = TaskRef = None
except ImportError as _error:  # pragma: no cover - exercised only without dask
    raise ImportError(
        "convcore.dask needs Dask: install the extra with  pip install 'convcore[dask]'  "
        "(dask[array] and distributed)"
    ) from _error

from . import _core
from . import functional as F
from . import layers
from . import signal as S

__all__ = ["avg_pool2d", "conv2d", "convolve2d", "correlate2d", "max_pool2d", "predict"]

Quad = Tuple[int, int, int, int]


# ----------------------------------------------------------------------------- validation


def _validated(func: Any, real_shape: Tuple[int, ...], dummy: np.ndarray, *args: Any,
               **kwargs: Any) -> np.ndarray:
    """``func(dummy, ...)``: the NumPy call on an input with nothing to compute (a batch of
    0, or a small image of the same geometry), so it checks every argument. Its error is
    re-raised with the real input's shape in place of the dummy's."""
    try:
        return func(dummy, *args, **kwargs)
    except (TypeError, ValueError) as e:
        message = str(e).replace(str(tuple(dummy.shape)), str(tuple(real_shape)))
        raise type(e)(message) from None


def _batch0(x: "da.Array") -> np.ndarray:
    """An empty batch shaped like one of ``x``'s (N, C, H, W) or (C, H, W) inputs (other
    ranks keep theirs, for the rank error)."""
    shape = (0,) + x.shape if x.ndim == 3 else (0,) + x.shape[1:] if x.ndim else ()
    return np.empty(shape, x.dtype)


def _as_dask(x: Any, name: str) -> "da.Array":
    if not isinstance(x, da.Array):
        if not (isinstance(x, np.ndarray) or hasattr(x, "__array__")):
            raise TypeError(f"{name} must be a dask.array.Array (or an array), got "
                            f"{type(x).__name__}")
        x = da.asarray(x)
    if any(math.isnan(c) for axis in x.chunks for c in axis):
        raise ValueError(f"{name} has chunks of unknown size {x.chunks}: call "
                         f"{name}.compute_chunk_sizes() first")
    return x


def _in_memory(x: Any) -> Any:
    """Small operands (weights, bias, kernels) as NumPy arrays, computed if lazy."""
    return None if x is None else np.asarray(x)


def _whole_axis(x: "da.Array", axis: int, what: str, func: str) -> "da.Array":
    if len(x.chunks[axis]) > 1:
        warnings.warn(f"convcore.dask.{func}: the {what} axis of the input is chunked "
                      f"({x.chunks[axis]}); rechunking it to one chunk", stacklevel=3)
        x = x.rechunk({axis: -1})
    return x


def _threads_per_task() -> int:
    n = dask.config.get("convcore.threads_per_task", 1)
    return F._int_param(n, "convcore.threads_per_task", 0)


def _shared_memory() -> bool:
    """Whether the scheduler Dask would use now runs tasks in this process (the threaded or
    the synchronous one; not a distributed client, not processes): then a block reads its
    neighbours' chunks in place and no edge tasks are made. A graph built so and computed
    on a cluster later stays exact; it only moves whole neighbour chunks instead of edges."""
    try:
        get = dask.base.get_scheduler()
    except (RuntimeError, ValueError):  # a configured scheduler that is not available
        return False
    return get is None or get in (dask.threaded.get, dask.local.get_sync)


# ----------------------------------------------------------------------------- geometry


class _Axis(NamedTuple):
    """One spatial axis of a sliding-window op: input ``size`` in chunks ``bounds``, output
    ``out`` in chunks ``out_bounds``; output ``o`` reads input
    ``[o*stride - lo, o*stride - lo + ext)`` (outside ``[0, size)``: the padding)."""

    size: int
    ext: int
    stride: int
    lo: int
    out: int
    bounds: Tuple[int, ...]
    out_bounds: Tuple[int, ...]

    def window(self, o0: int, o1: int) -> Tuple[int, int]:
        """Input rows read by outputs ``[o0, o1)``."""
        return o0 * self.stride - self.lo, (o1 - 1) * self.stride - self.lo + self.ext


def _bounds(chunks: Sequence[int]) -> Tuple[int, ...]:
    return tuple(int(v) for v in np.concatenate([[0], np.cumsum(chunks)]))


def _aligned_chunks(chunks: Sequence[int], stride: int) -> Tuple[int, ...]:
    """Chunks whose inner edges are multiples of ``stride`` (edges moved down to one)."""
    b = _bounds(chunks)
    if stride == 1 or all(v % stride == 0 for v in b[1:-1]):
        return tuple(chunks)
    inner = sorted({v // stride * stride for v in b[1:-1]} - {0})
    edges = [0] + [v for v in inner if v < b[-1]] + [b[-1]]
    return tuple(int(e1 - e0) for e0, e1 in zip(edges[:-1], edges[1:]))


def _axis(size: int, ext: int, stride: int, lo: int, out: int, chunks: Sequence[int]) -> _Axis:
    b = _bounds(chunks)
    ob = [0] + [min(out, -(-v // stride)) for v in b[1:-1]] + [out]
    return _Axis(size, ext, stride, lo, out, b, tuple(ob))


def _source(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Image index of each padded coordinate in ``idx`` for a padding mode (-1 where the
    padding is a constant: zeros or SciPy's fill)."""
    if mode in ("zeros", "fill"):
        return np.where((idx >= 0) & (idx < n), idx, -1)
    if mode == "replicate":
        return np.clip(idx, 0, n - 1)
    if mode == "reflect":  # PyTorch's: the edge is not repeated, padding < n
        return np.where(idx < 0, -idx, np.where(idx >= n, 2 * (n - 1) - idx, idx))
    if mode in ("circular", "wrap"):
        return idx % n
    r = idx % (2 * n)  # SciPy's symm: mirrored with the edge repeated, period 2n
    return np.where(r < n, r, 2 * n - 1 - r)


# ----------------------------------------------------------------------------- the ops


class _Op:
    """What a block task calls: ``run(x, pads)`` on a gathered or in-place input whose two
    last axes are spatial, returning the output (pads: implicit padding, top, bottom,
    left, right). ``threads`` is the per-task cap."""

    threads = 1
    dtype: np.dtype

    def run(self, x: np.ndarray, pads: Quad) -> np.ndarray:
        raise NotImplementedError


class _ConvOp(_Op):
    def __init__(self, weight, bias, stride, dilation, groups, act, algorithm, dtype):
        self.weight = F._contiguous(weight)
        self.bias = None if bias is None else F._contiguous(bias)
        self.stride, self.dilation, self.groups = stride, dilation, groups
        self.act, self.algorithm, self.dtype = act, algorithm, dtype
        self.ext = tuple(d * (k - 1) + 1 for d, k in zip(dilation, weight.shape[2:]))

    def run(self, x: np.ndarray, pads: Quad) -> np.ndarray:
        n, _, h, w = x.shape
        ho = (h + pads[0] + pads[1] - self.ext[0]) // self.stride[0] + 1
        wo = (w + pads[2] + pads[3] - self.ext[1]) // self.stride[1] + 1
        y = _core.empty((n, self.weight.shape[0], ho, wo), self.dtype)
        if n:
            # Aligned again: an op unpickled on a worker may hold unaligned buffers.
            bias = None if self.bias is None else F._contiguous(self.bias)
            _core.conv2d(F._contiguous(x), F._contiguous(self.weight), bias, y, self.stride, pads,
                         self.dilation, self.groups, "zeros", *self.act, self.algorithm)
        return y


class _CorrelateOp(_Op):
    def __init__(self, kernel: np.ndarray, dtype: np.dtype):
        self.kernel, self.dtype = kernel, dtype

    def run(self, x: np.ndarray, pads: Quad) -> np.ndarray:
        m2, n2 = self.kernel.shape
        y = _core.empty((x.shape[0] + pads[0] + pads[1] - m2 + 1,
                         x.shape[1] + pads[2] + pads[3] - n2 + 1), self.dtype)
        S.correlate_into(np.asarray(x, dtype=self.dtype), F._contiguous(self.kernel), pads, "fill",
                         self.dtype.type(0), y)
        return y


class _PoolOp(_Op):
    def __init__(self, kind, kernel, stride, dilation, ceil_mode, count_include_pad, dtype):
        # The padding reaches run() as pads: implicit where a call meets the image border.
        self.kind, self.kernel, self.stride = kind, kernel, stride
        self.dilation, self.ceil_mode = dilation, ceil_mode
        self.count_include_pad, self.dtype = count_include_pad, dtype

    def run(self, x: np.ndarray, pads: Quad) -> np.ndarray:
        n, c, h, w = x.shape
        pad2 = (pads[0], pads[2])  # symmetric: (top == bottom, left == right)
        _, _, ho, wo = _core.pool2d_output_shape((n, c, h, w), self.kernel, self.stride, pad2,
                                                 self.dilation, self.ceil_mode,
                                                 self.kind != "max")
        y = _core.empty((n, c, ho, wo), self.dtype)
        if y.size == 0:
            return y
        x = F._contiguous(x)
        if self.kind == "max":
            _core.max_pool2d(x, y, self.kernel, self.stride, pad2, self.dilation, self.ceil_mode)
        else:
            _core.avg_pool2d(x, y, self.kernel, self.stride, pad2, self.ceil_mode,
                             self.count_include_pad)
        return y


# ----------------------------------------------------------------------------- block plans


class _Window(NamedTuple):
    """Part of a block computed by one call: output rows/cols ``out`` (local to the block)
    from the input at rows ``rows`` x columns ``cols`` (ranges of padded coordinates,
    mapped to the image by the padding mode; None: the block's own chunk, read in
    place), with implicit ``pads``; the call's output is used from ``crop`` on."""

    out: Quad
    rows: Optional[Tuple[int, int]]
    cols: Optional[Tuple[int, int]]
    pads: Quad
    crop: Tuple[int, int]


class _Plan:
    """A block's regions, ready to run (an object, not a tuple, so that Dask does not
    search it for keys). A region is (out, pads, crop, gather): ``gather`` is None (the
    own chunk) or (shape, rows to fill, columns to fill, copies), a copy being (piece,
    destination rows, destination columns, source rows, source columns) as slices or
    broadcastable index arrays."""

    __slots__ = ("shape", "regions", "fill")

    def __init__(self, shape: Tuple[int, int], regions: Tuple[Any, ...], fill: Any) -> None:
        self.shape, self.regions, self.fill = shape, regions, fill


def _frame(ax: _Axis, a: int, zero_border: bool) -> Tuple[int, int]:
    """(leading, trailing) outputs of block ``a`` along ``ax`` that an in-place call on the
    block's chunk gets wrong: their windows reach a neighbour, or padding that is not
    zeros."""
    i0, i1 = ax.bounds[a], ax.bounds[a + 1]
    o0, o1 = ax.out_bounds[a], ax.out_bounds[a + 1]
    n = o1 - o0
    lead = trail = 0
    if i0 > 0 or not zero_border:
        lead = min(n, max(0, -(-(i0 + ax.lo) // ax.stride) - o0))
    if i1 < ax.size or not zero_border:
        first_bad = (i1 + ax.lo - ax.ext) // ax.stride + 1
        trail = min(n, max(0, o1 - max(first_bad, o0)))
    return lead, trail


def _conv_windows(hx: _Axis, wx: _Axis, a: int, b: int, mode: str) -> List[_Window]:
    """A conv/correlate block: an in-place call and the frame's strips, or one gathered
    call when the frame covers the block."""
    o0, o1 = hx.out_bounds[a], hx.out_bounds[a + 1]
    p0, p1 = wx.out_bounds[b], wx.out_bounds[b + 1]
    n, m = o1 - o0, p1 - p0
    zero = mode == "zeros"
    (lt, lb), (ll, lr) = _frame(hx, a, zero), _frame(wx, b, zero)

    def strip(r0: int, r1: int, c0: int, c1: int) -> _Window:
        return _Window((r0, r1, c0, c1), hx.window(o0 + r0, o0 + r1),
                       wx.window(p0 + c0, p0 + c1), (0, 0, 0, 0), (0, 0))

    hc = hx.bounds[a + 1] - hx.bounds[a]
    wc = wx.bounds[b + 1] - wx.bounds[b]
    if lt + lb >= n or ll + lr >= m or hc == 0 or wc == 0:
        return [strip(0, n, 0, m)]
    # The in-place call: the chunk with zero padding lo before it (its first output is the
    # block's first, chunks being stride-aligned) and enough after it for n outputs.
    pads = []
    for ax, size, count in ((hx, hc, n), (wx, wc, m)):
        pads += [ax.lo, max(0, (count - 1) * ax.stride + ax.ext - size - ax.lo)]
    windows = [_Window((0, n, 0, m), None, None, tuple(pads), (0, 0))]
    for r0, r1, c0, c1 in ((0, lt, 0, m), (n - lb, n, 0, m), (lt, n - lb, 0, ll),
                           (lt, n - lb, m - lr, m)):
        if r1 > r0 and c1 > c0:
            windows.append(strip(r0, r1, c0, c1))
    return windows


def _pool_range(ax: _Axis, a: int, o0: int, o1: int) -> Tuple[Optional[Tuple[int, int]], int, int]:
    """(input rows or None for the block's own chunk, implicit padding, first useful
    output) of a pooling call computing outputs ``[o0, o1)``. Real rows only: the padding
    (``ax.lo`` on both sides, as the kernel takes it) is left implicit where the windows
    meet the image border, so divisors and ceil_mode match the whole-array call; the call's
    output m then reads rows ``first + m*stride - pad``, which must be some
    ``o*stride - lo``."""
    start, end = ax.window(o0, o1)
    i0, i1 = ax.bounds[a], ax.bounds[a + 1]
    pad = ax.lo if start < 0 or end > ax.size else 0
    end = min(end, ax.size)
    if i0 <= max(start, 0) and end <= i1 and (i0 - pad + ax.lo) % ax.stride == 0:
        return None, pad, o0 - (i0 - pad + ax.lo) // ax.stride
    first = 0 if start < 0 else start - (start - pad + ax.lo) % ax.stride
    return (first, end), pad, o0 - (first - pad + ax.lo) // ax.stride


def _pool_windows(hx: _Axis, wx: _Axis, a: int, b: int) -> List[_Window]:
    o0, o1 = hx.out_bounds[a], hx.out_bounds[a + 1]
    p0, p1 = wx.out_bounds[b], wx.out_bounds[b + 1]
    rows, ph, cr = _pool_range(hx, a, o0, o1)
    cols, pw, cc = _pool_range(wx, b, p0, p1)
    if (rows is None) != (cols is None):  # one axis in place, the other not: gather both
        i0, i1, j0, j1 = hx.bounds[a], hx.bounds[a + 1], wx.bounds[b], wx.bounds[b + 1]
        rows = (i0, i1) if rows is None else rows
        cols = (j0, j1) if cols is None else cols
    return [_Window((0, o1 - o0, 0, p1 - p0), rows, cols, (ph, ph, pw, pw), (cr, cc))]


def _edge_depth(ax: _Axis) -> int:
    """Rows (columns) each chunk publishes at each end: a neighbour's windows reach at most
    ext - 1 into it, a reflected or wrapped border at most the padding."""
    beyond = max(0, (ax.out - 1) * ax.stride - ax.lo + ax.ext - ax.size)
    return max(ax.ext, ax.lo + 1, beyond + 1)


def _boxes(hx: _Axis, wx: _Axis, p: int, q: int, eh: int, ew: int) -> List[Quad]:
    """(row, rows, col, cols) in the image of chunk (p, q)'s published edges, in
    ``_edges``' order: first rows, last rows, first columns, last columns."""
    r0, r1, c0, c1 = hx.bounds[p], hx.bounds[p + 1], wx.bounds[q], wx.bounds[q + 1]
    eh, ew = min(eh, r1 - r0), min(ew, c1 - c0)
    return [(r0, eh, c0, c1 - c0), (r1 - eh, eh, c0, c1 - c0), (r0, r1 - r0, c0, ew),
            (r0, r1 - r0, c1 - ew, ew)]


def _span(idx: np.ndarray) -> Any:
    """A slice for consecutive ascending indices, else the index array."""
    if idx.size and idx[-1] - idx[0] + 1 == idx.size and (idx.size == 1 or (
            idx[1:] - idx[:-1] == 1).all()):
        return slice(int(idx[0]), int(idx[-1]) + 1)
    return idx


class _Reads(NamedTuple):
    """What one axis of a gathered input reads: its length, the positions to fill with the
    constant padding, and per chunk p (p, positions, lowest and highest row read in the
    chunk, source rows in the chunk, the same counted from the chunk's last ``depth``
    rows (its trailing edge))."""

    size: int
    fill: Any
    chunks: Tuple[Tuple[int, Any, int, int, Any, Any], ...]


def _reads(ax: _Axis, span: Tuple[int, int], mode: str, depth: int) -> _Reads:
    idx = _source(np.arange(*span), ax.size, mode)
    inside = idx >= 0
    fill = np.nonzero(~inside)[0]
    chunk = np.searchsorted(ax.bounds, idx, side="right") - 1
    out = []
    for p in np.unique(chunk[inside]):
        pos = np.nonzero(inside & (chunk == p))[0]
        local = idx[pos] - ax.bounds[p]
        tail = ax.bounds[p + 1] - ax.bounds[p] - min(depth, ax.bounds[p + 1] - ax.bounds[p])
        out.append((int(p), _span(pos), int(local.min()), int(local.max()), _span(local),
                    _span(local - tail)))
    return _Reads(span[1] - span[0], _span(fill) if fill.size else None, tuple(out))


def _broadcast(dr: Any, dc: Any, sr: Any, sc: Any) -> Tuple[Any, ...]:
    """Destination and source indices usable together: slices when all four are, else
    (n, 1) and (1, m) index arrays."""
    spans = (dr, dc, sr, sc)
    if all(isinstance(v, slice) for v in spans):
        return spans
    dr, dc, sr, sc = (np.arange(v.start, v.stop) if isinstance(v, slice) else v for v in spans)
    return (dr[:, None], dc[None, :], sr[:, None], sc[None, :])


def _plan(windows: List[_Window], shape: Tuple[int, int], hx: _Axis, wx: _Axis, a: int, b: int,
          eh: int, ew: int, mode: str, fill: Any, shared: bool,
          cache: Dict[Any, _Reads]) -> Tuple[_Plan, List[Tuple[int, int]], List[Tuple[int, int]]]:
    """A block's plan, and the neighbours it reads: chunks whose published edges hold what
    is read there (one edge each: first rows, last rows, first columns, last columns, as
    ``_edges``), and chunks read whole (every neighbour when ``shared``: the chunks are in
    this process's memory, so reading a strip of one in place costs nothing). Each axis's
    reads are worked out once per span (``cache``) and combined here."""
    edges: List[Tuple[int, int]] = []
    fulls: List[Tuple[int, int]] = []
    regions = []
    for win in windows:
        if win.rows is None:
            regions.append((win.out, win.pads, win.crop, None))
            continue
        rr = cache.get((0, win.rows))
        if rr is None:
            rr = cache[(0, win.rows)] = _reads(hx, win.rows, mode, eh)
        cr = cache.get((1, win.cols))
        if cr is None:
            cr = cache[(1, win.cols)] = _reads(wx, win.cols, mode, ew)
        copies = []
        for p, dr, rlo, rhi, sr, sr_tail in rr.chunks:
            hp = hx.bounds[p + 1] - hx.bounds[p]
            for q, dc, clo, chi, sc, sc_tail in cr.chunks:
                wq = wx.bounds[q + 1] - wx.bounds[q]
                if (p, q) == (a, b):
                    copies.append((0,) + _broadcast(dr, dc, sr, sc))
                    continue
                fits = (rhi < eh, rlo >= hp - eh, chi < ew, clo >= wq - ew)
                if any(fits) and not shared:
                    e = fits.index(True)
                    if (p, q) not in edges:
                        edges.append((p, q))
                    src = ((sr, sc), (sr_tail, sc), (sr, sc), (sr, sc_tail))[e]
                    copies.append(((p, q), e) + _broadcast(dr, dc, *src))
                else:
                    if (p, q) not in fulls:
                        fulls.append((p, q))
                    copies.append(((p, q), "full") + _broadcast(dr, dc, sr, sc))
        regions.append((win.out, win.pads, win.crop, ((rr.size, cr.size), rr.fill, cr.fill,
                                                        copies)))
    # Pieces at run time: [own chunk] + 4 edges per edge chunk + whole chunks.
    def piece(chunk: Any, kind: Any) -> int:
        if kind == "full":
            return 1 + 4 * len(edges) + fulls.index(chunk)
        return 1 + 4 * edges.index(chunk) + kind

    regions = [r if r[3] is None else r[:3] + (r[3][:3] + (tuple(
        c if c[0] == 0 else (piece(c[0], c[1]),) + c[2:] for c in r[3][3]),),) for r in regions]
    return _Plan(shape, tuple(regions), fill), edges, fulls


# ----------------------------------------------------------------------------- tasks


def _edges(x: np.ndarray, eh: int, ew: int) -> Tuple[np.ndarray, ...]:
    """A chunk's published edges (copies, so a neighbour holds only them): its first and
    last ``eh`` rows and ``ew`` columns (``_boxes`` says where they lie)."""
    h, w = x.shape[-2:]
    eh, ew = min(eh, h), min(ew, w)
    return (x[..., :eh, :].copy(), x[..., h - eh:, :].copy(), x[..., :, :ew].copy(),
            x[..., :, w - ew:].copy())


def _block(op: _Op, plan: _Plan, own: np.ndarray, edges: List[Tuple[np.ndarray, ...]],
           fulls: List[np.ndarray], lift: Optional[Tuple[Any, ...]] = None) -> np.ndarray:
    """One output block: the plan's regions computed from the block's own chunk, the
    neighbours' edges and whole chunks (each viewed through ``lift`` first, see
    ``_lifted``), with convcore capped at ``op.threads`` threads on this thread."""
    if lift is not None:
        own, fulls = own[lift], [f[lift] for f in fulls]
        edges = [tuple(e[lift] for e in es) for es in edges]
    previous = _core.get_thread_limit()
    _core.set_thread_limit(op.threads)
    try:
        pieces = [own] + [arr for e in edges for arr in e] + list(fulls)
        lead = own.shape[:-2]
        y = None
        for out_quad, pads, crop, gather in plan.regions:
            if gather is None:
                x = own
            else:
                shape, fill_rows, fill_cols, copies = gather
                x = np.empty(lead + shape, own.dtype)
                if fill_rows is not None:
                    x[..., fill_rows, :] = plan.fill
                if fill_cols is not None:
                    x[..., :, fill_cols] = plan.fill
                for piece, dr, dc, sr, sc in copies:
                    x[..., dr, dc] = pieces[piece][..., sr, sc]
            out = op.run(x, pads)
            t, bt, l, rt = out_quad
            out = out[..., crop[0]:crop[0] + bt - t, crop[1]:crop[1] + rt - l]
            if y is None:
                if (bt - t, rt - l) == plan.shape:
                    y = out
                    continue
                y = np.empty(out.shape[:-2] + plan.shape, op.dtype)
            y[..., t:bt, l:rt] = out
        return y
    finally:
        _core.set_thread_limit(previous)


def _empty_block(shape: Tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    return np.empty(shape, dtype)


# ----------------------------------------------------------------------------- compute()

# The whole outputs of in-process computes not yet handed to a caller, by id (see _assemble).
_unclaimed: "weakref.WeakValueDictionary[int, np.ndarray]" = weakref.WeakValueDictionary()


class _Buffer:
    """The whole output of one in-process ``compute()``, made by a task (so each run has its
    own) in recycled memory (``_core.empty``). Each block task copies its result into its
    part while the block is still in cache, on the scheduler's threads in parallel, and
    returns a view: the serial concatenation of the blocks into a fresh array that
    ``compute()`` would do last (page faults and one thread copying everything) is gone.
    Pickled (a process-based scheduler after all) it arrives detached: blocks then return
    their own arrays and are concatenated as usual."""

    def __init__(self, shape: Tuple[int, ...], dtype: np.dtype) -> None:
        self.array: Optional[np.ndarray] = _core.empty(list(shape), np.dtype(dtype))
        _unclaimed[id(self.array)] = self.array

    def __reduce__(self) -> Tuple[Any, ...]:
        return _Buffer._detached, ()

    @classmethod
    def _detached(cls) -> "_Buffer":
        buffer = cls.__new__(cls)
        buffer.array = None
        return buffer


def _into(buffer: _Buffer, index: Tuple[slice, ...], func: Any, *args: Any) -> np.ndarray:
    """``func(*args)``, copied into its part of the whole output; returns that view."""
    y = func(*args)
    if buffer.array is None:
        return y
    view = buffer.array[index]
    view[...] = y
    return view


def _assemble(results: Any) -> np.ndarray:
    """``compute()``'s last step: the whole output the blocks were written into, if they are
    this run's views of one (claimed once, so a second result of the same run is a copy),
    else dask's concatenation."""
    blocks = list(dask.core.flatten(results, container=list))
    base = getattr(blocks[0], "base", None) if blocks else None
    if isinstance(base, np.ndarray) and _unclaimed.pop(id(base), None) is base:
        spans = da.core.slices_from_chunks(da.core.chunks_from_arrays(results))
        if len(spans) == len(blocks) and all(
                b.base is base and b.shape == base[s].shape
                and b.__array_interface__["data"][0] == base[s].__array_interface__["data"][0]
                for b, s in zip(blocks, spans)):
            return base
    return da.core.finalize(results)


def _filled_in_place(graph: HighLevelGraph, name: str, chunks: Tuple[Tuple[int, ...], ...],
                     dtype: np.dtype) -> HighLevelGraph:
    """``graph`` with layer ``name``'s block tasks writing into one ``_Buffer`` (a task of
    the layer)."""
    layer = graph.layers.get(name)
    if layer is None:
        return graph
    spans = dict(zip(np.ndindex(*(len(c) for c in chunks)), da.core.slices_from_chunks(chunks)))
    buffer = f"buffer-{name}"
    dsk: Dict[Any, Any] = {buffer: (_Buffer, tuple(sum(c) for c in chunks), dtype)}
    for key, task in layer.items():
        if (isinstance(key, tuple) and key[0] == name and isinstance(task, tuple) and task
                and task[0] in (_block, _empty_block)):
            dsk[key] = (_into, buffer, spans[key[1:]]) + task
        else:
            dsk[key] = task
    layers = dict(graph.layers)
    layers[name] = MaterializedLayer(dsk)
    return HighLevelGraph(layers, dict(graph.dependencies))


class _Result(da.Array):
    """A convcore.dask result: a ``dask.array.Array`` whose own ``compute()`` (and
    ``persist()``) on an in-process scheduler lets each block task write its part of the
    whole output (``_Buffer``). Anything built on it (``store``, ``to_zarr``, slicing,
    ``map_blocks``) sees an ordinary array: blocks of their own, nothing held whole."""

    __slots__ = ()

    def __dask_optimize__(self, dsk: Any, keys: Any, **kwargs: Any) -> Any:
        if _shared_memory() and isinstance(dsk, HighLevelGraph):
            dsk = _filled_in_place(dsk, self.name, self.chunks, self.dtype)
        return da.Array.__dask_optimize__(dsk, keys, **kwargs)

    def __dask_postcompute__(self) -> Tuple[Any, Tuple[()]]:
        return _assemble, ()


@functools.lru_cache(maxsize=16)
def _layout(kind: str, hx: _Axis, wx: _Axis, mode: str, fill: Any,
            shared: bool) -> Tuple[Any, ...]:
    """Per output block (a, b): its shape and, unless empty, its plan and the neighbours it
    reads (edge chunks, whole chunks; ``shared``: whole chunks only, see ``_plan``). Cached:
    calls on arrays chunked alike (the same image size, chunks and geometry) share it, plans
    being read-only."""
    eh, ew = _edge_depth(hx), _edge_depth(wx)
    cache: Dict[Any, _Reads] = {}
    blocks = []
    for a in range(len(hx.bounds) - 1):
        for b in range(len(wx.bounds) - 1):
            shape = (hx.out_bounds[a + 1] - hx.out_bounds[a],
                     wx.out_bounds[b + 1] - wx.out_bounds[b])
            if min(shape) == 0:
                blocks.append((a, b, shape, None, [], []))
                continue
            windows = (_conv_windows(hx, wx, a, b, mode) if kind == "conv"
                       else _pool_windows(hx, wx, a, b))
            plan, edges, fulls = _plan(windows, shape, hx, wx, a, b, eh, ew, mode, fill, shared,
                                       cache)
            blocks.append((a, b, shape, plan, edges, fulls))
    return tuple(blocks)


def _lifted(x: "da.Array") -> Tuple[Dict[Any, Any], Optional[Tuple[Any, ...]]]:
    """When ``x`` only adds leading axes to another array (``img[None, None]``, how a 2-D
    image reaches ``conv2d``: one view task per chunk), the source chunk of each of ``x``'s
    chunks and the index making the view: blocks read the source chunks and make the views
    themselves, and those tasks drop out of the graph (16 of them for 16 chunks; Dask's
    cost per task is a large part of a small filter's). Else ``({}, None)``."""
    layer = x.dask.layers.get(x.name)
    if not isinstance(layer, MaterializedLayer) or Task is None:
        return {}, None
    sources: Dict[Any, Any] = {}
    index = None
    for key in layer:
        task = layer[key]
        if not (isinstance(task, Task) and task.func is da.chunk.getitem and not task.kwargs
                and len(task.args) == 2 and isinstance(task.args[0], TaskRef)):
            return {}, None
        view = task.args[1]
        if not (isinstance(view, tuple) and None in view and (index is None or view == index)
                and all(v is None or v == slice(None) for v in view)):
            return {}, None
        index = view
        sources[key] = task.args[0].key
    return (sources, index) if len(sources) == math.prod(x.numblocks) else ({}, None)


def _spatial_op(func: str, x: "da.Array", op: _Op, hx: _Axis, wx: _Axis, kind: str,
                lead_chunks: Tuple[Tuple[int, ...], ...], lead_out: Any, mode: str,
                fill: Any) -> "da.Array":
    """The dask array of ``op`` over ``x`` (spatial axes last): one edges task per input
    chunk that a neighbour reads, one task per output block, the op (weights) one key.
    ``kind`` ("conv" or "pool") says how blocks are split into calls; ``lead_out(index)``
    gives an output block's leading (index, shape) from its input block's leading index."""
    op.threads = _threads_per_task()
    shared = _shared_memory()
    token = dask.base.tokenize(func, x.name, pickle.dumps(op), hx, wx, mode, fill, shared)
    name, edges_name, op_name = f"{func}-{token}", f"{func}-edges-{token}", f"{func}-op-{token}"
    eh, ew = _edge_depth(hx), _edge_depth(wx)
    sources, lift = _lifted(x)

    def chunk(index: Tuple[int, ...]) -> Any:
        key = (x.name,) + index
        return sources.get(key, key)

    dsk: Dict[Any, Any] = {op_name: op}
    lead_blocks = list(np.ndindex(*x.numblocks[:x.ndim - 2]))
    used_edges = set()
    for a, b, shape, plan, edges, fulls in _layout(kind, hx, wx, mode, fill, shared):
        used_edges.update(edges)
        for li in lead_blocks:
            out_index, out_lead = lead_out(li)
            key = (name,) + out_index + (a, b)
            if plan is None:
                dsk[key] = (_empty_block, out_lead + shape, op.dtype)
            else:
                dsk[key] = (_block, op_name, plan, chunk(li + (a, b)),
                            [(edges_name,) + li + pq for pq in edges],
                            [chunk(li + pq) for pq in fulls], lift)
    for li in lead_blocks:
        for pq in used_edges:
            dsk[(edges_name,) + li + pq] = (_edges, chunk(li + pq), eh, ew)
    if lift is None:
        graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    else:  # x's own layer (the views) left out: the blocks depend on what it depended on
        layers, dependencies = dict(x.dask.layers), dict(x.dask.dependencies)
        del layers[x.name]
        layers[name] = MaterializedLayer(dsk)
        dependencies[name] = set(dependencies.pop(x.name))
        graph = HighLevelGraph(layers, dependencies)
    chunks = lead_chunks + (tuple(np.diff(hx.out_bounds).tolist()),
                            tuple(np.diff(wx.out_bounds).tolist()))
    return _Result(graph, name, chunks, dtype=op.dtype)


# ----------------------------------------------------------------------------- conv2d


def conv2d(input: Any, weight: Any, bias: Any = None, stride: F.IntPair = 1,
           padding: Any = 0, dilation: F.IntPair = 1, groups: int = 1, *,
           padding_mode: str = "zeros", activation: Any = None, algorithm: str = "auto",
           out: Any = None) -> "da.Array":
    """``convcore.conv2d`` on a dask array ``(N, C, H, W)`` or ``(C, H, W)`` chunked in N,
    H and W (a chunked C is rechunked, with a warning); weight and bias in memory. Returns
    ``(N, K, Ho, Wo)`` chunked like the input (output rows of a block: those whose
    window's anchor ``o*stride`` falls in the block's input rows), equal to the NumPy call
    bitwise. ``out`` must be None: write the result with ``dask.array.store``."""
    x = _as_dask(input, "input")
    w, b = _in_memory(weight), _in_memory(bias)
    if out is not None:
        raise TypeError("convcore.dask.conv2d: out must be None (the result is a dask array; "
                        "write it with dask.array.store)")
    dummy = _batch0(x)
    y0 = _validated(F.conv2d, x.shape, dummy, w, b, stride, padding, dilation, groups,
                    padding_mode=padding_mode,
                    activation=activation, algorithm=algorithm)
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    x4 = _whole_axis(x4, 1, "channel", "conv2d")
    stride2, dilation2 = F._pair(stride, "stride", 1), F._pair(dilation, "dilation", 1)
    k, _, r, s = w.shape
    pads = F.conv_padding(padding, (r, s), stride2, dilation2)
    ho, wo = y0.shape[2:]
    x4 = x4.rechunk({2: _aligned_chunks(x4.chunks[2], stride2[0]),
                     3: _aligned_chunks(x4.chunks[3], stride2[1])})
    ext = (dilation2[0] * (r - 1) + 1, dilation2[1] * (s - 1) + 1)
    hx = _axis(x4.shape[2], ext[0], stride2[0], pads[0], ho, x4.chunks[2])
    wx = _axis(x4.shape[3], ext[1], stride2[1], pads[2], wo, x4.chunks[3])
    # The algorithm the whole-array call would run, fixed for every block: a choice made
    # per block could depend on the block's size, and another algorithm sums in another
    # order.
    chosen = _core.choose_algorithm((max(x4.shape[0], 1),) + x4.shape[1:], (k, r, s, int(groups)),
                                    stride2, pads, dilation2, algorithm, x.dtype.itemsize)
    op = _ConvOp(w, b, stride2, dilation2, int(groups), F.activation_spec(activation),
                 chosen, x.dtype)
    fill = x.dtype.type(0)
    y = _spatial_op("conv2d", x4, op, hx, wx, "conv",
                    (x4.chunks[0], (k,)), lambda li: ((li[0], 0), (x4.chunks[0][li[0]], k)),
                    padding_mode, fill)
    return y if batched else y[0]


# ----------------------------------------------------------------------------- pooling


def _pool(func: str, input: Any, kernel_size: Any, stride: Any, padding: Any, dilation: Any,
          ceil_mode: Any, count_include_pad: Any) -> "da.Array":
    x = _as_dask(input, "input")
    dummy = _batch0(x)
    if func == "max_pool2d":
        y0 = _validated(F.max_pool2d, x.shape, dummy, kernel_size, stride, padding, dilation,
                        ceil_mode)
    else:
        y0 = _validated(F.avg_pool2d, x.shape, dummy, kernel_size, stride, padding, ceil_mode,
                        count_include_pad)
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    k2 = F._pair(kernel_size, "kernel_size", 1)
    s2 = k2 if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else F._pair(stride, "stride", 1)
    p2 = F._pair(padding, "padding", 0)
    d2 = F._pair(dilation, "dilation", 1)
    x4 = x4.rechunk({2: _aligned_chunks(x4.chunks[2], s2[0]),
                     3: _aligned_chunks(x4.chunks[3], s2[1])})
    ho, wo = y0.shape[2:]
    hx = _axis(x4.shape[2], d2[0] * (k2[0] - 1) + 1, s2[0], p2[0], ho, x4.chunks[2])
    wx = _axis(x4.shape[3], d2[1] * (k2[1] - 1) + 1, s2[1], p2[1], wo, x4.chunks[3])
    op = _PoolOp("max" if func == "max_pool2d" else "avg", k2, s2, d2, bool(ceil_mode),
                 bool(count_include_pad), x.dtype)
    y = _spatial_op(func, x4, op, hx, wx, "pool",
                    x4.chunks[:2], lambda li: (li, (x4.chunks[0][li[0]], x4.chunks[1][li[1]])),
                    "zeros", x.dtype.type(0))  # pools read real rows only: nothing to fill
    return y if batched else y[0]


def max_pool2d(input: Any, kernel_size: F.IntPair, stride: Optional[F.IntPair] = None,
               padding: F.IntPair = 0, dilation: F.IntPair = 1,
               ceil_mode: bool = False) -> "da.Array":
    """``convcore.max_pool2d`` on a dask array chunked in N, C, H and W (channels are
    pooled on their own, so C may be chunked): equal to the NumPy call bitwise."""
    return _pool("max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode, True)


def avg_pool2d(input: Any, kernel_size: F.IntPair, stride: Optional[F.IntPair] = None,
               padding: F.IntPair = 0, ceil_mode: bool = False,
               count_include_pad: bool = True) -> "da.Array":
    """``convcore.avg_pool2d`` on a dask array chunked in N, C, H and W: equal to the NumPy
    call bitwise (divisors included)."""
    return _pool("avg_pool2d", input, kernel_size, stride, padding, 1, ceil_mode,
                 count_include_pad)


# ----------------------------------------------------------------------------- correlate2d


def _filter(func: str, in1: Any, in2: Any, mode: str, boundary: str, fillvalue: Any,
            flip: bool) -> "da.Array":
    x = _as_dask(in1, "in1")
    k = _in_memory(in2)
    numpy_func = S.convolve2d if flip else S.correlate2d
    small = tuple(min(d, (k.shape[i] if i < k.ndim else 1) + 1) for i, d in enumerate(x.shape))
    y0 = _validated(numpy_func, x.shape, np.zeros(small, x.dtype), k, mode, boundary, fillvalue)
    dtype = y0.dtype
    shape, pads = S.geometry(S._mode_value(mode), x.shape, k.shape, flip)
    if (S._inputs_swap_needed(mode, x.shape, k.shape) or min(shape) == 0 or k.size == 0
            or x.size == 0):
        # in2 is the larger one (valid mode), or nothing to compute blockwise: in memory.
        lazy = dask.delayed(numpy_func, pure=True)(x, k, mode, boundary, fillvalue)
        return da.from_delayed(lazy, shape if min(shape) >= 0 else y0.shape, dtype=dtype)
    bnd = S._boundary_value(boundary)
    fill = S._fill_value(fillvalue, dtype) if bnd == "fill" else dtype.type(0)
    mode_pad = {"fill": "zeros" if fill == 0 else "fill", "wrap": "wrap", "symm": "symm"}[bnd]
    w = np.asarray(k, dtype=dtype)
    w = w[::-1, ::-1] if flip else w.conj()
    hx = _axis(x.shape[0], w.shape[0], 1, pads[0], shape[0], x.chunks[0])
    wx = _axis(x.shape[1], w.shape[1], 1, pads[2], shape[1], x.chunks[1])
    op = _CorrelateOp(np.ascontiguousarray(w), dtype)
    return _spatial_op(func, x, op, hx, wx, "conv", (),
                       lambda li: ((), ()), mode_pad, fill)


def correlate2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
                fillvalue: Any = 0) -> "da.Array":
    """``convcore.correlate2d`` (``scipy.signal.correlate2d``) with ``in1`` a 2-D dask array
    chunked in both axes and ``in2`` the kernel, in memory. Same modes, boundaries, dtypes
    and errors; the result is chunked like ``in1`` (``full`` adds the extra rows and
    columns to the last chunks, ``valid`` takes them from there)."""
    return _filter("correlate2d", in1, in2, mode, boundary, fillvalue, flip=False)


def convolve2d(in1: Any, in2: Any, mode: str = "full", boundary: str = "fill",
               fillvalue: Any = 0) -> "da.Array":
    """``convcore.convolve2d`` (``scipy.signal.convolve2d``) with ``in1`` a 2-D dask array
    and ``in2`` the kernel, in memory; see ``correlate2d``."""
    return _filter("convolve2d", in1, in2, mode, boundary, fillvalue, flip=True)


# ----------------------------------------------------------------------------- predict


def _predict_block(model: layers.Module, threads: int, x: np.ndarray) -> np.ndarray:
    previous = _core.get_thread_limit()
    _core.set_thread_limit(threads)
    try:
        return model(x)
    finally:
        _core.set_thread_limit(previous)


def predict(model: layers.Module, x: Any) -> "da.Array":
    """``model(x)`` for a dask array ``x`` chunked along its first (batch) axis only (other
    chunked axes are rechunked whole, with a warning): one task per batch chunk, the model
    a single graph key, so a distributed cluster ships its weights to each worker once
    (its packed operators are rebuilt there). The model runs in eval mode (a copy is put
    in eval mode when it is training). Equal to ``model`` on the whole batch, bitwise."""
    if not isinstance(model, layers.Module):
        raise TypeError(f"predict: model must be a convcore.layers.Module, got "
                        f"{type(model).__name__}")
    x = _as_dask(x, "x")
    if x.ndim < 2:
        raise ValueError(f"predict: x must have a batch axis and at least one more, got "
                         f"shape {x.shape}")
    chunked = [axis for axis in range(1, x.ndim) if len(x.chunks[axis]) > 1]
    if chunked:
        warnings.warn(f"convcore.dask.predict: x is chunked along axes {chunked} besides the "
                      f"batch (chunks {x.chunks}); rechunking them whole", stacklevel=2)
        x = x.rechunk({axis: -1 for axis in chunked})
    if getattr(model, "training", False):
        model = pickle.loads(pickle.dumps(model))
        model.eval()
    meta = _validated(model, x.shape, np.empty((0,) + x.shape[1:], x.dtype))
    token = dask.base.tokenize("predict", x.name, pickle.dumps(model))
    name, model_name = f"predict-{token}", f"predict-model-{token}"
    threads = _threads_per_task()
    dsk: Dict[Any, Any] = {model_name: model}
    tail = (0,) * (meta.ndim - 1)
    for i in range(x.numblocks[0]):
        dsk[(name, i) + tail] = (_predict_block, model_name, threads,
                                 (x.name, i) + (0,) * (x.ndim - 1))
    graph = HighLevelGraph.from_collections(name, dsk, dependencies=[x])
    chunks = (x.chunks[0],) + tuple((d,) for d in meta.shape[1:])
    return da.Array(graph, name, chunks, dtype=meta.dtype)
