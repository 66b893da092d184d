"""The functional API: argument conversion, then the C++ core.

Every function here converts its arguments (TypeError for dtypes and non-integer
parameters, naming the argument), turns arrays into C-contiguous aligned ones of a single
float dtype, asks the core for the output shape (once per geometry: cached) — the core's problem types
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
    if type(value) is int:  # the common case, without the ABC check below
        if minimum is not None and value < minimum:
            raise ValueError(f"{name} must be >= {minimum}, got {value}")
        return value
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = operator.index(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return value


def _pair(value: Any, name: str, minimum: Optional[int] = None) -> Tuple[int, int]:
    """An int or a pair of ints (height, width)."""
    if type(value) is int and (minimum is None or value >= minimum):
        return (value, value)
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


def _float_array(value: Any, name: str, dtype: Any = np.float64) -> np.ndarray:
    """An array of dtype float32 or float64. NumPy arrays keep their dtype (any other is
    a TypeError with the conversion to write); other array-likes (lists, tuples, numbers,
    objects with ``__array__``) are converted to ``dtype``."""
    if isinstance(value, np.ndarray):
        arr = value
    else:
        arr = np.asarray(value)  # a ragged list stays NumPy's ValueError
        if arr.dtype.kind in "iuf":  # numbers: never bools, complex, strings or objects
            arr = arr.astype(dtype, copy=False)
    if arr.dtype not in (np.float32, np.float64):
        hint = ""
        if arr.dtype.kind in "biuf":  # convertible: say how
            hint = f"; convert it first, e.g. {name}.astype(np.float32)"
            if arr.dtype == np.uint8:
                hint += " (8-bit images keep their 0..255 scale; divide by 255 for 0..1)"
        raise TypeError(f"{name} must be a float32 or float64 array, got dtype {arr.dtype}{hint}")
    return arr


def _float_arrays(**values: Any) -> Tuple[Optional[np.ndarray], ...]:
    """The arguments as float arrays of one call (None stays None). Array-likes that are
    not NumPy arrays (lists, tuples) take the dtype of the NumPy arrays passed with them,
    float64 when none is one, so ``conv2d([[...]], w32)`` computes in float32."""
    dtype = next((v.dtype for v in values.values()
                  if isinstance(v, np.ndarray) and v.dtype in (np.float32, np.float64)),
                 np.dtype(np.float64))
    return tuple(None if v is None else _float_array(v, n, dtype) for n, v in values.items())


_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _operands(func: str, input: Any, weight: Any, bias: Any):
    """(input, weight, bias, dtype) as ``_float_arrays`` then ``_same_dtype`` give them;
    NumPy arrays already sharing one float dtype pass straight through."""
    if (type(input) is np.ndarray and type(weight) is np.ndarray
            and input.dtype in _FLOAT_DTYPES and weight.dtype == input.dtype
            and (bias is None or type(bias) is np.ndarray and bias.dtype == input.dtype)):
        return input, weight, bias, input.dtype
    x, w, b = _float_arrays(input=input, weight=weight, bias=bias)
    return x, w, b, _same_dtype(func, input=x, weight=w, bias=b)


def _layout_hint(x: np.ndarray, w: np.ndarray, groups: Any) -> None:
    """A ValueError naming the layout when ``x`` looks channels-last (NHWC / HWC): its
    last axis, not its channel axis, has the weight's input channels."""
    if (x.ndim not in (3, 4) or w.ndim != 4 or type(groups) is not int and (
            isinstance(groups, (bool, np.bool_)) or not isinstance(groups, numbers.Integral))):
        return  # the argument checks that follow say what is wrong
    channels = w.shape[1] * int(groups)
    if x.shape[-3] != channels and x.shape[-1] == channels:
        order = "(0, 3, 1, 2)" if x.ndim == 4 else "(2, 0, 1)"
        raise ValueError(
            f"input has shape {x.shape}, which looks channels-last (NHWC): convcore takes "
            f"(N, C, H, W) or (C, H, W) with C = {channels} for weight {w.shape}; use "
            f"input.transpose{order}"
        )


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
    flags = arr.flags
    if flags.c_contiguous and flags.aligned:
        return arr
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


# Output shapes of valid geometries, so a repeated call asks the core once; an invalid
# geometry is never stored, so its ValueError comes from the core on every call.
_SHAPES: dict = {}
_SHAPES_MAX = 256


def _conv_output_shape(*geometry) -> Tuple[int, int, int, int]:
    shape = _SHAPES.get(geometry)
    if shape is None:
        shape = tuple(_core.conv2d_output_shape(*geometry))
        if len(_SHAPES) >= _SHAPES_MAX:
            _SHAPES.clear()
        _SHAPES[geometry] = shape
    return shape


# conv2d calls whose geometry went through once, keyed by everything but the array
# contents (shapes, dtypes, the plain int/str arguments), so a repeated small call skips
# the Python checks above (issue: a 4x4 convolution's call cost what its work costs many
# times over). Only exact ints, strs and None enter a key: True, 1.0 and np.int64(1)
# hash like 1 but must still be checked (the first two raise TypeError).
_CALLS: dict = {}
_SCALARS = (int, str, type(None))
# Outputs below the output cache's threshold (cpp/bindings/output_cache.hpp, kMinBytes)
# come from NumPy's allocator there too; np.empty gets them without the core's call.
_SMALL_OUTPUT = 256 << 10


def _call_key(x: Any, w: Any, b: Any, *scalars: Any) -> Optional[tuple]:
    if type(x) is not np.ndarray or type(w) is not np.ndarray or (
            b is not None and type(b) is not np.ndarray) or scalars[-1] is not None:
        return None  # array-likes, out=: the checked path
    for v in scalars:
        if type(v) not in _SCALARS:
            return None
    return (x.shape, x.dtype, w.shape, w.dtype, None if b is None else (b.shape, b.dtype),
            scalars[:-1])


def _plain(a: np.ndarray) -> bool:
    """C-contiguous and aligned: passed to the core as it is."""
    flags = a.flags
    return flags.c_contiguous and flags.aligned


def _conv_args(x: np.ndarray, w: np.ndarray, stride: Any, padding: Any, dilation: Any,
               groups: Any, padding_mode: Any):
    """conv2d's geometry arguments converted, shared with conv2d_backward: (input as
    (N, C, H, W), whether it had a batch dimension, stride, padding (top, bottom, left,
    right), dilation, groups, padding_mode, the (N, K, Ho, Wo) output shape the core
    computes — its ValueError when the geometry is invalid)."""
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
    shape4 = _conv_output_shape(x4.shape, w.shape, stride2, pads, dilation2, groups,
                                padding_mode)
    return x4, batched, stride2, pads, dilation2, groups, padding_mode, shape4


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

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or one image ``(C, H, W)``, float32 or float64.
    weight : array_like
        ``(K, C/groups, R, S)``: K filters of R x S taps, in the input's dtype.
    bias : array_like, optional
        ``(K,)``, in the input's dtype.
    stride, dilation : int or (int, int)
        Step between output positions, spacing between taps (>= 1).
    padding : int, (int, int), "same" or "valid"
        Cells added on each side (>= 0). ``"same"`` keeps the size (stride 1 only; the
        odd extra cell goes right/bottom, as PyTorch); ``"valid"`` is 0.
    groups : int
        Splits the channels into ``groups`` independent convolutions; must divide C
        and K (``groups == C == K`` is depthwise).
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        What the padding holds, as ``torch.nn.Conv2d``'s ``padding_mode``. ``"reflect"``
        needs padding < the input size, ``"circular"`` padding <= it.
    activation : None, {"relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"} or object
        Applied inside the kernel's store, not as a second pass. An object with an
        ``activation_spec`` (``convcore.layers.Sigmoid(a=0.08, b=50)``,
        ``LeakyReLU(0.2)``) passes its parameters; the names use the defaults
        (sigmoid a=1, b=0; leaky_relu slope 0.01).
    algorithm : {"auto", "direct", "im2col", "winograd"}
        ``"auto"`` runs Winograd for float32 3x3, stride-1, undilated layers with at
        least 16 input channels per group (128 when each image's output is at most
        16x16) and at least 196 (14x14) output pixels in the batch (unless :func:`convcore.set_winograd` turned it off), else the packed GEMM (``im2col``) when ``C/groups > 1`` and
        (``R*S == 1`` or ``C/groups > 64``), else the direct kernels. ``"winograd"``
        (F(4x4, 3x3); F(2x2, 3x3) for outputs of at most 14x14) needs a 3x3 kernel,
        stride 1, dilation 1 and at least 4 input channels per group (a ValueError
        names the constraint otherwise); its rounding error is larger than the other
        algorithms' (the bound in :doc:`/algorithms`).
    out : numpy.ndarray, optional
        Receives the result: exact shape and dtype, C-contiguous, writable, not
        overlapping an input.

    Returns
    -------
    numpy.ndarray
        ``(N, K, Ho, Wo)`` (or ``(K, Ho, Wo)``) in the input's dtype, with
        ``Ho = (H + pad_top + pad_bottom - dilation*(R-1) - 1)//stride + 1`` (likewise Wo).

    Raises
    ------
    TypeError
        A dtype other than float32/float64 (an 8-bit image: ``x.astype(np.float32)``),
        input, weight and bias of different dtypes, a non-integer stride, padding,
        dilation or groups, a non-string ``padding_mode`` / ``algorithm``.
    ValueError
        Wrong ranks or shapes (an input that looks channels-last, NHWC, says so),
        non-positive stride/dilation/groups, negative padding, ``"same"`` with stride
        > 1, groups not dividing the channels, a kernel larger than the padded input,
        an unknown ``padding_mode``, ``algorithm`` or ``activation``, a bad ``out``.
    MemoryError
        A workspace that cannot be allocated.

    Notes
    -----
    Array-likes that are not NumPy arrays (lists, tuples) take the dtype of the NumPy
    arrays passed with them (float64 when none is one), so a list input with float32
    weights computes in float32. NumPy arrays are never converted: an integer array is
    a TypeError.

    Examples
    --------
    >>> import numpy as np, convcore
    >>> x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    >>> w = np.ones((1, 1, 3, 3), np.float32)
    >>> convcore.conv2d(x, w)            # sums of 3x3 windows
    array([[[[45., 54.],
             [81., 90.]]]], dtype=float32)
    >>> convcore.conv2d(x, w, padding="same", padding_mode="circular").shape
    (1, 1, 4, 4)
    >>> float(convcore.conv2d(x, -w, activation="relu").max())
    0.0
    """
    key = _call_key(input, weight, bias, stride, padding, dilation, groups, padding_mode,
                    activation, algorithm, out)
    call = _CALLS.get(key) if key is not None else None
    if call is not None and _plain(input) and _plain(weight) and (bias is None or _plain(bias)):
        # A geometry checked before, on C-contiguous aligned operands: straight to the core.
        shape, small, args = call
        y = np.empty(shape, input.dtype) if small else _core.empty(shape, input.dtype)
        _core.conv2d(input if input.ndim == 4 else input[None], weight, bias,
                     y if input.ndim == 4 else y[None], *args)
        return y

    x, w, b, dtype = _operands("conv2d", input, weight, bias)
    _layout_hint(x, w, groups)
    x4, batched, stride2, pads, dilation2, groups, padding_mode, shape4 = _conv_args(
        x, w, stride, padding, dilation, groups, padding_mode)
    algorithm = _name(algorithm, "algorithm", ALGORITHMS)
    act, a, bb = activation_spec(activation)
    k = w.shape[0]
    if b is not None and b.shape != (k,):  # checked here too so an empty batch raises it
        raise ValueError(f"bias must have shape ({k},) for weight {w.shape}, got {b.shape}")
    shape = shape4 if batched else shape4[1:]

    if out is None:
        y = _core.empty(shape, np.dtype(dtype))
    else:
        y = _check_out(out, shape, dtype, {"input": input, "weight": weight, "bias": bias})
    if shape4[0] == 0:
        return y
    _conv2d_run(x4, w, b, y if batched else y[None], stride2, pads, dilation2, groups,
                padding_mode, (act, a, bb), algorithm)
    if key is not None:  # the call went through: its geometry is valid
        if len(_CALLS) >= _SHAPES_MAX:
            _CALLS.clear()
        _CALLS[key] = (shape, y.nbytes < _SMALL_OUTPUT,
                       (stride2, pads, dilation2, groups, padding_mode, act, a, bb, algorithm))
    return y


def _conv2d_run(x4: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], y4: np.ndarray,
                stride2: Tuple[int, int], pads: Tuple[int, int, int, int],
                dilation2: Tuple[int, int], groups: int, padding_mode: str,
                spec: Tuple[str, float, float], algorithm: str) -> None:
    """conv2d into ``y4`` on converted arguments (the layers' training path, whose
    geometry was converted once); the core validates shapes and values."""
    _core.conv2d(_contiguous(x4), _contiguous(w), None if b is None else _contiguous(b), y4,
                 stride2, pads, dilation2, groups, padding_mode, *spec, algorithm)


# ----------------------------------------------------------------------------- linear


def linear(input: Any, weight: Any, bias: Any = None, *, activation: Any = None) -> np.ndarray:
    """The fully connected layer, as ``torch.nn.functional.linear``:
    ``activation(input @ weight.T + bias)``.

    Parameters
    ----------
    input : array_like
        ``(..., in_features)``, float32 or float64.
    weight : array_like
        ``(out_features, in_features)``, in the input's dtype.
    bias : array_like, optional
        ``(out_features,)``, in the input's dtype.
    activation : None, str or object
        As :func:`conv2d`'s: ``"relu"``, ``"sigmoid"``, ``"tanh"``, ``"abs"``,
        ``"square"``, ``"leaky_relu"`` or an activation object.

    Returns
    -------
    numpy.ndarray
        ``(..., out_features)`` in the input's dtype. Computed by the packed GEMM that
        runs conv2d's im2col algorithm, the activation fused into its store.

    Raises
    ------
    TypeError
        Dtypes other than float32/float64, or input, weight and bias of different dtypes.
    ValueError
        A weight that is not 2-D, an input whose last dimension is not ``in_features``,
        a bias of the wrong shape, an unknown activation.

    Examples
    --------
    >>> w = np.array([[1.0, 2.0], [-1.0, 0.0]])
    >>> convcore.linear(np.array([[3.0, 4.0]]), w, np.array([0.5, 0.5]), activation="relu")
    array([[11.5,  0. ]])
    """
    x, w, b, dtype = _operands("linear", input, weight, bias)
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
    if type(x) is np.ndarray and x.dtype in _FLOAT_DTYPES:  # the common case, checked once
        arr = x
    else:
        arr = np.asarray(x)
        if arr.dtype.kind in "biu" or arr.dtype == np.float16:
            arr = arr.astype(np.float64 if arr.dtype.kind in "biu" else np.float32)
        if arr.dtype not in _FLOAT_DTYPES:
            raise TypeError(f"{name}: input must be a real array, got dtype {arr.dtype}")
    src = _contiguous(arr)
    y = _core.empty(arr.shape, arr.dtype)
    _core.activate(src, y, name, a, b)
    return y


def _float_param(value: Any, name: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    return float(value)


def relu(x: Any) -> np.ndarray:
    """``max(x, 0)``, element-wise (NaN stays NaN).

    Parameters
    ----------
    x : array_like
        Any shape. float32 and float64 keep their dtype; integer input computes in
        float64, float16 in float32.

    Returns
    -------
    numpy.ndarray
        The same shape, a new array.

    Raises
    ------
    TypeError
        A complex or object array.

    Examples
    --------
    >>> convcore.relu(np.array([-1.0, 0.0, 2.5]))
    array([0. , 0. , 2.5])
    """
    return _activate(x, "relu", 1.0, 0.0)


def sigmoid(x: Any, a: float = 1.0, b: float = 0.0) -> np.ndarray:
    """``1 / (1 + exp(-a*(x - b)))``, element-wise: a soft threshold at ``b`` of
    steepness ``a``. The lecture uses ``a=0.08, b=50`` on 8-bit intensities.

    Never overflows (large ``|a*(x-b)|`` gives exactly 0 or 1); dtypes as :func:`relu`.
    ``a`` and ``b`` must be real numbers (else TypeError).

    >>> convcore.sigmoid(np.array([0.0, 50.0, 100.0]), a=0.08, b=50).round(3)
    array([0.018, 0.5  , 0.982])
    """
    return _activate(x, "sigmoid", _float_param(a, "a"), _float_param(b, "b"))


def tanh(x: Any) -> np.ndarray:
    """``tanh(x)``, element-wise; dtypes as :func:`relu`.

    >>> convcore.tanh(np.array([0.0]))
    array([0.])
    """
    return _activate(x, "tanh", 1.0, 0.0)


def abs(x: Any) -> np.ndarray:  # noqa: A001 - the contract's name
    """``|x|``, element-wise (``-0.0`` becomes ``0.0``, NaN stays NaN).

    >>> convcore.abs(np.array([-2.0, 0.5]))
    array([2. , 0.5])
    """
    return _activate(x, "abs", 1.0, 0.0)


def square(x: Any) -> np.ndarray:
    """``x*x``, element-wise; dtypes as :func:`relu`.

    >>> convcore.square(np.array([-3.0]))
    array([9.])
    """
    return _activate(x, "square", 1.0, 0.0)


def leaky_relu(x: Any, negative_slope: float = 0.01) -> np.ndarray:
    """``x if x >= 0 else negative_slope*x``, element-wise; dtypes as :func:`relu`.
    ``negative_slope`` must be a real number (else TypeError).

    >>> convcore.leaky_relu(np.array([-10.0, 10.0]), negative_slope=0.1)
    array([-1., 10.])
    """
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


def _lc_args(x: np.ndarray, w: np.ndarray, stride: Any, padding: Any, dilation: Any):
    """locally_connected2d's geometry arguments converted, shared with its backward: (input
    as (N, C, H, W), whether it had a batch dimension, stride, padding, dilation, the
    (N, K, Ho, Wo) output shape, which the weight's (Ho, Wo) must match)."""
    x4, batched = _batched4(x, "locally_connected2d")
    if w.ndim != 6:
        raise ValueError(f"weight must be (Ho, Wo, K, C, R, S), got shape {w.shape}")
    ho_w, wo_w, k, cw, r, s = w.shape
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    pads = conv_padding(padding, (r, s), stride2, dilation2)
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
    return x4, batched, stride2, pads, dilation2, (n, k, ho, wo)


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
    """A locally connected layer: ``conv2d`` with one filter bank per output position
    (local connectivity without weight sharing).

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``, float32 or float64.
    weight : array_like
        ``(Ho, Wo, K, C, R, S)``: the filters of output position ``(i, j)`` are
        ``weight[i, j]``. ``Ho, Wo`` follow conv2d's formula and must match.
    bias : array_like, optional
        ``(K, Ho, Wo)``: one bias per output channel and position.
    stride, padding, dilation
        As :func:`conv2d`'s (``padding`` an int, a pair, ``"same"`` with stride 1, or
        ``"valid"``); the padding holds zeros.
    activation : None, str or object
        As :func:`conv2d`'s.

    Returns
    -------
    numpy.ndarray
        ``(N, K, Ho, Wo)`` (or ``(K, Ho, Wo)``) in the input's dtype. With
        ``weight[i, j] == w`` everywhere it equals ``conv2d(input, w, ...)``.

    Raises
    ------
    TypeError
        Dtypes, as :func:`conv2d`.
    ValueError
        Wrong ranks, a weight whose C differs from the input's, a weight made for
        another output size, a bias of the wrong shape, bad stride/padding/dilation.

    Examples
    --------
    >>> x = np.ones((1, 3, 3))
    >>> w = np.ones((2, 2, 1, 1, 2, 2))           # 2x2 filters at each of 2x2 positions
    >>> w[0, 0] = 0                                # the top-left position sees nothing
    >>> convcore.locally_connected2d(x, w)
    array([[[0., 4.],
            [4., 4.]]])
    """
    x, w, b = _float_arrays(input=input, weight=weight, bias=bias)
    dtype = _same_dtype("locally_connected2d", input=x, weight=w, bias=b)
    _layout_hint(x, w[0, 0] if w.ndim == 6 else w, 1)
    x4, batched, stride2, pads, dilation2, (n, k, ho, wo) = _lc_args(x, w, stride, padding,
                                                                     dilation)
    act, a, bb = activation_spec(activation)
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


def _pool_input(func, input, kernel2, stride2, pad2, dilation2, ceil_mode):
    """(the input as a contiguous (N, C, H, W) float array, the output shape, whether the
    input had a batch dimension) for pooling parameters already converted
    (``_pool_params``; the layers convert theirs once)."""
    x = _float_array(input, "input")
    x4, batched = _batched4(x, func)
    shape = _core.pool2d_output_shape(x4.shape, kernel2, stride2, pad2, dilation2, ceil_mode,
                                      func.startswith("avg_pool2d"))
    return _contiguous(x4), tuple(shape), batched


def max_pool2d(
    input: Any,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """2D max pooling as ``torch.nn.functional.max_pool2d``.

    Parameters
    ----------
    input : array_like
        ``(N, C, H, W)`` or ``(C, H, W)``, float32 or float64.
    kernel_size, stride, padding, dilation : int or (int, int)
        ``stride`` defaults to ``kernel_size``; padding is at most half the kernel and
        never wins (it is minus infinity).
    ceil_mode : bool
        Round the output size up (the last window must start inside the input or the
        left padding), as PyTorch.

    Returns
    -------
    numpy.ndarray
        ``(N, C, Ho, Wo)`` (or ``(C, Ho, Wo)``); a NaN in a window gives NaN.

    Raises
    ------
    TypeError
        A dtype other than float32/float64, non-integer sizes, a non-bool ceil_mode.
    ValueError
        Wrong ranks, non-positive sizes, padding above half the kernel, an empty output.

    Examples
    --------
    >>> x = np.arange(16.0).reshape(1, 4, 4)
    >>> convcore.max_pool2d(x, 2)
    array([[[ 5.,  7.],
            [13., 15.]]])
    """
    return _max_pool2d(input, *_pool_params(kernel_size, stride, padding, dilation, ceil_mode))


def _max_pool2d(input, k2, s2, p2, d2, ceil_mode):
    """max_pool2d on converted parameters (``_pool_params``)."""
    x4, shape, batched = _pool_input("max_pool2d", input, k2, s2, p2, d2, ceil_mode)
    y = _core.empty(shape, np.dtype(x4.dtype))
    if y.size:
        _core.max_pool2d(x4, y, k2, s2, p2, d2, ceil_mode)
    return y if batched else y[0]


def avg_pool2d(
    input: Any,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """2D average pooling as ``torch.nn.functional.avg_pool2d``.

    Arguments as :func:`max_pool2d` (without dilation). The divisor is the window clipped
    to the padded input when ``count_include_pad`` (the default), else the number of taps
    inside the input. Raises as :func:`max_pool2d`, and TypeError for a non-bool
    ``count_include_pad``.

    >>> convcore.avg_pool2d(np.arange(16.0).reshape(1, 4, 4), 2)
    array([[[ 2.5,  4.5],
            [10.5, 12.5]]])
    """
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {type(count_include_pad).__name__}")
    k2, s2, p2, _, ceil_mode = _pool_params(kernel_size, stride, padding, 1, ceil_mode)
    return _avg_pool2d(input, k2, s2, p2, ceil_mode, bool(count_include_pad))


def _avg_pool2d(input, k2, s2, p2, ceil_mode, count_include_pad):
    """avg_pool2d on converted parameters (``_pool_params``)."""
    x4, shape, batched = _pool_input("avg_pool2d", input, k2, s2, p2, (1, 1), ceil_mode)
    y = _core.empty(shape, np.dtype(x4.dtype))
    if y.size:
        _core.avg_pool2d(x4, y, k2, s2, p2, ceil_mode, count_include_pad)
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

    >>> w = np.array([[[[1.0, 2.0]]]])              # one 1x2 filter
    >>> m = convcore.conv2d_dense_matrix(w, (1, 1, 3))
    >>> m
    array([[1., 2., 0.],
           [0., 1., 2.]])
    >>> x = np.array([1.0, 10.0, 100.0])
    >>> m @ x, convcore.conv2d(x.reshape(1, 1, 3), w).ravel()
    (array([ 21., 210.]), array([ 21., 210.]))
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


# ----------------------------------------------------------------------------- gradients


def _output_mask(mask: Any) -> Tuple[bool, bool, bool]:
    """(grad_input, grad_weight, grad_bias) wanted: a sequence of three bools."""
    if not isinstance(mask, (tuple, list)) or len(mask) != 3:
        raise ValueError(f"output_mask must be a sequence of three bools, got {mask!r}")
    for v in mask:
        if not isinstance(v, (bool, np.bool_)):
            raise TypeError(f"output_mask must hold bools, got {mask!r}")
    return (bool(mask[0]), bool(mask[1]), bool(mask[2]))


def _grad_output(value: Any, expected: Tuple[int, ...], func: str, **shapes: Any) -> np.ndarray:
    """grad_output as a float array of the forward output's shape (ValueError naming both)."""
    g = _float_array(value, "grad_output")
    if g.shape != tuple(expected):
        what = ", ".join(f"{n} {s}" for n, s in shapes.items())
        raise ValueError(
            f"{func}: grad_output has shape {g.shape}, expected the forward output's shape "
            f"{tuple(expected)} (from {what})"
        )
    return g


def _grads(mask: Tuple[bool, bool, bool], shapes, dtype) -> list:
    return [_core.empty(sh, np.dtype(dtype)) if m else None for m, sh in zip(mask, shapes)]


def conv2d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride: IntPair = 1,
    padding: Union[IntPair, str] = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    output_mask: Tuple[bool, bool, bool] = (True, True, True),
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of
    ``conv2d(input, weight, bias, stride, padding, dilation, groups, padding_mode=...)``
    (no activation) given ``grad_output`` (the output's shape), as
    ``torch.ops.aten.convolution_backward``: a ``False`` in ``output_mask`` gives ``None``
    in that place. Same arguments, dtype rules and errors as ``conv2d``; unbatched
    ``(C, H, W)`` inputs give an unbatched ``grad_input``. Bitwise the same for any thread
    count. With both ``grad_input`` and ``grad_weight`` asked for, on two threads (or
    when a pass is too small to split over more), the two passes run side by side, one
    thread each.
    """
    x = _float_array(input, "input")
    w = _float_array(weight, "weight")
    x4, batched, stride2, pads, dilation2, groups, padding_mode, shape4 = _conv_args(
        x, w, stride, padding, dilation, groups, padding_mode)
    g = _grad_output(grad_output, shape4 if batched else shape4[1:], "conv2d_backward",
                     input=x.shape, weight=w.shape)
    dtype = _same_dtype("conv2d_backward", grad_output=g, input=x, weight=w)
    mask = _output_mask(output_mask)
    gi, gw, gb = _grads(mask, (x.shape, w.shape, (w.shape[0],)), dtype)
    _conv2d_backward_run(g if batched else g[None], x4, w,
                         gi if gi is None or batched else gi[None], gw, gb, stride2, pads,
                         dilation2, groups, padding_mode)
    return gi, gw, gb


def _conv2d_backward_run(g4: np.ndarray, x4: np.ndarray, w: np.ndarray,
                         gi4: Optional[np.ndarray], gw: Optional[np.ndarray],
                         gb: Optional[np.ndarray], stride2: Tuple[int, int],
                         pads: Tuple[int, int, int, int], dilation2: Tuple[int, int],
                         groups: int, padding_mode: str) -> None:
    """conv2d_backward into the given gradients (None: not wanted) on converted
    arguments, shared with the layers' training path; an empty batch gives zero sums."""
    if x4.shape[0] == 0:
        for a in (gw, gb):
            if a is not None:
                a.fill(0)
        return
    _core.conv2d_backward(_contiguous(g4), _contiguous(x4), _contiguous(w), gi4, gw, gb,
                          stride2, pads, dilation2, groups, padding_mode)


def conv2d_backward_workspace_bytes(
    input_shape: Tuple[int, ...],
    weight_shape: Tuple[int, int, int, int],
    stride: IntPair = 1,
    padding: Union[IntPair, str] = 0,
    dilation: IntPair = 1,
    groups: int = 1,
    *,
    padding_mode: str = "zeros",
    dtype: Any = np.float32,
    output_mask: Tuple[bool, bool, bool] = (True, True, True),
) -> int:
    """Scratch bytes one ``conv2d_backward`` call with these shapes takes beyond its
    arguments and results, on the current thread count: a few MiB and a copy of the
    weights, whatever the image size (plus the padded input and its gradient for padding
    modes other than zeros)."""
    shape = tuple(_int_param(v, "input_shape", 0) for v in input_shape)
    wshape = tuple(_int_param(v, "weight_shape", 1) for v in weight_shape)
    if len(shape) not in (3, 4) or len(wshape) != 4:
        raise ValueError(
            f"input_shape must be (N, C, H, W) or (C, H, W) and weight_shape (K, C/groups, R, S), "
            f"got {shape} and {wshape}"
        )
    n, c, h, wd = shape if len(shape) == 4 else (1,) + shape
    k, _, r, s = wshape
    stride2 = _pair(stride, "stride")
    dilation2 = _pair(dilation, "dilation")
    pads = conv_padding(padding, (r, s), stride2, dilation2)
    mask = _output_mask(output_mask)
    itemsize = np.dtype(dtype).itemsize
    if itemsize not in (4, 8) or np.dtype(dtype).kind != "f":
        raise TypeError(f"dtype must be float32 or float64, got {np.dtype(dtype)}")
    return _core.conv2d_backward_workspace_bytes(
        (n, c, h, wd), (k, r, s, _int_param(groups, "groups")), stride2, pads, dilation2,
        _name(padding_mode, "padding_mode", PADDING_MODES), itemsize, mask[0], mask[1])


def linear_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    output_mask: Tuple[bool, bool, bool] = (True, True, True),
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of ``linear(input, weight, bias)``:
    ``grad_output @ weight``, ``grad_output^T @ input`` (summed over every leading
    dimension) and ``grad_output``'s sums; ``None`` where ``output_mask`` is False."""
    x = _float_array(input, "input")
    w = _float_array(weight, "weight")
    if w.ndim != 2:
        raise ValueError(f"weight must be (out_features, in_features), got shape {w.shape}")
    if x.ndim < 1 or x.shape[-1] != w.shape[1]:
        raise ValueError(
            f"input has shape {x.shape}: its last dimension must be in_features={w.shape[1]} "
            f"of weight {w.shape}"
        )
    out_f, in_f = w.shape
    g = _grad_output(grad_output, x.shape[:-1] + (out_f,), "linear_backward", input=x.shape,
                     weight=w.shape)
    dtype = _same_dtype("linear_backward", grad_output=g, input=x, weight=w)
    mask = _output_mask(output_mask)
    m = 1
    for d in x.shape[:-1]:
        m *= d
    _size_check((m, max(in_f, out_f)), "input")
    gi, gw, gb = _grads(mask, (x.shape, w.shape, (out_f,)), dtype)
    _linear_backward_run(g.reshape(m, out_f), x.reshape(m, in_f), w,
                         None if gi is None else gi.reshape(m, in_f), gw, gb)
    return gi, gw, gb


def _linear_backward_run(g2: np.ndarray, x2: np.ndarray, w: np.ndarray,
                         gi2: Optional[np.ndarray], gw: Optional[np.ndarray],
                         gb: Optional[np.ndarray]) -> None:
    """linear_backward into the given gradients (None: not wanted) for 2-D ``g2`` (m, out)
    and ``x2`` (m, in) already checked, shared with Dense's training path."""
    _core.linear_backward(_contiguous(g2), _contiguous(x2), _contiguous(w), gi2, gw, gb)


def locally_connected2d_backward(
    grad_output: Any,
    input: Any,
    weight: Any,
    stride: IntPair = 1,
    padding: Union[IntPair, str] = 0,
    dilation: IntPair = 1,
    output_mask: Tuple[bool, bool, bool] = (True, True, True),
) -> Tuple[Optional[np.ndarray], Optional[np.ndarray], Optional[np.ndarray]]:
    """Gradients ``(grad_input, grad_weight, grad_bias)`` of ``locally_connected2d`` (no
    activation): weight ``(Ho, Wo, K, C, R, S)``, bias ``(K, Ho, Wo)``; ``None`` where
    ``output_mask`` is False."""
    x = _float_array(input, "input")
    w = _float_array(weight, "weight")
    x4, batched, stride2, pads, dilation2, out4 = _lc_args(x, w, stride, padding, dilation)
    k, ho, wo = out4[1:]
    g = _grad_output(grad_output, out4 if batched else out4[1:], "locally_connected2d_backward",
                     input=x.shape, weight=w.shape)
    dtype = _same_dtype("locally_connected2d_backward", grad_output=g, input=x, weight=w)
    mask = _output_mask(output_mask)
    gi, gw, gb = _grads(mask, (x.shape, w.shape, (k, ho, wo)), dtype)
    _core.locally_connected2d_backward(
        _contiguous(g if batched else g[None]), _contiguous(x4), _contiguous(w),
        None if gi is None else (gi if batched else gi[None]), gw, gb, stride2, pads, dilation2,
    )
    return gi, gw, gb


def max_pool2d_backward(
    grad_output: Any,
    input: Any,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    dilation: IntPair = 1,
    ceil_mode: bool = False,
) -> np.ndarray:
    """``grad_input`` of ``max_pool2d(input, ...)``: each output's gradient goes to its
    window's maximum; a tie to the first maximum in row-major window order (as PyTorch)."""
    return _max_pool2d_backward(grad_output, input, *_pool_params(kernel_size, stride, padding,
                                                                  dilation, ceil_mode))


def _max_pool2d_backward(grad_output, input, k2, s2, p2, d2, ceil_mode):
    """max_pool2d_backward on converted parameters (``_pool_params``)."""
    x4, shape, batched = _pool_input("max_pool2d_backward", input, k2, s2, p2, d2, ceil_mode)
    g = _grad_output(grad_output, shape if batched else shape[1:], "max_pool2d_backward",
                     input=np.shape(input))
    _same_dtype("max_pool2d_backward", grad_output=g, input=x4)
    gi = _core.empty(x4.shape, np.dtype(x4.dtype))
    _core.max_pool2d_backward(_contiguous(g if batched else g[None]), x4, gi, k2, s2, p2, d2,
                              ceil_mode)
    return gi if batched else gi[0]


def avg_pool2d_backward(
    grad_output: Any,
    input: Any,
    kernel_size: IntPair,
    stride: Optional[IntPair] = None,
    padding: IntPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    """``grad_input`` of ``avg_pool2d(input, ...)``: each output's gradient divided by its
    window's divisor, added to the window's taps inside the input."""
    if not isinstance(count_include_pad, (bool, np.bool_)):
        raise TypeError(f"count_include_pad must be a bool, got {type(count_include_pad).__name__}")
    k2, s2, p2, _, ceil_mode = _pool_params(kernel_size, stride, padding, 1, ceil_mode)
    return _avg_pool2d_backward(grad_output, input, k2, s2, p2, ceil_mode,
                                bool(count_include_pad))


def _avg_pool2d_backward(grad_output, input, k2, s2, p2, ceil_mode, count_include_pad):
    """avg_pool2d_backward on converted parameters (``_pool_params``)."""
    x4, shape, batched = _pool_input("avg_pool2d_backward", input, k2, s2, p2, (1, 1),
                                     ceil_mode)
    g = _grad_output(grad_output, shape if batched else shape[1:], "avg_pool2d_backward",
                     input=np.shape(input))
    _same_dtype("avg_pool2d_backward", grad_output=g, input=x4)
    gi = _core.empty(x4.shape, np.dtype(x4.dtype))
    _core.avg_pool2d_backward(_contiguous(g if batched else g[None]), gi, k2, s2, p2,
                              ceil_mode, count_include_pad)
    return gi if batched else gi[0]


def activation_backward(activation: Any, grad_output: Any, input: Any) -> np.ndarray:
    """``grad_input`` of an activation (a name or an object, as in ``conv2d``) at
    ``input``: ``grad_output * f'(input)``; relu, leaky_relu and abs at 0 as PyTorch
    (0, the slope, 0)."""
    act, a, b = activation_spec(activation)
    x = _float_array(input, "input")
    g = _grad_output(grad_output, x.shape, "activation_backward", input=x.shape)
    _same_dtype("activation_backward", grad_output=g, input=x)
    return _activation_backward((act, a, b), g, x)


def _activation_backward(spec: Tuple[str, float, float], g: np.ndarray,
                         x: np.ndarray) -> np.ndarray:
    """activation_backward for an ``activation_spec`` and arrays of one shape and dtype."""
    gi = _core.empty(x.shape, x.dtype)
    _core.activation_backward(_contiguous(g), _contiguous(x), gi, *spec)
    return gi


REDUCTIONS = ("none", "mean", "sum")


def _cross_entropy_args(logits: Any, target: Any, reduction: Any):
    z = _float_array(logits, "logits")
    if z.ndim != 2:
        raise ValueError(f"logits must be (N, classes), got shape {z.shape}")
    t = np.asarray(target)
    if t.dtype.kind not in "iu" or t.dtype == np.uint64:
        raise TypeError(f"target must be an array of integer class indices, got dtype {t.dtype}")
    if t.shape != (z.shape[0],):
        raise ValueError(f"target must have shape ({z.shape[0]},) for logits {z.shape}, got {t.shape}")
    if z.shape[1] == 0:
        raise ValueError(f"logits {z.shape} must have at least one class")
    reduction = _choice(reduction, "reduction", REDUCTIONS)
    return _contiguous(z), np.ascontiguousarray(t, dtype=np.int64), reduction


def cross_entropy(logits: Any, target: Any, reduction: str = "mean") -> Union[float, np.ndarray]:
    """The cross-entropy loss of ``logits (N, classes)`` against integer class indices
    ``target (N,)``, as ``torch.nn.functional.cross_entropy``: a float for ``"mean"`` and
    ``"sum"``, the per-sample losses (logits' dtype) for ``"none"``. Computed in float64."""
    z, t, reduction = _cross_entropy_args(logits, target, reduction)
    per = np.empty(z.shape[0], dtype=z.dtype) if reduction == "none" else None
    loss = _core.cross_entropy(z, t, per, None, reduction)
    return per if reduction == "none" else float(loss)


def cross_entropy_backward(logits: Any, target: Any, reduction: str = "mean") -> np.ndarray:
    """The gradient of ``cross_entropy(logits, target, reduction)`` w.r.t. ``logits``:
    ``softmax(logits) - onehot(target)``, divided by N for ``"mean"`` (for ``"none"``, the
    gradient of the per-sample losses' sum)."""
    z, t, reduction = _cross_entropy_args(logits, target, reduction)
    grad = _core.empty(z.shape, np.dtype(z.dtype))
    _core.cross_entropy(z, t, None, grad, reduction)
    return grad


__all__ += ["activation_backward", "avg_pool2d_backward", "conv2d_backward",
            "conv2d_backward_workspace_bytes", "cross_entropy", "cross_entropy_backward",
            "linear_backward", "locally_connected2d_backward", "max_pool2d_backward"]
