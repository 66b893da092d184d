"""The functional API: argument checking and normalisation, then one call into C++.

Every function here validates its arguments (raising ValueError / TypeError that name
the argument and the shapes), turns arrays into C-contiguous aligned ones of a single
float dtype, allocates the output, and hands everything to ``convcore._core``, which
releases the GIL while it computes. Semantics follow ``torch.nn.functional``.
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
ALGORITHMS = ("auto", "direct", "im2col")
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


def _pair(value: Any, name: str, minimum: int) -> Tuple[int, int]:
    """An int or a pair of ints (height, width)."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name} must be an int or a pair of ints, got {value!r}")
        return (_int_param(value[0], name, minimum), _int_param(value[1], name, minimum))
    v = _int_param(value, name, minimum)
    return (v, v)


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


def conv2d_output_size(size: int, kernel: int, stride: int, pad_lo: int, pad_hi: int,
                       dilation: int) -> int:
    """Output length along one axis: (size + pads - dilation*(kernel-1) - 1)//stride + 1."""
    return (size + pad_lo + pad_hi - dilation * (kernel - 1) - 1) // stride + 1


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
    ph, pw = _pair(padding, "padding", 0)
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
    n, c, h, wd = x.shape if batched else (1,) + x.shape
    k, cg, r, s = w.shape
    stride2 = _pair(stride, "stride", 1)
    dilation2 = _pair(dilation, "dilation", 1)
    groups = _int_param(groups, "groups", 1)
    pads = conv_padding(padding, (r, s), stride2, dilation2)
    padding_mode = _choice(padding_mode, "padding_mode", PADDING_MODES)
    algorithm = _choice(algorithm, "algorithm", ALGORITHMS)
    act, a, bb = activation_spec(activation)

    if c % groups or k % groups:
        raise ValueError(
            f"groups={groups} must divide in_channels={c} and out_channels={k} "
            f"(input {x.shape}, weight {w.shape})"
        )
    if cg * groups != c:
        raise ValueError(
            f"weight has shape {w.shape}: expected (K, C/groups, R, S) = "
            f"({k}, {c // groups}, R, S) for input {x.shape} and groups={groups}"
        )
    if h == 0 or wd == 0 or c == 0 or k == 0 or r == 0 or s == 0:
        raise ValueError(f"input {x.shape} and weight {w.shape} must have non-zero sizes")
    if b is not None and b.shape != (k,):
        raise ValueError(f"bias must have shape ({k},) for weight {w.shape}, got {b.shape}")
    hp, wp = h + pads[0] + pads[1], wd + pads[2] + pads[3]
    eh, ew = dilation2[0] * (r - 1) + 1, dilation2[1] * (s - 1) + 1
    if eh > hp or ew > wp:
        raise ValueError(
            f"kernel {(r, s)} with dilation {dilation2} spans {(eh, ew)}, larger than the "
            f"padded input {(hp, wp)} (input {x.shape}, padding {pads})"
        )
    if padding_mode == "reflect" and (max(pads[:2]) >= h or max(pads[2:]) >= wd):
        raise ValueError(
            f"padding_mode='reflect' needs padding < the input size, got padding {pads} "
            f"for input {(h, wd)}"
        )
    if padding_mode == "circular" and (max(pads[:2]) > h or max(pads[2:]) > wd):
        raise ValueError(
            f"padding_mode='circular' needs padding <= the input size, got padding {pads} "
            f"for input {(h, wd)}"
        )
    ho = conv2d_output_size(h, r, stride2[0], pads[0], pads[1], dilation2[0])
    wo = conv2d_output_size(wd, s, stride2[1], pads[2], pads[3], dilation2[1])
    shape4 = (n, k, ho, wo)
    shape = shape4 if batched else shape4[1:]
    _size_check(shape4, "output")

    if out is None:
        y = np.empty(shape, dtype=dtype)
    else:
        y = _check_out(out, shape, dtype, {"input": input, "weight": weight, "bias": bias})
    if n == 0:
        return y
    x4 = _contiguous(x if batched else x[None])
    _core.conv2d(
        x4, _contiguous(w), None if b is None else _contiguous(b),
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
    y = np.empty(lead + (out_f,), dtype=dtype)
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
    y = np.empty(arr.shape, dtype=arr.dtype)
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
    "abs", "activation_spec", "conv2d", "conv2d_output_size", "conv_padding", "leaky_relu",
    "linear", "relu", "sigmoid", "square", "tanh",
]
del builtins
