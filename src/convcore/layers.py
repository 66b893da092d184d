"""Layers shaped like their ``torch.nn`` namesakes, on NumPy arrays.

``Conv2d``, ``Dense`` (``torch.nn.Linear``), ``LocallyConnected2d``, the activations
``ReLU``, ``Sigmoid(a, b)``, ``Tanh``, ``Abs``, ``Square``, ``LeakyReLU``, the pools
``MaxPool2d`` / ``AvgPool2d``, ``Flatten`` and ``Sequential``.

Every layer is callable on an array and has ``num_params``, ``output_shape(input_shape)``,
``macs(input_shape)`` (multiply-accumulates) and a PyTorch-like ``repr``. An
``input_shape`` is one input's shape (``(C, H, W)`` or ``(features,)``), with or without
a leading batch dimension; the answer keeps the batch dimension when it was given.

Parameters (``weight``, ``bias``) are NumPy arrays initialised as PyTorch does
(Kaiming-uniform with ``a = sqrt(5)``: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the
weight and the bias) from ``seed``, in ``dtype`` (float32 or float64). They are read-only
views: to change them, assign a new array (``layer.weight = w``), which is validated
(shape and dtype) and re-packed once; the layer never re-packs per call.

Activation layers double as the ``activation=`` argument of ``conv2d``, ``linear`` and the
layers: their ``activation_spec`` ``(name, a, b)`` is fused into the kernel's store.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from . import functional as F
from .functional import IntPair

__all__ = [
    "Abs", "AvgPool2d", "Conv2d", "Dense", "Flatten", "LeakyReLU", "LocallyConnected2d",
    "MaxPool2d", "Module", "ReLU", "Sequential", "Sigmoid", "Square", "Summary",
    "SummaryRow", "Tanh",
]

Shape = Tuple[int, ...]

# ----------------------------------------------------------------------------- helpers


def _dtype(dtype: Any) -> np.dtype:
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from e
    if dt not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dt}")
    return dt


def _seed(seed: Any) -> Optional[int]:
    if seed is None:
        return None
    return F._int_param(seed, "seed", 0)


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _uniform(rng: np.random.Generator, shape: Shape, fan_in: int, dtype: np.dtype) -> np.ndarray:
    """PyTorch's default initialisation: U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (what
    kaiming_uniform_(a=sqrt(5)) gives for weights, and the bias rule)."""
    bound = 1.0 / math.sqrt(fan_in)
    return rng.uniform(-bound, bound, size=shape).astype(dtype)


def _frozen(arr: np.ndarray) -> np.ndarray:
    """A read-only view, so that changing a parameter in place (which would bypass the
    re-pack) raises instead of being silently ignored."""
    view = arr.view()
    view.flags.writeable = False
    return view


def _param(value: Any, name: str, shape: Shape, dtype: np.dtype, layer: str,
           copy: bool = True) -> np.ndarray:
    """A parameter assignment: an ndarray of exactly this shape and dtype, stored as a
    private C-contiguous copy (or as it is when ``copy`` is false and it is C-contiguous)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{layer}.{name} must be a numpy.ndarray, got {type(value).__name__}")
    if value.dtype != dtype:
        raise TypeError(f"{layer}.{name} must have dtype {dtype} (the layer's), got {value.dtype}")
    if value.shape != tuple(shape):
        raise ValueError(f"{layer}.{name} must have shape {tuple(shape)}, got {value.shape}")
    if not copy:
        return np.ascontiguousarray(value)
    return np.array(value, dtype=dtype, order="C", copy=True)


def _shape(input_shape: Any, name: str = "input_shape") -> Shape:
    if not isinstance(input_shape, (tuple, list)):
        raise TypeError(f"{name} must be a tuple of ints, got {type(input_shape).__name__}")
    return tuple(F._int_param(v, name, 0) for v in input_shape)


def _split_batch(input_shape: Any, ndim: int, layer: str, what: str) -> Tuple[Optional[int], Shape]:
    """(batch size or None, one input's shape) for a layer whose input has ``ndim`` dims."""
    shape = _shape(input_shape)
    if len(shape) == ndim:
        return None, shape
    if len(shape) == ndim + 1:
        return shape[0], shape[1:]
    raise ValueError(f"{layer}: input_shape must be {what} or (N, {what[1:]}, got {shape}")


def _join_batch(batch: Optional[int], shape: Shape) -> Shape:
    return shape if batch is None else (batch,) + shape


def _conv_geometry(layer: "Module", in_channels: Any, out_channels: Any, kernel_size: Any,
                   stride: Any, padding: Any, dilation: Any) -> None:
    """Sets a convolution-shaped layer's channels, kernel_size, stride, dilation, padding
    (as given: an int pair or a name) and _pads (top, bottom, left, right), converted; the
    core checks their values."""
    layer.in_channels = F._int_param(in_channels, "in_channels")
    layer.out_channels = F._int_param(out_channels, "out_channels")
    layer.kernel_size = F._pair(kernel_size, "kernel_size")
    layer.stride = F._pair(stride, "stride")
    layer.dilation = F._pair(dilation, "dilation")
    layer.padding = padding if isinstance(padding, str) else F._pair(padding, "padding")
    layer._pads = F.conv_padding(padding, layer.kernel_size, layer.stride, layer.dilation)


def _act_repr(activation: Any) -> str:
    if activation is None:
        return ""
    return f", activation={activation!r}"


# ----------------------------------------------------------------------------- Module


class Module:
    """Base class of every layer: callable, parameters, shapes, MACs, repr.

    Subclasses implement ``forward``, ``output_shape`` and, when they compute, ``macs``;
    ``input_ndim`` is the number of dimensions of one input (None: any)."""

    input_ndim: Optional[int] = None

    def __call__(self, x: Any) -> np.ndarray:
        return self.forward(x)

    def forward(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    def parameters(self) -> List[np.ndarray]:
        """The layer's parameter arrays (read-only views)."""
        return []

    @property
    def num_params(self) -> int:
        """Number of parameters (weights and biases)."""
        return int(sum(p.size for p in self.parameters()))

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """Output shape for one input of ``input_shape`` (with or without batch dim)."""
        return _shape(input_shape)

    def macs(self, input_shape: Sequence[int]) -> int:
        """Multiply-accumulates of one call on ``input_shape`` (0 for layers that only
        compare, copy or apply a point-wise function)."""
        self.output_shape(input_shape)  # validates
        return 0

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


def _input(layer: Module, x: Any, dtype: Optional[np.dtype]) -> Tuple[np.ndarray, bool]:
    """The input as a batched float array of the layer's dtype (TypeError otherwise) and
    whether it had a batch dimension."""
    name = type(layer).__name__
    arr = F._float_array(x, "input")
    if dtype is not None and arr.dtype != dtype:
        raise TypeError(f"{name}: input has dtype {arr.dtype} but the layer's parameters are {dtype}")
    nd = layer.input_ndim
    if arr.ndim == nd:
        return arr[None], False
    if arr.ndim == nd + 1:
        return arr, True
    raise ValueError(f"{name}: input must have {nd} or {nd + 1} dimensions, got shape {arr.shape}")


# ----------------------------------------------------------------------------- activations


class _Activation(Module):
    """A point-wise activation: callable on arrays of any shape, and usable as the
    ``activation=`` of conv2d / linear / the layers through ``activation_spec``."""

    _name = ""

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        self._a = F._float_param(a, "a")
        self._b = F._float_param(b, "b")

    @property
    def activation_spec(self) -> Tuple[str, float, float]:
        return (self._name, self._a, self._b)

    def forward(self, x: Any) -> np.ndarray:
        return F._activate(x, self._name, self._a, self._b)


class ReLU(_Activation):
    """max(x, 0), element-wise (NaN stays NaN)."""

    _name = "relu"

    def __init__(self) -> None:
        super().__init__()


class Sigmoid(_Activation):
    """1 / (1 + exp(-a*(x - b))), element-wise; the lecture's detector uses a=0.08, b=50."""

    _name = "sigmoid"

    def __init__(self, a: float = 1.0, b: float = 0.0) -> None:
        super().__init__(a, b)

    @property
    def a(self) -> float:
        return self._a

    @property
    def b(self) -> float:
        return self._b

    def extra_repr(self) -> str:
        return "" if (self._a, self._b) == (1.0, 0.0) else f"a={self._a:g}, b={self._b:g}"


class Tanh(_Activation):
    """tanh(x), element-wise."""

    _name = "tanh"

    def __init__(self) -> None:
        super().__init__()


class Abs(_Activation):
    """|x|, element-wise."""

    _name = "abs"

    def __init__(self) -> None:
        super().__init__()


class Square(_Activation):
    """x*x, element-wise."""

    _name = "square"

    def __init__(self) -> None:
        super().__init__()


class LeakyReLU(_Activation):
    """x if x >= 0 else negative_slope*x, element-wise."""

    _name = "leaky_relu"

    def __init__(self, negative_slope: float = 0.01) -> None:
        super().__init__(F._float_param(negative_slope, "negative_slope"), 0.0)

    @property
    def negative_slope(self) -> float:
        return self._a

    def extra_repr(self) -> str:
        return f"negative_slope={self._a:g}"


# ----------------------------------------------------------------------------- Dense


class Dense(Module):
    """Fully connected layer, as ``torch.nn.Linear``: ``y = activation(x @ weight.T + bias)``.

    weight ``(out_features, in_features)``, bias ``(out_features,)``; input
    ``(..., in_features)``. The weights are packed once (``_core.LinearOp``) when set.
    """

    input_ndim = 1

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: Any = None, *, dtype: Any = np.float32, seed: Optional[int] = None):
        self._configure(in_features, out_features, activation, dtype)
        rng = np.random.default_rng(_seed(seed))
        self._weight = _uniform(rng, (self.out_features, self.in_features), self.in_features,
                                self.dtype)
        self._bias = _uniform(rng, (self.out_features,), self.in_features, self.dtype) \
            if _bool(bias, "bias") else None
        self._pack()

    def _configure(self, in_features: int, out_features: int, activation: Any,
                   dtype: Any) -> None:
        self.in_features = F._int_param(in_features, "in_features", 1)
        self.out_features = F._int_param(out_features, "out_features", 1)
        self.activation = activation
        self._spec = F.activation_spec(activation)
        self.dtype = _dtype(dtype)

    @classmethod
    def from_weights(cls, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                     activation: Any = None, *, copy: bool = True) -> "Dense":
        """A Dense layer with these parameters (weight ``(out, in)``, dtype float32 or
        float64; bias ``(out,)`` or None) and no random initialisation. ``copy=False`` takes
        the arrays as they are when C-contiguous (for a matrix too large to hold twice); the
        caller must not change them afterwards."""
        w = F._float_array(weight, "weight")
        if w.ndim != 2:
            raise ValueError(f"Dense.from_weights: weight must be (out_features, in_features), got {w.shape}")
        layer = cls.__new__(cls)
        layer._configure(w.shape[1], w.shape[0], activation, w.dtype)
        layer._weight = _param(w, "weight", w.shape, layer.dtype, "Dense", copy)
        layer._bias = None if bias is None else _param(bias, "bias", (w.shape[0],), layer.dtype,
                                                        "Dense", copy)
        layer._pack()
        return layer

    def _pack(self) -> None:
        self._op = _core.LinearOp(self._weight, self._bias, *self._spec)

    @property
    def weight(self) -> np.ndarray:
        return _frozen(self._weight)

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self._weight = _param(value, "weight", (self.out_features, self.in_features),
                              self.dtype, "Dense")
        self._pack()

    @property
    def bias(self) -> Optional[np.ndarray]:
        return None if self._bias is None else _frozen(self._bias)

    @bias.setter
    def bias(self, value: Optional[np.ndarray]) -> None:
        self._bias = None if value is None else _param(value, "bias", (self.out_features,),
                                                        self.dtype, "Dense")
        self._pack()

    def parameters(self) -> List[np.ndarray]:
        return [p for p in (self.weight, self.bias) if p is not None]

    def forward(self, x: Any) -> np.ndarray:
        arr = F._float_array(x, "input")
        if arr.dtype != self.dtype:
            raise TypeError(f"Dense: input has dtype {arr.dtype} but the layer's parameters are {self.dtype}")
        if arr.ndim < 1 or arr.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense: input must be (..., {self.in_features}), got shape {arr.shape}")
        lead = arr.shape[:-1]
        m = int(np.prod(lead, dtype=np.int64))
        y = _core.empty(lead + (self.out_features,), np.dtype(self.dtype))
        if m:
            self._op.run(F._contiguous(arr.reshape(m, self.in_features)),
                         y.reshape(m, self.out_features))
        return y

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shape = _shape(input_shape)
        if len(shape) < 1 or shape[-1] != self.in_features:
            raise ValueError(f"Dense: input_shape must be (..., {self.in_features}), got {shape}")
        return shape[:-1] + (self.out_features,)

    def macs(self, input_shape: Sequence[int]) -> int:
        shape = self.output_shape(input_shape)
        return int(np.prod(shape[:-1], dtype=np.int64)) * self.in_features * self.out_features

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self._bias is not None}{_act_repr(self.activation)}")


# ----------------------------------------------------------------------------- Conv2d


class Conv2d(Module):
    """2D convolution layer, as ``torch.nn.Conv2d`` (plus a fused ``activation``).

    weight ``(out_channels, in_channels/groups, R, S)``, bias ``(out_channels,)``; input
    ``(N, C, H, W)`` or ``(C, H, W)``. Parameters: ``K*C/groups*R*S + K`` whatever the
    image size.

    Packing: the weights are packed by a ``_core.Conv2dOp``, which is built for one input
    size (C, H, W). The layer keeps one op per input size it has seen (the last
    ``max_cached_shapes``), so a call never re-packs; assigning ``weight`` or ``bias``
    drops them all, and the next call of each size packs once.
    """

    input_ndim = 3
    max_cached_shapes = 8

    def __init__(self, in_channels: int, out_channels: int, kernel_size: IntPair,
                 stride: IntPair = 1, padding: Union[IntPair, str] = 0, dilation: IntPair = 1,
                 groups: int = 1, bias: bool = True, padding_mode: str = "zeros",
                 activation: Any = None, *, dtype: Any = np.float32, seed: Optional[int] = None):
        _conv_geometry(self, in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.groups = F._int_param(groups, "groups")
        self.padding_mode = F._name(padding_mode, "padding_mode", F.PADDING_MODES)
        _core.conv2d_check_parameters(self.in_channels, self.out_channels, self.kernel_size,
                                      self.stride, self._pads, self.dilation, self.groups,
                                      self.padding_mode)
        self.activation = activation
        self._spec = F.activation_spec(activation)
        self.dtype = _dtype(dtype)
        rng = np.random.default_rng(_seed(seed))
        fan_in = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        self._weight = _uniform(rng, self._weight_shape(), fan_in, self.dtype)
        self._bias = _uniform(rng, (self.out_channels,), fan_in, self.dtype) \
            if _bool(bias, "bias") else None
        self._ops: "OrderedDict[Shape, Any]" = OrderedDict()

    def _weight_shape(self) -> Shape:
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    @property
    def weight(self) -> np.ndarray:
        return _frozen(self._weight)

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self._weight = _param(value, "weight", self._weight_shape(), self.dtype, "Conv2d")
        self._ops.clear()

    @property
    def bias(self) -> Optional[np.ndarray]:
        return None if self._bias is None else _frozen(self._bias)

    @bias.setter
    def bias(self, value: Optional[np.ndarray]) -> None:
        self._bias = None if value is None else _param(value, "bias", (self.out_channels,),
                                                        self.dtype, "Conv2d")
        self._ops.clear()

    def parameters(self) -> List[np.ndarray]:
        return [p for p in (self.weight, self.bias) if p is not None]

    def _op(self, chw: Shape) -> Any:
        op = self._ops.get(chw)
        if op is None:
            op = _core.Conv2dOp(self._weight, self._bias, chw, self.stride, self._pads,
                                self.dilation, self.groups, self.padding_mode, *self._spec,
                                "auto")
            self._ops[chw] = op
            if len(self._ops) > self.max_cached_shapes:
                self._ops.popitem(last=False)
        else:
            self._ops.move_to_end(chw)
        return op

    def forward(self, x: Any) -> np.ndarray:
        x4, batched = _input(self, x, self.dtype)
        n, c, h, w = x4.shape
        if c != self.in_channels:
            raise ValueError(f"Conv2d: input {np.shape(x)} has {c} channels, expected {self.in_channels}")
        k, ho, wo = self._out_chw((c, h, w))
        y = _core.empty((n, k, ho, wo), np.dtype(self.dtype))
        if n:
            self._op((c, h, w)).run(F._contiguous(x4), y)
        return y if batched else y[0]

    def _out_chw(self, chw: Shape) -> Shape:
        c, h, w = chw
        if c != self.in_channels:
            raise ValueError(f"Conv2d: input has {c} channels, expected {self.in_channels}")
        _, k, ho, wo = _core.conv2d_output_shape((1, c, h, w), self._weight_shape(), self.stride,
                                                 self._pads, self.dilation, self.groups,
                                                 self.padding_mode)
        return (k, ho, wo)

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        batch, chw = _split_batch(input_shape, 3, "Conv2d", "(C, H, W)")
        return _join_batch(batch, self._out_chw(chw))

    def macs(self, input_shape: Sequence[int]) -> int:
        out = self.output_shape(input_shape)
        per_output = self.in_channels // self.groups * self.kernel_size[0] * self.kernel_size[1]
        return int(np.prod(out, dtype=np.int64)) * per_output

    def to_dense(self, input_shape: Sequence[int]) -> Dense:
        """The equivalent fully connected layer for one input of ``(C, H, W)``: weight
        ``conv2d_dense_matrix(...)`` ``(K*Ho*Wo, C*H*W)``, bias repeated per pixel. It maps
        ``x.reshape(N, -1)`` to ``conv(x).reshape(N, -1)``. Raises MemoryError when the
        matrix does not fit in memory, ValueError for padding modes other than zeros."""
        if self.padding_mode != "zeros":
            raise ValueError(f"Conv2d.to_dense: padding_mode={self.padding_mode!r} is not supported, only 'zeros'")
        _, chw = _split_batch(input_shape, 3, "Conv2d.to_dense", "(C, H, W)")
        k, ho, wo = self._out_chw(chw)
        m = F.conv2d_dense_matrix(self._weight, chw, self.stride, self.padding, self.dilation,
                                  self.groups)
        bias = None if self._bias is None else np.repeat(self._bias, ho * wo)
        return Dense.from_weights(m, bias, activation=self.activation, copy=False)

    def to_locally_connected(self, input_size: IntPair) -> "LocallyConnected2d":
        """The equivalent locally connected layer for inputs of ``input_size`` (H, W): the
        same filters at every output position (groups become block-diagonal zeros)."""
        if self.padding_mode != "zeros":
            raise ValueError(f"Conv2d.to_locally_connected: padding_mode={self.padding_mode!r} "
                             "is not supported, only 'zeros'")
        h, w = F._pair(input_size, "input_size", 1)
        lc = LocallyConnected2d(self.in_channels, self.out_channels, (h, w), self.kernel_size,
                                self.stride, self.padding, self.dilation,
                                bias=self._bias is not None, activation=self.activation,
                                dtype=self.dtype, seed=0)
        full = np.zeros((self.out_channels, self.in_channels) + self.kernel_size, self.dtype)
        kg, cg = self.out_channels // self.groups, self.in_channels // self.groups
        for g in range(self.groups):
            full[g * kg:(g + 1) * kg, g * cg:(g + 1) * cg] = self._weight[g * kg:(g + 1) * kg]
        ho, wo = lc.output_size
        lc.weight = np.broadcast_to(full, (ho, wo) + full.shape)
        if self._bias is not None:
            lc.bias = np.broadcast_to(self._bias[:, None, None], (self.out_channels, ho, wo))
        return lc

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
             f"stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self._bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s + _act_repr(self.activation)


# ----------------------------------------------------------------------------- LocallyConnected2d


class LocallyConnected2d(Module):
    """Locally connected layer: a convolution whose filters are not shared — one filter bank
    per output position (local connectivity without weight sharing).

    weight ``(Ho, Wo, K, C, R, S)``, bias ``(K, Ho, Wo)``; input ``(N, C, H, W)`` or
    ``(C, H, W)`` with ``(H, W) == input_size``. Parameters: ``Ho*Wo*(C*R*S*K + K)``, growing
    with the image. The kernel reads the weights as stored, so there is nothing to pack.
    """

    input_ndim = 3

    def __init__(self, in_channels: int, out_channels: int, input_size: IntPair,
                 kernel_size: IntPair, stride: IntPair = 1, padding: Union[IntPair, str] = 0,
                 dilation: IntPair = 1, bias: bool = True, activation: Any = None, *,
                 dtype: Any = np.float32, seed: Optional[int] = None):
        _conv_geometry(self, in_channels, out_channels, kernel_size, stride, padding, dilation)
        self.input_size = F._pair(input_size, "input_size")
        self.activation = activation
        self._spec = F.activation_spec(activation)
        self.dtype = _dtype(dtype)
        (h, w), (r, s) = self.input_size, self.kernel_size
        _, _, ho, wo = _core.locally_connected2d_output_shape(
            (1, self.in_channels, h, w), (self.out_channels, self.in_channels, r, s), self.stride,
            self._pads, self.dilation)
        self.output_size = (ho, wo)
        rng = np.random.default_rng(_seed(seed))
        fan_in = self.in_channels * r * s
        self._weight = _uniform(rng, self._weight_shape(), fan_in, self.dtype)
        self._bias = _uniform(rng, (self.out_channels,) + self.output_size, fan_in, self.dtype) \
            if _bool(bias, "bias") else None

    def _weight_shape(self) -> Shape:
        return self.output_size + (self.out_channels, self.in_channels) + self.kernel_size

    @property
    def weight(self) -> np.ndarray:
        return _frozen(self._weight)

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self._weight = _param(value, "weight", self._weight_shape(), self.dtype, "LocallyConnected2d")

    @property
    def bias(self) -> Optional[np.ndarray]:
        return None if self._bias is None else _frozen(self._bias)

    @bias.setter
    def bias(self, value: Optional[np.ndarray]) -> None:
        self._bias = None if value is None else _param(
            value, "bias", (self.out_channels,) + self.output_size, self.dtype, "LocallyConnected2d")

    def parameters(self) -> List[np.ndarray]:
        return [p for p in (self.weight, self.bias) if p is not None]

    def forward(self, x: Any) -> np.ndarray:
        x4, batched = _input(self, x, self.dtype)
        self._check_chw(x4.shape[1:])
        y = F.locally_connected2d(x4, self._weight, self._bias, self.stride, self.padding,
                                  self.dilation, activation=self.activation)
        return y if batched else y[0]

    def _check_chw(self, chw: Shape) -> None:
        if tuple(chw) != (self.in_channels,) + self.input_size:
            raise ValueError(f"LocallyConnected2d: input must be {(self.in_channels,) + self.input_size} "
                             f"(in_channels, *input_size), got {tuple(chw)}")

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        batch, chw = _split_batch(input_shape, 3, "LocallyConnected2d", "(C, H, W)")
        self._check_chw(chw)
        return _join_batch(batch, (self.out_channels,) + self.output_size)

    def macs(self, input_shape: Sequence[int]) -> int:
        out = self.output_shape(input_shape)
        return int(np.prod(out, dtype=np.int64)) * self.in_channels * self.kernel_size[0] * self.kernel_size[1]

    def extra_repr(self) -> str:
        s = (f"{self.in_channels}, {self.out_channels}, input_size={self.input_size}, "
             f"kernel_size={self.kernel_size}, stride={self.stride}")
        if self.padding != (0, 0):
            s += f", padding={self.padding}"
        if self.dilation != (1, 1):
            s += f", dilation={self.dilation}"
        if self._bias is None:
            s += ", bias=False"
        return s + _act_repr(self.activation)


# ----------------------------------------------------------------------------- pooling


class _Pool2d(Module):
    input_ndim = 3

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair], padding: IntPair,
                 dilation: IntPair, ceil_mode: bool) -> None:
        self.kernel_size = kernel_size
        self.stride = kernel_size if stride is None else stride
        self.padding = padding
        self.dilation = dilation
        self._k, self._s, self._p, self._d, self.ceil_mode = F._pool_params(
            kernel_size, stride, padding, dilation, ceil_mode)
        _core.pool2d_check_parameters(self._k, self._s, self._p, self._d, self._avg)

    _avg = False

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        batch, chw = _split_batch(input_shape, 3, type(self).__name__, "(C, H, W)")
        _, c, ho, wo = _core.pool2d_output_shape((1,) + chw, self._k, self._s, self._p, self._d,
                                                 self.ceil_mode, self._avg)
        return _join_batch(batch, (c, ho, wo))


class MaxPool2d(_Pool2d):
    """2D max pooling, as ``torch.nn.MaxPool2d`` (stride defaults to kernel_size; NaN in a
    window gives NaN)."""

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None,
                 padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)

    def forward(self, x: Any) -> np.ndarray:
        return F.max_pool2d(x, self._k, self._s, self._p, self._d, self.ceil_mode)

    def extra_repr(self) -> str:
        return (f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
                f"dilation={self.dilation}, ceil_mode={self.ceil_mode}")


class AvgPool2d(_Pool2d):
    """2D average pooling, as ``torch.nn.AvgPool2d``."""

    _avg = True

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None,
                 padding: IntPair = 0, ceil_mode: bool = False,
                 count_include_pad: bool = True) -> None:
        super().__init__(kernel_size, stride, padding, 1, ceil_mode)
        self.count_include_pad = _bool(count_include_pad, "count_include_pad")

    def forward(self, x: Any) -> np.ndarray:
        return F.avg_pool2d(x, self._k, self._s, self._p, self.ceil_mode, self.count_include_pad)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


# ----------------------------------------------------------------------------- Flatten


class Flatten(Module):
    """Flattens every dimension but the first, in C order, as ``torch.flatten(x, 1)``:
    ``(N, d1, d2, ...) -> (N, d1*d2*...)``. In a ``Sequential`` given one unbatched input,
    the batch dimension is added around the whole stack, so this still sees one."""

    def forward(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        if arr.ndim < 1:
            raise ValueError("Flatten: input must have at least 1 dimension")
        # The explicit size (not -1) keeps an empty batch valid: (0, C, H, W) -> (0, C*H*W).
        return arr.reshape(self.output_shape(arr.shape)) if arr.ndim > 1 else arr

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shape = _shape(input_shape)
        if len(shape) <= 1:
            return shape
        return (shape[0], int(np.prod(shape[1:], dtype=np.int64)))


# ----------------------------------------------------------------------------- Sequential


class SummaryRow(NamedTuple):
    layer: str          # e.g. "Conv2d-1"
    output_shape: Shape
    params: int
    macs: int


class Summary:
    """``Sequential.summary``'s result: ``rows`` (one ``SummaryRow`` per layer),
    ``totals`` (``params``, ``macs``, ``output_shape``) and ``str()`` the table."""

    def __init__(self, input_shape: Shape, rows: List[SummaryRow]) -> None:
        self.input_shape = input_shape
        self.rows = rows
        self.totals = {
            "params": sum(r.params for r in rows),
            "macs": sum(r.macs for r in rows),
            "output_shape": rows[-1].output_shape if rows else input_shape,
        }

    def __str__(self) -> str:
        header = ("Layer (type)", "Output Shape", "Param #", "MACs")
        body = [(r.layer, str(list(r.output_shape)), f"{r.params:,}", f"{r.macs:,}")
                for r in self.rows]
        widths = [max(len(row[i]) for row in [header] + body) + 2 for i in range(4)]
        widths[0] = max(widths[0], 20)

        def line(cells: Tuple[str, ...]) -> str:
            return (cells[0].ljust(widths[0]) + cells[1].ljust(widths[1])
                    + cells[2].rjust(widths[2]) + cells[3].rjust(widths[3]))

        rule = "=" * sum(widths)
        return "\n".join([
            f"Input shape: {list(self.input_shape)}", rule, line(header), rule,
            *(line(b) for b in body), rule,
            f"Total params: {self.totals['params']:,}",
            f"Total MACs: {self.totals['macs']:,}",
            f"Output shape: {list(self.totals['output_shape'])}", rule,
        ])

    def __repr__(self) -> str:
        return str(self)


class Sequential(Module):
    """Layers applied in order; iterable, indexable (a slice gives a Sequential), with
    ``summary(input_shape)``. An unbatched input (one ``(C, H, W)`` image for a stack
    starting with a conv) runs as a batch of one and comes back unbatched."""

    def __init__(self, *layers: Module) -> None:
        for i, layer in enumerate(layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {i} must be a convcore.layers.Module, "
                                f"got {type(layer).__name__}")
        self._layers = list(layers)

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            return Sequential(*self._layers[index])
        return self._layers[index]

    def parameters(self) -> List[np.ndarray]:
        return [p for layer in self._layers for p in layer.parameters()]

    def _unbatched(self, ndim: int) -> bool:
        """Whether an input of ``ndim`` dims is one unbatched input for the first layer
        that says how many dims it takes."""
        for layer in self._layers:
            if layer.input_ndim is not None:
                return ndim == layer.input_ndim
        return False

    def forward(self, x: Any) -> np.ndarray:
        arr = np.asarray(x)
        single = self._unbatched(arr.ndim)
        y = arr[None] if single else arr
        for layer in self._layers:
            y = layer(y)
        return y[0] if single else y

    def _shapes(self, input_shape: Sequence[int]) -> Tuple[Shape, List[Tuple[Shape, int]]]:
        """(the batched input shape, [(output shape, MACs)] per layer), batched."""
        shape = _shape(input_shape)
        batched = (1,) + shape if self._unbatched(len(shape)) else shape
        out, cur = [], batched
        for layer in self._layers:
            macs = layer.macs(cur)
            cur = layer.output_shape(cur)
            out.append((cur, macs))
        return batched, out

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shape = _shape(input_shape)
        _, per_layer = self._shapes(shape)
        last = per_layer[-1][0] if per_layer else shape
        return last[1:] if self._unbatched(len(shape)) and per_layer else last

    def macs(self, input_shape: Sequence[int]) -> int:
        return sum(m for _, m in self._shapes(input_shape)[1])

    def summary(self, input_shape: Sequence[int]) -> Summary:
        """A torchinfo-style table: per layer its output shape (with the batch dimension,
        1 for an unbatched input_shape), parameters and MACs, and the totals."""
        batched, per_layer = self._shapes(input_shape)
        rows = [SummaryRow(f"{type(layer).__name__}-{i + 1}", shape, layer.num_params, macs)
                for i, (layer, (shape, macs)) in enumerate(zip(self._layers, per_layer))]
        return Summary(batched, rows)

    def __repr__(self) -> str:
        if not self._layers:
            return "Sequential()"
        inner = "\n".join(f"  ({i}): {layer!r}" for i, layer in enumerate(self._layers))
        return f"Sequential(\n{inner}\n)"
