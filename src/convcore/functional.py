"""The functional API: argument conversion, then the C++ core.

Every function here converts its arguments (TypeError for dtypes and non-integer
parameters, naming the argument), turns arrays into C-contiguous aligned ones of a single
float dtype, asks the core for the output shape — the core's problem types
(``Conv2dParams``, ``LocallyConnected2dParams``, ``Pool2dParams``) validate the geometry
once and their ValueError is the one the user sees, whichever entry point (function,
layer, C++) was used — allocates the output, and hands everything to ``convcore._core``,
which releases the GIL while it computes. Semantics follow ``torch.nn.functional``.
"""

from __future__ import annotations

import builtins
import numbers
import operator
from typing import Any, Optional, Tuple, Union

import numpy as np

from . import _core

IntPair = Union[int, Tuple[int, int]]

ACTIVATIONS = ("relu", "sigmoid", "tanh", "abs", "square", "leaky_relu")
PADDING_MODES = ("zeros", "reflect", "replicate", "circular")
ALGORITHMS = tuple(_core.algorithms())  # "auto", then the C++ registry's algorithms
_INT64_MAX = 2**63 - 1

# ----------------------------------------------------------------------------- params


def _int_param(value: Any, name: str, minimum: Optional[int] = None) -> int:
    """An integer parameter: int or NumPy integer, never bool, float or str."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _pair(value: Any, name: str, minimum: Optional[int] = None) -> Tuple[int, int]:
    """An int or a pair of ints (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (_int_param(value[0], name, minimum), _int_param(value[1], name, minimum))
    v = _int_param(value, name, minimum)
    return (v, v)


def _name(value: Any, name: str, choices: Tuple[str, ...]) -> str:
    """A name argument: a str (TypeError otherwise); the core checks its value."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got {type(value).__name__}")
    return value


def _choice(value: Any, name: str, choices: Tuple[str, ...]) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, one of {choices}, got {type(value).__name__}")
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def activation_spec(activation: Any) -> Tuple[str, float, float]:
    """(name, a, b) for an activation given as None, a name, or an object with an
    ``activation_spec`` attribute (the layer objects, e.g. ``layers.Sigmoid(a, b)``).
    ``a, b`` are sigmoid's 1/(1+exp(-a(x-b))) parameters; for leaky_relu ``a`` is the
    negative slope."""
    if activation is None:
        return ("none", 1.0, 0.0)
    if isinstance(activation, str):
        name = _choice(activation, "activation", ACTIVATIONS)
        return (name, 0.01 if name == "leaky_relu" else 1.0, 0.0)
    spec = getattr(activation, "activation_spec", None)
    if spec is None:
        raise TypeError(
            f"activation must be None, a name ({', '.join(ACTIVATIONS)}) or an activation "
            f"object such as convcore.layers.ReLU(), got {type(activation).__name__}"
        )
    name, a, b = spec
    if name != "none":
        _choice(name, "activation", ACTIVATIONS)
    return (name, float(a), float(b))


# ----------------------------------------------------------------------------- arrays


def _float_array(value: Any, name: str) -> np.ndarray:
    """An array of dtype float32 or float64 (no conversion of other dtypes)."""
    arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(
            f"{name} must be a float32 or float64 array, got dtype {arr.dtype}"
        )
    return arr


def _same_dtype(func: str, **arrays: Optional[np.ndarray]) -> np.dtype:
    named = [(n, a) for n, a in arrays.items() if a is not None]
    first_name, first = named[0]
    for n, a in named[1:]:
        if a.dtype != first.dtype:
            raise TypeError(
                f"{func}: {first_name} is {first.dtype} but {n} is {a.dtype}; "
                "they must share one dtype (float32 or float64)"
            )
    return first.dtype


def _contiguous(arr: np.ndarray) -> np.ndarray:
    """C-contiguous and aligned (copies only when needed: views, Fortran order,
    stride-0 broadcasts, misaligned buffers)."""
    return np.require(arr, requirements=["C", "A"])


def _check_out(out: Any, shape: Tuple[int, ...], dtype: np.dtype, inputs: dict) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out has dtype {out.dtype}, expected {dtype}")
    if out.shape != tuple(shape):
        raise ValueError(f"out has shape {out.shape}, expected {tuple(shape)}")
    if not out.flags.c_contiguous or not out.flags.aligned:
        raise ValueError("out must be C-contiguous and aligned")
    if not out.flags.writeable:
        raise ValueError("out must be writable")
    for n, a in inputs.items():
        if a is not None and isinstance(a, np.ndarray) and np.may_share_memory(out, a):
            raise ValueError(f"out overlaps {n}: it must not share memory with an input")
    return out


def _size_check(shape: Tuple[int, ...], name: str) -> None:
    total = 1
    for s in shape:
        total *= s
    if total * 8 > _INT64_MAX:
        raise ValueError(f"{name} of shape {shape} is too large: its size overflows 64 bits")


# ----------------------------------------------------------------------------- conv2d


def conv_padding(padding: Any, kernel: Tuple[int, int], stride: Tuple[int, int],
                 dilation: Tuple[int, int]) -> Tuple[int, int, int, int]:
    """(top, bottom, left, right) from an int, a pair, "same" or "valid".

    "same" pads dilation*(k-1) in total per axis, the odd extra cell at the bottom/right
    (as PyTorch), and only for stride 1."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0, 0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            th = dilation[0] * (kernel[0] - 1)
            tw = dilation[1] * (kernel[1] - 1)
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        raise ValueError(f"padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = _pair(padding, "padding")
    return (ph, ph, pw, pw)


def conv2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: IntPair = 1,
    padding: Union[IntPair, str] = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    activation: Any = None,
    algorithm: str = "auto",
    out: Optional[np.ndarray] = None,
) -> np.ndarray:
    """2D convolution (cross-correlation, as ``torch.nn.functional.conv2d``).

    input ``(N, C, H, W)`` or ``(C, H, W)``; weight ``(K, C/groups, R, S)``; bias ``(K,)``.
    Returns ``(N, K, Ho, Wo)`` (or ``(K, Ho, Wo)``) in the input's dtype, with
    ``Ho = (H + pad_top + pad_bottom - dilation*(R-1) - 1)//stride + 1`` (likewise Wo).
    ``activation`` is applied inside the kernel's store; ``algorithm`` is "auto",
    "direct" or "im2col"; ``out`` receives the result (C-contiguous, exact shape/dtype).
    """
    x = _float_array(input, "input")
    w = _float_array(weight, "weight")
    b = None if bias is None else _float_array(bias, "bias")
    dtype = _same_dtype("conv2d", input=x, weight=w, bias=b)
    if x.ndim not in (3, 4):
        raise ValueError(f"input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    if w.ndim != 4:
        raise ValueError(f"weight must be (K, C/groups, R, S), got shape {w.shape}")
    batched = x.ndim == 4
    x4 = x if batched else x[None]
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    groups = _int_param(groups, "groups")
    pads = conv_padding(padding, w.shape[2:], stride2, dilation2)
    padding_mode = _name(padding_mode, "padding_mode", PADDING_MODES)
    algorithm = _name(algorithm, "algorithm", ALGORITHMS)
    act, a, bb = activation_spec(activation)
    shape4 = tuple(_core.conv2d_output_shape(x4.shape, w.shape, stride2, pads, dilation2, groups,
                                             padding_mode))
    shape = shape4 if batched else shape4[1:]

    if out is None:
        y = _core.empty(shape, np.dtype(dtype))
    else:
        y = _check_out(out, shape, dtype, {"input": input, "weight": weight, "bias": bias})
    if shape4[0] == 0:
        return y
    _core.conv2d(
        _contiguous(x4), _contiguous(w), None if b is None else _contiguous(b),
        y if batched else y[None], stride2, pads, dilation2, groups, padding_mode, act, a, bb,
        algorithm,
    )
    return y


# ----------------------------------------------------------------------------- linear


def linear(input: Any, weight: Any, bias: Any = None, *, activation: Any = None) -> np.ndarray:
    """The fully connected layer, as ``torch.nn.functional.linear``:
    ``activation(input @ weight.T + bias)``.

    input ``(..., in)``; weight ``(out, in)``; bias ``(out,)``. Returns ``(..., out)`` in
    the input's dtype (float32 or float64; input, weight and bias share it). Computed by
    the packed GEMM that runs conv2d's im2col algorithm, the activation fused into its
    store.
    """
    x = _float_array(input, "input")
    w = _float_array(weight, "weight")
    b = None if bias is None else _float_array(bias, "bias")
    dtype = _same_dtype("linear", input=x, weight=w, bias=b)
    if w.ndim != 2:
        raise ValueError(f"weight must be (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1:
        raise ValueError("input must be (..., in_features), got a 0-d array")
    out_f, in_f = w.shape
    if x.shape[-1] != in_f:
        raise ValueError(
            f"input has shape {x.shape}: its last dimension must be in_features={in_f} "
            f"of weight {w.shape}"
        )
    if b is not None and b.shape != (out_f,):
        raise ValueError(f"bias must have shape ({out_f},) for weight {w.shape}, got {b.shape}")
    act, a, bb = activation_spec(activation)
    lead = x.shape[:-1]
    m = 1
    for d in lead:
        m *= d
    _size_check((m, max(in_f, out_f)), "input")
    y = _core.empty(lead + (out_f,), np.dtype(dtype))
    if m == 0 or out_f == 0:
        return y
    _core.linear(
        _contiguous(x.reshape(m, in_f)), _contiguous(w), None if b is None else _contiguous(b),
        y.reshape(m, out_f), act, a, bb,
    )
    return y


# ----------------------------------------------------------------------------- activations


def _activate(x: Any, name: str, a: float, b: float) -> np.ndarray:
    arr = np.asarray(x)
    if arr.dtype.kind in "biu" or arr.dtype == np.float16:
        arr = arr.astype(np.float64 if arr.dtype.kind in "biu" else np.float32)
    if arr.dtype not in (np.float32, np.float64):
        raise TypeError(f"{name}: input must be a real array, got dtype {arr.dtype}")
    src = _contiguous(arr)
    y = _core.empty(arr.shape, np.dtype(arr.dtype))
    _core.activate(src, y, name, a, b)
    return y


def _float_param(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def relu(x: Any) -> np.ndarray:
    """max(x, 0), element-wise (NaN stays NaN). Integer input computes in float64."""
    return _activate(x, "relu", 1.0, 0.0)


def sigmoid(x: Any, a: float = 1.0, b: float = 0.0) -> np.ndarray:
    """1 / (1 + exp(-a*(x - b))), element-wise; the lecture uses a=0.08, b=50 on 8-bit
    intensities."""
    return _activate(x, "sigmoid", _float_param(a, "a"), _float_param(b, "b"))


def tanh(x: Any) -> np.ndarray:
    """tanh(x), element-wise."""
    return _activate(x, "tanh", 1.0, 0.0)


def abs(x: Any) -> np.ndarray:  # noqa: A001 - the contract's name
    """|x|, element-wise."""
    return _activate(x, "abs", 1.0, 0.0)


def square(x: Any) -> np.ndarray:
    """x*x, element-wise."""
    return _activate(x, "square", 1.0, 0.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> np.ndarray:
    """x if x >= 0 else negative_slope*x, element-wise."""
    return _activate(x, "leaky_relu", _float_param(negative_slope, "negative_slope"), 0.0)


__all__ = [
    "abs", "activation_spec", "conv2d", "conv_padding", "leaky_relu",
    "linear", "relu", "sigmoid", "square", "tanh",
]
del builtins


# ----------------------------------------------------------------------------- locally connected


def _batched4(x: np.ndarray, func: str) -> Tuple[np.ndarray, bool]:
    """(the input as (N, C, H, W), whether it had a batch dimension)."""
    if x.ndim not in (3, 4):
        raise ValueError(f"{func}: input must be (N, C, H, W) or (C, H, W), got shape {x.shape}")
    return (x, True) if x.ndim == 4 else (x[None], False)


def locally_connected2d(
    input: Any,
    weight: Any,
    bias: Any = None,
    stride: IntPair = 1,
    padding: Union[IntPair, str] = 0,
    dilation: IntPair = 1,
    *,
    activation: Any = None,
) -> np.ndarray:
    """A locally connected layer: ``conv2d`` with one filter bank per output position.

    input ``(N, C, H, W)`` or ``(C, H, W)``; weight ``(Ho, Wo, K, C, R, S)`` (the filters of
    output position ``(i, j)`` are ``weight[i, j]``); bias ``(K, Ho, Wo)``. ``Ho, Wo`` follow
    conv2d's formula and must match the weight. ``padding`` is an int, a pair, ``"same"``
    (stride 1) or ``"valid"``, zeros only. Returns ``(N, K, Ho, Wo)`` (or ``(K, Ho, Wo)``).
    With ``weight[i, j] == w`` everywhere it equals ``conv2d(input, w, ...)``.
    """
    x = _float_array(input, "input")
    w = _float_array(weight, "weight")
    b = None if bias is None else _float_array(bias, "bias")
    dtype = _same_dtype("locally_connected2d", input=x, weight=w, bias=b)
    x4, batched = _batched4(x, "locally_connected2d")
    if w.ndim != 6:
        raise ValueError(f"weight must be (Ho, Wo, K, C, R, S), got shape {w.shape}")
    ho_w, wo_w, k, cw, r, s = w.shape
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    pads = conv_padding(padding, (r, s), stride2, dilation2)
    act, a, bb = activation_spec(activation)
    n, _, ho, wo = _core.locally_connected2d_output_shape(x4.shape, (k, cw, r, s), stride2, pads,
                                                          dilation2)
    if cw != x4.shape[1]:
        raise ValueError(f"weight {w.shape} has C={cw} but input {x.shape} has {x4.shape[1]} "
                         "channels")
    if (ho_w, wo_w) != (ho, wo):
        raise ValueError(
            f"weight {w.shape} is for a ({ho_w}, {wo_w}) output, but input {x.shape} with "
            f"kernel {(r, s)}, stride {stride2}, padding {pads}, dilation {dilation2} gives "
            f"({ho}, {wo})"
        )
    if b is not None and b.shape != (k, ho, wo):
        raise ValueError(f"bias must have shape {(k, ho, wo)} for weight {w.shape}, got {b.shape}")
    y = _core.empty((n, k, ho, wo), np.dtype(dtype))
    if n:
        _core.locally_connected2d(
            _contiguous(x4), _contiguous(w), None if b is None else _contiguous(b), y,
            stride2, pads, dilation2, act, a, bb,
        )
    return y if batched else y[0]


# ----------------------------------------------------------------------------- pooling


def _pool_params(kernel_size, stride, padding, dilation, ceil_mode):
    """(kernel, stride, padding, dilation) pairs and ceil_mode, converted; stride None (or
    an empty tuple) is the kernel size, as PyTorch."""
    kernel2 = _pair(kernel_size, "kernel_size")
    stride2 = kernel2 if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0) \
        else _pair(stride, "stride")
    if not isinstance(ceil_mode, (bool, np.bool_)):
        raise TypeError(f"ceil_mode must be a bool, got {type(ceil_mode).__name__}")
    return kernel2, stride2, _pair(padding, "padding"), _pair(dilation, "dilation"), bool(ceil_mode)


def _pool_args(func, input, kernel_size, stride, padding, dilation, ceil_mode):
    x = _float_array(input, "input")
    x4, batched = _batched4(x, func)
    kernel2, stride2, pad2, dilation2, ceil_mode = _pool_params(kernel_size, stride, padding,
                                                                dilation, ceil_mode)
    shape = _core.pool2d_output_shape(x4.shape, kernel2, stride2, pad2, dilation2, ceil_mode,
                                      func == "avg_pool2d")
    y = _core.empty(tuple(shape), np.dtype(x.dtype))
    return _contiguous(x4), y, batched, kernel2, stride2, pad2, dilation2


def max_pool2d(
    input: Any,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """2D max pooling as ``torch.nn.functional.max_pool2d``: input ``(N, C, H, W)`` or
    ``(C, H, W)``; ``stride`` defaults to ``kernel_size``; padding (at most half the
    kernel) never wins; a NaN in a window gives NaN."""
    x4, y, batched, k2, s2, p2, d2 = _pool_args("max_pool2d", input, kernel_size, stride,
                                                padding, dilation, ceil_mode)
    if y.size:
        _core.max_pool2d(x4, y, k2, s2, p2, d2, bool(ceil_mode))
    return y if batched else y[0]


def avg_pool2d(
    input: Any,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """2D average pooling as ``torch.nn.functional.avg_pool2d``: the divisor is the window
    clipped to the padded input (``count_include_pad``) or the taps inside the input."""
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {type(count_include_pad).__name__}")
    x4, y, batched, k2, s2, p2, _ = _pool_args("avg_pool2d", input, kernel_size, stride,
                                               padding, 1, ceil_mode)
    if y.size:
        _core.avg_pool2d(x4, y, k2, s2, p2, bool(ceil_mode), bool(count_include_pad))
    return y if batched else y[0]


# ----------------------------------------------------------------------------- dense equivalent


def _available_memory() -> int:
    """Bytes of physical memory currently available (all physical memory if unknown)."""
    import os

    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return _INT64_MAX


def conv2d_dense_matrix(
    weight: Any,
    input_shape: Tuple[int, int, int],
    stride: IntPair = 1,
    padding: Union[IntPair, str] = 0,
    dilation: IntPair = 1,
    groups: int = 1,
) -> np.ndarray:
    """The fully connected matrix ``M`` of a convolution: shape ``(K*Ho*Wo, C*H*W)``, with
    ``conv2d(x, weight, ...).ravel() == M @ x.ravel()`` for one image ``x`` of shape
    ``input_shape = (C, H, W)`` (zero padding). Row ``(k*Ho + i)*Wo + j``, column
    ``(c*H + h)*W + w``, in the weight's dtype.

    Raises ``MemoryError`` before allocating anything when the matrix needs more bytes
    than the physical memory currently available (it grows with the square of the
    pixel count: 3.2 GB for 3 -> 16 channels at 64x64), ``ValueError`` for shapes that
    do not fit together, as conv2d does.
    """
    w = _float_array(weight, "weight")
    if w.ndim != 4:
        raise ValueError(f"weight must be (K, C/groups, R, S), got shape {w.shape}")
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"input_shape must be (C, H, W), got {input_shape!r}")
    c, h, wd = (_int_param(v, "input_shape", 1) for v in input_shape)
    k, cg, r, s = w.shape
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    groups = _int_param(groups, "groups")
    pads = conv_padding(padding, (r, s), stride2, dilation2)
    _, _, ho, wo = _core.conv2d_output_shape((1, c, h, wd), w.shape, stride2, pads, dilation2,
                                             groups, "zeros")
    rows, cols = k * ho * wo, c * h * wd
    nbytes = rows * cols * w.dtype.itemsize
    available = _available_memory()
    if nbytes > available:
        raise MemoryError(
            f"conv2d_dense_matrix: the ({rows}, {cols}) {w.dtype} matrix needs "
            f"{nbytes / 2**30:.1f} GiB, more than the {available / 2**30:.1f} GiB of memory "
            f"available (weight {w.shape}, input_shape {(c, h, wd)})"
        )
    m = np.zeros((rows, cols), dtype=w.dtype)
    # Every (output pixel, tap) pair: its row, its input column and the weight it carries.
    kk = np.arange(k)[:, None, None, None, None, None]
    ii = np.arange(ho)[None, :, None, None, None, None]
    jj = np.arange(wo)[None, None, :, None, None, None]
    cc = np.arange(cg)[None, None, None, :, None, None]
    rr = np.arange(r)[None, None, None, None, :, None]
    ss = np.arange(s)[None, None, None, None, None, :]
    ih = ii * stride2[0] + rr * dilation2[0] - pads[0]
    iw = jj * stride2[1] + ss * dilation2[1] - pads[2]
    channel = (kk // (k // groups)) * cg + cc
    shape = (k, ho, wo, cg, r, s)
    inside = np.broadcast_to((ih >= 0) & (ih < h) & (iw >= 0) & (iw < wd), shape)
    row = np.broadcast_to((kk * ho + ii) * wo + jj, shape)[inside]
    col = np.broadcast_to((channel * h + ih) * wd + iw, shape)[inside]
    val = np.broadcast_to(w[:, None, None], shape)[inside]
    m[row, col] = val  # taps of one row meet distinct pixels: no index repeats
    return m


__all__ += ["avg_pool2d", "conv2d_dense_matrix", "locally_connected2d", "max_pool2d"]
