"""Layers shaped like their ``torch.nn`` namesakes, on NumPy arrays.

``Conv2d``, ``Dense`` (``torch.nn.Linear``), ``LocallyConnected2d``, the activations
``ReLU``, ``Sigmoid(a, b)``, ``Tanh``, ``Abs``, ``Square``, ``LeakyReLU``, the pools
``MaxPool2d`` / ``AvgPool2d``, ``Flatten``, ``Sequential``, and the losses
``CrossEntropyLoss`` and ``MSELoss``.

Every layer is callable on an array and has ``num_params``, ``output_shape(input_shape)``,
``macs(input_shape)`` (multiply-accumulates) and a PyTorch-like ``repr``. An
``input_shape`` is one input's shape (``(C, H, W)`` or ``(features,)``), with or without
a leading batch dimension; the answer keeps the batch dimension when it was given.

Parameters (``weight``, ``bias``) are NumPy arrays initialised as PyTorch does
(Kaiming-uniform with ``a = sqrt(5)``: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))`` for the
weight and the bias) from ``seed``, in ``dtype`` (float32 or float64), held by
``Parameter`` objects (``.data``, ``.grad``). Assigning ``layer.weight = w`` validates
(shape and dtype) and copies.

Training (as ``torch.nn``): a module starts in training mode (``.training``), where every
forward reads the parameters as they are (in-place edits included) and keeps what
``backward(grad_output)`` needs; ``backward`` returns dL/d(input) and adds into each
parameter's ``.grad``. ``eval()`` makes the parameters read-only and lets Conv2d and Dense
keep their weights packed, re-packed after any change. ``parameters()``,
``named_parameters()``, ``zero_grad()``, ``state_dict()`` and ``load_state_dict()`` use
PyTorch's names. ``CrossEntropyLoss`` and ``MSELoss`` are the criteria; the optimizers
are in ``convcore.optim``, a training loop in ``convcore.train``.

Activation layers double as the ``activation=`` argument of ``conv2d``, ``linear`` and the
layers: their ``activation_spec`` ``(name, a, b)`` is fused into the kernel's store.

Every layer and model pickles (configuration and weights; the packed operators are left
out and rebuilt on load), so it travels to Dask workers and ``multiprocessing`` pools.
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import math
from collections import OrderedDict
from typing import Any, Iterator, List, NamedTuple, Optional, Sequence, Tuple, Union

import numpy as np

from . import _core
from . import functional as F
from .functional import IntPair

__all__ = [
    "Abs", "AdaptiveAvgPool2d", "AvgPool2d", "BatchNorm2d", "Concat", "Conv2d",
    "CrossEntropyLoss", "Dense", "Dropout", "Flatten", "LeakyReLU", "LocallyConnected2d",
    "MSELoss", "MaxPool2d", "Module", "Parameter", "ReLU", "ReLU6", "Residual", "Sequential",
    "Sigmoid", "Softmax", "Square", "Summary", "SummaryRow", "Tanh",
]

Shape = Tuple[int, ...]
_NO_ACTIVATION = ("none", 1.0, 0.0)  # activation_spec(None)

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


# ----------------------------------------------------------------------------- Parameter

_versions = itertools.count(1)


class Parameter:
    """A trainable array and its gradient, as ``torch.nn.Parameter``.

    ``data`` is the layer's array itself (``layer.weight is param.data``): writable in
    training mode, read-only in eval mode. Assigning ``data`` validates shape and dtype and
    stores a private copy. ``grad`` is None until a backward pass adds into it, then an
    array of ``data``'s shape and dtype. The version (a fresh number from one global
    counter at every change made through the layer or an optimizer) tells a layer's packed
    weights that they are stale."""

    __slots__ = ("_data", "grad", "_version", "_readonly", "_layer", "_name")

    def __init__(self, data: np.ndarray, layer: str = "Parameter", name: str = "data") -> None:
        self._layer, self._name = layer, name
        self._readonly = False
        self.grad: Optional[np.ndarray] = None
        self._store(data)

    @property
    def data(self) -> np.ndarray:
        return self._data

    @data.setter
    def data(self, value: np.ndarray) -> None:
        self._store(_param(value, self._name, self._data.shape, self._data.dtype, self._layer))

    @property
    def shape(self) -> Shape:
        return self._data.shape

    @property
    def dtype(self) -> np.dtype:
        return self._data.dtype

    def _store(self, arr: np.ndarray) -> None:
        if not arr.flags.writeable:
            try:
                arr.flags.writeable = True
            except ValueError:  # a view of someone else's read-only memory
                arr = arr.copy()
        self._data = arr
        self._set_readonly(self._readonly)
        self._changed()

    def _changed(self) -> None:
        self._version = next(_versions)

    def _set_readonly(self, readonly: bool) -> None:
        self._readonly = readonly
        self._data.flags.writeable = not readonly

    def _writable(self) -> np.ndarray:
        """The array, writable for an optimizer step even in eval mode; the caller calls
        ``_set_readonly(self._readonly)`` and ``_changed()`` after writing."""
        self._data.flags.writeable = True
        return self._data

    def __getstate__(self) -> dict:
        return {"data": self._data, "grad": self.grad, "readonly": self._readonly,
                "layer": self._layer, "name": self._name}

    def __setstate__(self, state: dict) -> None:
        self._layer, self._name = state["layer"], state["name"]
        self._readonly = state["readonly"]
        # Unpickled arrays carry an equal but distinct dtype object: take NumPy's own.
        data, grad = state["data"], state["grad"]
        dtype = np.dtype(data.dtype.name)  # (np.array(x, dtype) would keep x's object)
        self.grad = None if grad is None else grad.astype(dtype, order="C", copy=True)
        self._store(data.astype(dtype, order="C", copy=True))

    def __repr__(self) -> str:
        return f"Parameter({self._layer}.{self._name}, shape={self._data.shape}, dtype={self._data.dtype})"


def _as_array(value: Any, key: str) -> np.ndarray:
    """A state_dict value (NumPy array, torch tensor, nested sequence) as an ndarray."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor, without torch
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype.kind not in "fiu":
        raise TypeError(f"load_state_dict: {key!r} must hold numbers, got dtype {arr.dtype}")
    return arr


# ----------------------------------------------------------------------------- Module


class Module:
    """Base class of every layer: callable, parameters, shapes, MACs, repr, training.

    Subclasses implement ``forward``, ``output_shape`` and, when they compute, ``macs``;
    ``input_ndim`` is the number of dimensions of one input (None: any). For training, a
    subclass keeps in ``self._saved`` (through ``_save``) what its ``backward`` needs when
    ``forward`` runs in training mode, and ``backward`` takes it back with ``_take_saved``;
    its parameters are registered with ``_set_param``, its sub-modules listed by
    ``_children``."""

    input_ndim: Optional[int] = None
    training: bool = True
    # Attributes holding packed ``_core`` operators: caches of the weights that ``_pack``
    # rebuilds (weight assignment calls it), left out when pickling.
    _packed: Tuple[str, ...] = ()

    def __call__(self, x: Any) -> np.ndarray:
        return self.forward(x)

    def _pack(self) -> None:
        """(Re)build the packed operators from the weights; nothing for most layers."""

    def __getstate__(self) -> dict:
        # Configuration and weights pickle; packed operators (C++ objects) do not.
        return {k: v for k, v in self.__dict__.items() if k not in self._packed}

    def __setstate__(self, state: dict) -> None:
        # Unpickled arrays may lie in unaligned buffers (pickle protocol 5, as Dask sends
        # them); the kernels want aligned ones.
        self.__dict__.update({k: np.require(v, requirements=["A"]) if isinstance(v, np.ndarray)
                              else v for k, v in state.items()})
        self._pack()

    def forward(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    @property
    def num_params(self) -> int:
        """Number of parameters (weights and biases)."""
        return int(sum(p.data.size for p in self.parameters()))

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

    # --------------------------------------------------------------- parameters and state

    def _own_params(self) -> "OrderedDict[str, Parameter]":
        return self.__dict__.get("_params") or OrderedDict()

    def _set_param(self, name: str, value: Optional[np.ndarray]) -> None:
        """Register, replace (keeping the Parameter object, so an optimizer holding it
        stays bound) or, with None, remove parameter ``name``; ``value`` is validated."""
        params = self.__dict__.setdefault("_params", OrderedDict())
        if value is None:
            params.pop(name, None)
        elif name in params:
            params[name]._store(value)
        else:
            params[name] = Parameter(value, type(self).__name__, name)
            params[name]._set_readonly(not self.training)

    def _params_version(self) -> Tuple[int, ...]:
        """Changes whenever a parameter does (through the layer or an optimizer): the key of
        packed weights."""
        return tuple(p._version for p in self._own_params().values())

    def _children(self) -> List[Tuple[str, "Module"]]:
        """(name, sub-module) pairs; the names prefix the parameter names."""
        return []

    def named_parameters(self, prefix: str = "") -> Iterator[Tuple[str, Parameter]]:
        """``(name, Parameter)`` pairs with PyTorch's ``state_dict`` names ("weight",
        "0.bias", ...); a Parameter shared by two layers is listed once."""
        seen: set = set()
        for name, p in self._named_parameters(prefix):
            if id(p) not in seen:
                seen.add(id(p))
                yield name, p

    def _named_parameters(self, prefix: str) -> Iterator[Tuple[str, Parameter]]:
        for name, p in self._own_params().items():
            yield prefix + name, p
        for cname, child in self._children():
            yield from child._named_parameters(f"{prefix}{cname}.")

    def parameters(self) -> List[Parameter]:
        """The ``Parameter`` objects, in ``named_parameters`` order."""
        return [p for _, p in self.named_parameters()]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Every parameter's ``grad`` to None (PyTorch's default), or to zeros."""
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                p.grad.fill(0)

    def _own_buffers(self) -> "OrderedDict[str, np.ndarray]":
        return self.__dict__.get("_buffers") or OrderedDict()

    def _set_buffer(self, name: str, value: np.ndarray) -> None:
        """Register or replace buffer ``name``: state that is saved and loaded but not
        trained (BatchNorm2d's running statistics)."""
        self.__dict__.setdefault("_buffers", OrderedDict())[name] = value

    def _named_state(self, prefix: str) -> Iterator[Tuple[str, "Module", str, bool]]:
        """(key, module, name, is_parameter) in PyTorch's ``state_dict`` order: a module's
        parameters, then its buffers, then its sub-modules'."""
        for name in self._own_params():
            yield prefix + name, self, name, True
        for name in self._own_buffers():
            yield prefix + name, self, name, False
        for cname, child in self._children():
            yield from child._named_state(f"{prefix}{cname}.")

    def named_buffers(self, prefix: str = "") -> Iterator[Tuple[str, np.ndarray]]:
        """``(name, array)`` pairs of the buffers (BatchNorm2d's ``running_mean``,
        ``running_var``, ``num_batches_tracked``) with PyTorch's ``state_dict`` names; the
        arrays are the module's own."""
        for key, module, name, is_param in self._named_state(prefix):
            if not is_param:
                yield key, module._own_buffers()[name]

    def state_dict(self) -> "OrderedDict[str, np.ndarray]":
        """name -> a copy of each parameter's and buffer's array (PyTorch ``state_dict``
        names and order)."""
        out: "OrderedDict[str, np.ndarray]" = OrderedDict()
        seen: set = set()
        for key, module, name, is_param in self._named_state(""):
            value = module._own_params()[name] if is_param else module._own_buffers()[name]
            if is_param:
                if id(value) in seen:
                    continue
                seen.add(id(value))
                value = value.data
            out[key] = value.copy()
        return out

    def load_state_dict(self, state_dict: Any) -> None:
        """Set every parameter and buffer from ``state_dict`` (this model's, or the
        same-shaped ``torch.nn`` model's: tensors or arrays, converted to the layer's dtype).
        A missing, unexpected or wrongly shaped key raises ValueError naming it, before
        anything is changed. BatchNorm2d's ``num_batches_tracked`` may be missing (as in
        checkpoints from before PyTorch 0.4.1): it is then left as it is."""
        if not hasattr(state_dict, "keys") or not hasattr(state_dict, "__getitem__"):
            raise TypeError(f"load_state_dict: expected a mapping of names to arrays, got "
                            f"{type(state_dict).__name__}")
        entries = OrderedDict()
        for key, module, name, is_param in self._named_state(""):
            entries.setdefault(key, (module, name, is_param))
        missing = [k for k, (_, name, _p) in entries.items()
                   if k not in state_dict and name != "num_batches_tracked"]
        if missing:
            raise ValueError(f"load_state_dict: missing key(s) {missing} for {type(self).__name__}")
        unexpected = [k for k in state_dict.keys() if k not in entries]
        if unexpected:
            raise ValueError(f"load_state_dict: unexpected key(s) {unexpected} for "
                             f"{type(self).__name__} (its keys: {list(entries)})")
        values = {}
        for key, (module, name, is_param) in entries.items():
            if key not in state_dict:
                continue
            current = module._own_params()[name].data if is_param else module._own_buffers()[name]
            arr = _as_array(state_dict[key], key)
            if arr.shape != current.shape:
                raise ValueError(f"load_state_dict: {key!r} has shape {arr.shape}, "
                                 f"expected {current.shape}")
            values[key] = np.array(arr, dtype=current.dtype, order="C", copy=True)
        for key, value in values.items():
            module, name, is_param = entries[key]
            if is_param:
                module._own_params()[name]._store(value)
            else:
                module._set_buffer(name, value)

    # --------------------------------------------------------------- training

    def train(self, mode: bool = True) -> "Module":
        """Training mode (``mode=True``, the default state) or eval mode, for this module and
        every sub-module; returns self. In training mode a forward keeps what ``backward``
        needs and reads the parameters as they are; in eval mode the parameters are
        read-only and packed weights are cached (re-packed after any change)."""
        mode = _bool(mode, "mode")
        self.training = mode
        for p in self._own_params().values():
            p._set_readonly(not mode)
            if not mode:
                p._changed()  # in-place edits made in training mode: re-pack
        if not mode:
            self._forget()
        for _, child in self._children():
            child.train(mode)
        return self

    def _forget(self) -> None:
        """Drop what the last training-mode forward kept (here and in sub-modules)."""
        self.__dict__.pop("_saved", None)
        for _, child in self._children():
            child._forget()

    def eval(self) -> "Module":
        """``train(False)``."""
        return self.train(False)

    def fuse(self) -> "Module":
        """A new eval-mode model computing what this one computes in eval mode, with each
        ``BatchNorm2d`` that follows a ``Conv2d`` folded into its weights and bias
        (``w * scale``, ``(b - running_mean) * scale + bias`` with ``scale = weight /
        sqrt(running_var + eps)``) and each activation layer that follows a ``Conv2d`` or
        ``Dense`` (after the folding) fused into its store (a ``ReLU6``: ReLU in the store,
        the clip at 6 in place in the convolution's fresh output). This model is not
        changed; pass a trained model, whose running statistics are what is folded.

        The result keeps the names of what remains (a folded convolution keeps its own,
        with a ``bias`` key added), so its ``state_dict`` is not the original's. A
        BatchNorm2d without running statistics, or after anything but a convolution
        without an activation, stays as it is."""
        return self._fused().eval()

    def _fused(self) -> "Module":
        """The fused copy of this module (see ``fuse``); containers fuse their children."""
        new = copy.deepcopy(self)
        new._forget()
        return new

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        """dL/d(input) from dL/d(output) of the last training-mode forward, adding each
        parameter's gradient into its ``grad`` (as PyTorch accumulates). With
        ``input_grad=False`` dL/d(input) is not computed and None is returned (the first
        layer of a network, whose input needs no gradient, as a tensor without
        ``requires_grad`` in PyTorch)."""
        raise NotImplementedError(f"{type(self).__name__}.backward")

    def _save(self, *saved: Any) -> None:
        if self.training:
            self._saved = saved

    def _take_saved(self) -> Tuple[Any, ...]:
        name = type(self).__name__
        if not self.training:
            raise RuntimeError(f"{name}.backward: the layer is in eval mode; call train() "
                               "and run a forward before backward")
        saved = self.__dict__.pop("_saved", None)
        if saved is None:
            raise RuntimeError(f"{name}.backward: no training-mode forward to differentiate "
                               "(run the layer on an input first; each forward allows one backward)")
        return saved

    def _grad_output(self, grad_output: Any, shape: Shape, dtype: np.dtype) -> np.ndarray:
        """grad_output checked against the forward output's shape and dtype."""
        name = type(self).__name__
        g = F._float_array(grad_output, "grad_output")
        if g.shape != tuple(shape):
            raise ValueError(f"{name}.backward: grad_output must have the forward output's shape "
                             f"{tuple(shape)}, got {g.shape}")
        if g.dtype != dtype:
            raise TypeError(f"{name}.backward: grad_output has dtype {g.dtype}, the forward "
                            f"output {dtype}")
        return g

    def _accumulate(self, name: str, grad: Optional[np.ndarray]) -> None:
        """Add ``grad`` (a fresh array) into parameter ``name``'s ``.grad``."""
        if grad is None:
            return
        p = self._own_params()[name]
        if p.grad is None:
            p.grad = grad
        else:
            np.add(p.grad, grad, out=p.grad)


def _input(layer: Module, x: Any, dtype: Optional[np.dtype]) -> Tuple[np.ndarray, bool]:
    """The input as a batched float array of the layer's dtype (TypeError otherwise) and
    whether it had a batch dimension."""
    name = type(layer).__name__
    arr = F._float_array(x, "input", np.float64 if dtype is None else dtype)
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
        y = F._activate(x, self._name, self._a, self._b)
        self._save(np.asarray(x, dtype=y.dtype), y.dtype)
        return y

    # training: the gradient needs the input (the pre-activation)
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        x, dtype = self._take_saved()
        g = self._grad_output(grad_output, x.shape, dtype)
        return F._activation_backward(self.activation_spec, g, x) if input_grad else None


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
    """``|x|``, element-wise."""

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


# ----------------------------------------------------------------------------- weighted layers


class _Weighted(Module):
    """A layer with a ``weight`` and an optional ``bias`` Parameter and a fused
    ``activation`` (Dense, Conv2d, LocallyConnected2d): the properties, their validated
    assignment, and the activation's part of training."""

    dtype: np.dtype
    activation: Any
    _spec: Tuple[str, float, float]

    def _weight_shape(self) -> Shape:
        raise NotImplementedError

    def _bias_shape(self) -> Shape:
        raise NotImplementedError

    @property
    def _weight(self) -> np.ndarray:
        return self._own_params()["weight"].data

    @property
    def _bias(self) -> Optional[np.ndarray]:
        p = self._own_params().get("bias")
        return None if p is None else p.data

    def _set_weights(self, weight: np.ndarray, bias: Optional[np.ndarray],
                     copy: bool = True) -> None:
        name = type(self).__name__
        self._set_param("weight", _param(weight, "weight", self._weight_shape(), self.dtype,
                                         name, copy))
        self._set_param("bias", None if bias is None else _param(
            bias, "bias", self._bias_shape(), self.dtype, name, copy))

    @property
    def weight(self) -> np.ndarray:
        return self._weight

    @weight.setter
    def weight(self, value: np.ndarray) -> None:
        self._set_param("weight", _param(value, "weight", self._weight_shape(), self.dtype,
                                         type(self).__name__))

    @property
    def bias(self) -> Optional[np.ndarray]:
        return self._bias

    @bias.setter
    def bias(self, value: Optional[np.ndarray]) -> None:
        name = type(self).__name__
        self._set_param("bias", None if value is None else _param(
            value, "bias", self._bias_shape(), self.dtype, name))

    # training: the activation. ReLU stays fused: its gradient at the output equals the one
    # at the pre-activation (both are > 0 at the same places, as PyTorch's relu backward
    # reads its result). Any other activation runs after the linear part, whose output
    # (the pre-activation) backward needs.

    def _train_forward(self, linear: Any) -> Tuple[np.ndarray, np.ndarray]:
        """(output, what backward differentiates the activation at); ``linear(activation)``
        computes the layer with that activation fused."""
        if self._spec[0] in ("none", "relu"):
            y = linear(self.activation)
            return y, y
        z = linear(None)
        return F._activate(z, *self._spec), z

    def _activation_backward(self, grad: np.ndarray, z: np.ndarray) -> np.ndarray:
        # grad has z's shape and dtype (checked against the output's by _grad_output)
        if self._spec[0] == "none":
            return grad
        return F._activation_backward(self._spec, grad, z)

    def _output_mask(self, input_grad: bool) -> Tuple[bool, bool, bool]:
        return (bool(input_grad), True, self._bias is not None)

    def _accumulate_weights(self, grad_weight: np.ndarray, grad_bias: Optional[np.ndarray]) -> None:
        self._accumulate("weight", grad_weight)
        self._accumulate("bias", grad_bias)


# ----------------------------------------------------------------------------- Dense


class Dense(_Weighted):
    """Fully connected layer, as ``torch.nn.Linear``: ``y = activation(x @ weight.T + bias)``.

    weight ``(out_features, in_features)``, bias ``(out_features,)``; input
    ``(..., in_features)``. In eval mode the weights are packed once (``_core.LinearOp``)
    and re-packed after they change; in training mode each call reads them as they are.

    Parameters
    ----------
    in_features, out_features : int
        Sizes (>= 1).
    bias : bool
        Whether the layer has a bias.
    activation : None, str or object
        As :class:`Conv2d`'s.
    dtype, seed
        As :class:`Conv2d`'s.

    Raises
    ------
    TypeError, ValueError
        As :class:`Conv2d`: bad sizes, dtype or activation; an input of another dtype
        or whose last dimension is not ``in_features``.

    Examples
    --------
    >>> from convcore.layers import Dense
    >>> fc = Dense(256, 10, seed=0)
    >>> fc.num_params, fc.macs((256,))
    (2570, 2560)
    >>> fc(np.ones((4, 256), np.float32)).shape
    (4, 10)
    """

    input_ndim = 1
    _packed = ("_op",)

    def __init__(self, in_features: int, out_features: int, bias: bool = True,
                 activation: Any = None, *, dtype: Any = np.float32, seed: Optional[int] = None):
        self._configure(in_features, out_features, activation, dtype)
        rng = np.random.default_rng(_seed(seed))
        w = _uniform(rng, self._weight_shape(), self.in_features, self.dtype)
        b = _uniform(rng, self._bias_shape(), self.in_features, self.dtype) \
            if _bool(bias, "bias") else None
        self._set_weights(w, b, copy=False)

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
        layer._set_weights(w, bias, copy)
        return layer

    def _weight_shape(self) -> Shape:
        return (self.out_features, self.in_features)

    def _bias_shape(self) -> Shape:
        return (self.out_features,)

    def _linear_op(self) -> Any:
        """The LinearOp of the current weights (eval mode); ``_op`` holds it with the
        parameters' versions it was packed from."""
        key = self._params_version()
        cached = self.__dict__.get("_op")
        if cached is None or cached[0] != key:
            cached = self._op = (key, _core.LinearOp(self._weight, self._bias, *self._spec))
        return cached[1]

    def forward(self, x: Any) -> np.ndarray:
        arr = F._float_array(x, "input", self.dtype)
        if arr.dtype != self.dtype:
            raise TypeError(f"Dense: input has dtype {arr.dtype} but the layer's parameters are {self.dtype}")
        if arr.ndim < 1 or arr.shape[-1] != self.in_features:
            raise ValueError(
                f"Dense: input must be (..., {self.in_features}), got shape {arr.shape}")
        lead = arr.shape[:-1]
        m = int(np.prod(lead, dtype=np.int64))
        x2 = arr.reshape(m, self.in_features)
        if self.training:
            y2, z2 = self._train_forward(
                lambda act: F.linear(x2, self._weight, self._bias, activation=act))
            self._save(x2, z2, lead)
            return y2.reshape(lead + (self.out_features,))
        y = _core.empty(lead + (self.out_features,), np.dtype(self.dtype))
        if m:
            self._linear_op().run(F._contiguous(x2), y.reshape(m, self.out_features))
        return y

    # training
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        x2, z2, lead = self._take_saved()
        g = self._grad_output(grad_output, lead + (self.out_features,), self.dtype)
        g2 = self._activation_backward(g.reshape(z2.shape), z2)
        w = self._weight
        want_x, _, want_b = self._output_mask(input_grad)
        gx = _core.empty(x2.shape, self.dtype) if want_x else None
        gw = _core.empty(w.shape, self.dtype)
        gb = _core.empty((self.out_features,), self.dtype) if want_b else None
        F._linear_backward_run(g2, x2, w, gx, gw, gb)
        self._accumulate_weights(gw, gb)
        return None if gx is None else gx.reshape(lead + (self.in_features,))

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


class Conv2d(_Weighted):
    """2D convolution layer, as ``torch.nn.Conv2d`` (plus a fused ``activation``).

    weight ``(out_channels, in_channels/groups, R, S)``, bias ``(out_channels,)``; input
    ``(N, C, H, W)`` or ``(C, H, W)``. Parameters: ``K*C/groups*R*S + K`` whatever the
    image size.

    Parameters
    ----------
    in_channels, out_channels : int
        C and K (>= 1).
    kernel_size : int or (int, int)
        R x S.
    stride, padding, dilation, groups
        As :func:`convcore.conv2d` (``padding`` may be ``"same"`` or ``"valid"``).
    bias : bool
        Whether the layer has a bias.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        As ``torch.nn.Conv2d``'s.
    activation : None, {"relu", "sigmoid", "tanh", "abs", "square", "leaky_relu"} or object
        Fused into the output store (an activation layer such as ``Sigmoid(a, b)``
        passes its parameters).
    dtype : float32 or float64
        The parameters' dtype; inputs must have it (array-likes that are not arrays
        are converted to it).
    seed : int, optional
        Seeds the initialisation (PyTorch's: ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``).

    Raises
    ------
    TypeError
        Non-integer sizes, a dtype other than float32/float64, a non-bool ``bias``;
        calling it on an input of another dtype.
    ValueError
        Sizes < 1, groups not dividing the channels, an unknown ``padding_mode`` or
        activation; calling it on an input with the wrong channels or smaller than the
        kernel.

    Examples
    --------
    >>> from convcore.layers import Conv2d
    >>> conv = Conv2d(3, 16, 3, padding=1, activation="relu", seed=0)
    >>> conv
    Conv2d(3, 16, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1), activation='relu')
    >>> conv.num_params, conv.output_shape((3, 32, 32)), conv.macs((3, 32, 32))
    (448, (16, 32, 32), 442368)
    >>> conv(np.zeros((2, 3, 32, 32), np.float32)).shape
    (2, 16, 32, 32)

    Packing (eval mode): the weights are packed by a ``_core.Conv2dOp``, which is built for
    one input size (C, H, W). The layer keeps one op per input size it has seen (the last
    ``max_cached_shapes``), so a call never re-packs; any change of ``weight`` or ``bias``
    (assignment, an optimizer step, edits made in training mode) drops them all, and the
    next call of each size packs once. In training mode each call reads the weights as
    they are (``conv2d`` packs per call) and keeps what ``backward`` needs.
    """

    input_ndim = 3
    max_cached_shapes = 8
    _packed = ("_ops",)

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
        w = _uniform(rng, self._weight_shape(), fan_in, self.dtype)
        b = _uniform(rng, self._bias_shape(), fan_in, self.dtype) if _bool(bias, "bias") else None
        self._set_weights(w, b, copy=False)
        self._pack()

    def _pack(self) -> None:
        # Ops are packed per input size on first use (eval mode); a change of the
        # parameters drops them all.
        self._ops: "OrderedDict[Shape, Any]" = OrderedDict()
        self._ops_key: Tuple[int, ...] = ()

    def _weight_shape(self) -> Shape:
        return (self.out_channels, self.in_channels // self.groups) + self.kernel_size

    def _bias_shape(self) -> Shape:
        return (self.out_channels,)

    def _op(self, chw: Shape) -> Any:
        """The Conv2dOp of the current weights for inputs of ``chw`` (eval mode)."""
        key = self._params_version()
        if key != self._ops_key:
            self._ops.clear()
            self._ops_key = key
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
        if self.training:
            y, z = self._train_forward(lambda act: self._train_conv(x4, (n, k, ho, wo), act))
            self._save(x4, z, batched)
        else:
            y = _core.empty((n, k, ho, wo), np.dtype(self.dtype))
            if n:
                self._op((c, h, w)).run(F._contiguous(x4), y)
        return y if batched else y[0]

    # training: the functional calls on the geometry converted at construction (the
    # argument conversion cost more than a small layer's arithmetic)
    def _train_conv(self, x4: np.ndarray, shape4: Shape, activation: Any) -> np.ndarray:
        y = _core.empty(shape4, self.dtype)
        if shape4[0]:
            spec = _NO_ACTIVATION if activation is None else self._spec
            F._conv2d_run(x4, self._weight, self._bias, y, self.stride, self._pads,
                          self.dilation, self.groups, self.padding_mode, spec, "auto")
        return y

    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        x4, z, batched = self._take_saved()
        g = self._grad_output(grad_output, z.shape if batched else z.shape[1:], self.dtype)
        g4 = self._activation_backward(g if batched else g[None], z)
        w = self._weight
        want_x, _, want_b = self._output_mask(input_grad)
        gx = _core.empty(x4.shape, self.dtype) if want_x else None
        gw = _core.empty(w.shape, self.dtype)
        gb = _core.empty((w.shape[0],), self.dtype) if want_b else None
        F._conv2d_backward_run(g4, x4, w, gx, gw, gb, self.stride, self._pads, self.dilation,
                               self.groups, self.padding_mode)
        self._accumulate_weights(gw, gb)
        return gx if gx is None or batched else gx[0]

    def _out_chw(self, chw: Shape) -> Shape:
        c, h, w = chw
        if c != self.in_channels:
            raise ValueError(f"Conv2d: input has {c} channels, expected {self.in_channels}")
        _, k, ho, wo = F._conv_output_shape((1, c, h, w), tuple(self._weight_shape()),
                                            tuple(self.stride), tuple(self._pads),
                                            tuple(self.dilation), self.groups, self.padding_mode)
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


class LocallyConnected2d(_Weighted):
    """Locally connected layer: a convolution whose filters are not shared — one filter bank
    per output position (local connectivity without weight sharing).

    weight ``(Ho, Wo, K, C, R, S)``, bias ``(K, Ho, Wo)``; input ``(N, C, H, W)`` or
    ``(C, H, W)`` with ``(H, W) == input_size``. Parameters: ``Ho*Wo*(C*R*S*K + K)``, growing
    with the image. The kernel reads the weights as stored, so there is nothing to pack.

    Parameters
    ----------
    in_channels, out_channels : int
        C and K.
    input_size : int or (int, int)
        (H, W) of the inputs: the layer holds weights for one output size.
    kernel_size, stride, padding, dilation, bias, activation, dtype, seed
        As :class:`Conv2d`'s (zero padding only, no groups).

    Raises
    ------
    TypeError, ValueError
        As :class:`Conv2d`; calling it on an input of another size than ``input_size``.

    Examples
    --------
    >>> from convcore.layers import LocallyConnected2d
    >>> lc = LocallyConnected2d(3, 16, (32, 32), 3, padding=1, seed=0)
    >>> lc.num_params                        # 32*32 positions x (16*3*3*3 + 16)
    458752
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
        w = _uniform(rng, self._weight_shape(), fan_in, self.dtype)
        b = _uniform(rng, self._bias_shape(), fan_in, self.dtype) if _bool(bias, "bias") else None
        self._set_weights(w, b, copy=False)

    def _weight_shape(self) -> Shape:
        return self.output_size + (self.out_channels, self.in_channels) + self.kernel_size

    def _bias_shape(self) -> Shape:
        return (self.out_channels,) + self.output_size

    def forward(self, x: Any) -> np.ndarray:
        x4, batched = _input(self, x, self.dtype)
        self._check_chw(x4.shape[1:])
        if self.training:
            y, z = self._train_forward(lambda act: F.locally_connected2d(
                x4, self._weight, self._bias, self.stride, self.padding, self.dilation,
                activation=act))
            self._save(x4, z, batched)
        else:
            y = F.locally_connected2d(x4, self._weight, self._bias, self.stride, self.padding,
                                      self.dilation, activation=self.activation)
        return y if batched else y[0]

    # training
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        x4, z, batched = self._take_saved()
        g = self._grad_output(grad_output, z.shape if batched else z.shape[1:], self.dtype)
        g4 = self._activation_backward(g if batched else g[None], z)
        gx, gw, gb = F.locally_connected2d_backward(g4, x4, self._weight, self.stride,
                                                    self.padding, self.dilation,
                                                    output_mask=self._output_mask(input_grad))
        self._accumulate_weights(gw, gb)
        return gx if gx is None or batched else gx[0]


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

    def forward(self, x: Any) -> np.ndarray:
        y = self._pool(x)
        self._save(np.asarray(x), y.shape, y.dtype)
        return y

    def _pool(self, x: Any) -> np.ndarray:
        raise NotImplementedError

    # training: the gradient needs the input (which window element was the maximum; the
    # window's size when padding is not counted)
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        x, shape, dtype = self._take_saved()
        g = self._grad_output(grad_output, shape, dtype)
        return self._pool_backward(g, x) if input_grad else None

    def _pool_backward(self, grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class MaxPool2d(_Pool2d):
    """2D max pooling, as ``torch.nn.MaxPool2d`` (stride defaults to kernel_size; NaN in a
    window gives NaN)."""

    def __init__(self, kernel_size: IntPair, stride: Optional[IntPair] = None,
                 padding: IntPair = 0, dilation: IntPair = 1, ceil_mode: bool = False) -> None:
        super().__init__(kernel_size, stride, padding, dilation, ceil_mode)

    def _pool(self, x: Any) -> np.ndarray:
        return F._max_pool2d(x, self._k, self._s, self._p, self._d, self.ceil_mode)

    def _pool_backward(self, grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
        return F._max_pool2d_backward(grad_output, x, self._k, self._s, self._p, self._d,
                                      self.ceil_mode)

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

    def _pool(self, x: Any) -> np.ndarray:
        return F._avg_pool2d(x, self._k, self._s, self._p, self.ceil_mode, self.count_include_pad)

    def _pool_backward(self, grad_output: np.ndarray, x: np.ndarray) -> np.ndarray:
        return F._avg_pool2d_backward(grad_output, x, self._k, self._s, self._p, self.ceil_mode,
                                      self.count_include_pad)

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
        y = arr.reshape(self.output_shape(arr.shape)) if arr.ndim > 1 else arr
        self._save(arr.shape, y.shape, arr.dtype)
        return y

    # training
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        in_shape, out_shape, dtype = self._take_saved()
        g = self._grad_output(grad_output, out_shape, dtype)
        return g.reshape(in_shape) if input_grad else None

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shape = _shape(input_shape)
        if len(shape) <= 1:
            return shape
        return (shape[0], int(np.prod(shape[1:], dtype=np.int64)))


# ----------------------------------------------------------------------------- whole networks


def _channels_of(layer: Module, arr: np.ndarray, channels: int) -> None:
    if arr.shape[1] != channels:
        raise ValueError(f"{type(layer).__name__}: input {arr.shape} has {arr.shape[1]} "
                         f"channels, expected {channels}")


class BatchNorm2d(Module):
    """Batch normalisation over (N, H, W) per channel, as ``torch.nn.BatchNorm2d``:
    ``y = (x - mean) / sqrt(var + eps) * weight + bias``.

    In training mode the batch's statistics normalise (the biased variance) and update
    the running ones: ``running = (1 - momentum) * running + momentum * batch`` (the
    unbiased variance; ``momentum=None`` is the cumulative average over
    ``num_batches_tracked`` batches). In eval mode the running statistics normalise
    (batch ones when ``track_running_stats=False``). ``Module.fuse`` folds an eval-mode
    BatchNorm2d into the convolution before it.

    Parameters
    ----------
    num_features : int
        The channels C of an ``(N, C, H, W)`` input (``(C, H, W)`` is a batch of one).
    eps : float
        Added to the variance (> 0).
    momentum : float in [0, 1] or None
        Weight of the batch statistics in the running ones; None: cumulative average.
    affine : bool
        Whether there are ``weight`` (ones) and ``bias`` (zeros) Parameters.
    track_running_stats : bool
        Whether there are the buffers ``running_mean`` (zeros), ``running_var`` (ones)
        and ``num_batches_tracked`` (int64 0), used in eval mode.
    dtype : float32 or float64
        Of the parameters, the buffers and the inputs.

    Raises
    ------
    TypeError, ValueError
        Bad arguments; an input of another dtype or channel count; a training-mode batch
        with one value per channel (its variance is undefined, as PyTorch says).

    Examples
    --------
    >>> from convcore.layers import BatchNorm2d
    >>> bn = BatchNorm2d(4)
    >>> list(bn.state_dict())
    ['weight', 'bias', 'running_mean', 'running_var', 'num_batches_tracked']
    >>> y = bn(np.arange(32, dtype=np.float32).reshape(2, 4, 2, 2))
    >>> bool(abs(y.mean()) < 1e-6), int(bn.num_batches_tracked)
    (True, 1)
    """

    input_ndim = 3

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: Optional[float] = 0.1,
                 affine: bool = True, track_running_stats: bool = True, *,
                 dtype: Any = np.float32) -> None:
        self.num_features = F._int_param(num_features, "num_features", 1)
        self.eps = F._float_param(eps, "eps")
        if not self.eps > 0:
            raise ValueError(f"BatchNorm2d: eps must be > 0, got {eps}")
        if momentum is not None:
            momentum = F._float_param(momentum, "momentum")
            if not 0.0 <= momentum <= 1.0:
                raise ValueError(f"BatchNorm2d: momentum must be in [0, 1] or None, got {momentum}")
        self.momentum = momentum
        self.affine = _bool(affine, "affine")
        self.track_running_stats = _bool(track_running_stats, "track_running_stats")
        self.dtype = _dtype(dtype)
        c = self.num_features
        if self.affine:
            self._set_param("weight", np.ones(c, self.dtype))
            self._set_param("bias", np.zeros(c, self.dtype))
        if self.track_running_stats:
            self._set_buffer("running_mean", np.zeros(c, self.dtype))
            self._set_buffer("running_var", np.ones(c, self.dtype))
            self._set_buffer("num_batches_tracked", np.zeros((), np.int64))

    def _param_or_none(self, name: str) -> Optional[np.ndarray]:
        p = self._own_params().get(name)
        return None if p is None else p.data

    def _assign_param(self, name: str, value: np.ndarray) -> None:
        if name not in self._own_params():
            raise AttributeError(f"BatchNorm2d: affine=False has no {name}")
        self._set_param(name, _param(value, name, (self.num_features,), self.dtype, "BatchNorm2d"))

    def _assign_buffer(self, name: str, value: np.ndarray) -> None:
        if name not in self._own_buffers():
            raise AttributeError(f"BatchNorm2d: track_running_stats=False has no {name}")
        self._set_buffer(name, _param(value, name, (self.num_features,), self.dtype, "BatchNorm2d"))

    weight = property(lambda self: self._param_or_none("weight"),
                      lambda self, v: self._assign_param("weight", v),
                      doc="``(C,)`` scale (None when ``affine=False``).")
    bias = property(lambda self: self._param_or_none("bias"),
                    lambda self, v: self._assign_param("bias", v),
                    doc="``(C,)`` shift (None when ``affine=False``).")
    running_mean = property(lambda self: self._own_buffers().get("running_mean"),
                            lambda self, v: self._assign_buffer("running_mean", v),
                            doc="``(C,)`` running mean (None without running statistics).")
    running_var = property(lambda self: self._own_buffers().get("running_var"),
                           lambda self, v: self._assign_buffer("running_var", v),
                           doc="``(C,)`` running variance (None without running statistics).")
    num_batches_tracked = property(lambda self: self._own_buffers().get("num_batches_tracked"),
                                   doc="Training-mode batches seen (an int64 0-d array).")

    def scale_shift(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(scale, shift)`` in float64 with ``y = x * scale + shift`` in eval mode:
        ``scale = weight / sqrt(running_var + eps)``, ``shift = bias - running_mean * scale``
        (what folding into a convolution multiplies and adds). Needs running statistics."""
        if not self.track_running_stats:
            raise ValueError("BatchNorm2d.scale_shift: track_running_stats=False normalises "
                             "with each batch's statistics; there is no fixed scale")
        w, b = self.weight, self.bias
        scale = 1.0 / np.sqrt(self.running_var.astype(np.float64) + self.eps)
        if w is not None:
            scale = scale * w
        shift = -self.running_mean * scale
        if b is not None:
            shift = shift + b
        return scale, shift

    def forward(self, x: Any) -> np.ndarray:
        x4, batched = _input(self, x, self.dtype)
        _channels_of(self, x4, self.num_features)
        if not self.training and self.track_running_stats:
            # PyTorch's inference form: x * alpha + beta, alpha and beta per channel
            scale, shift = self.scale_shift()
            y = x4 * scale.astype(self.dtype)[:, None, None]
            y += shift.astype(self.dtype)[:, None, None]
            return y if batched else y[0]
        n, c, h, w = x4.shape
        m = n * h * w
        if self.training and m <= 1:
            raise ValueError(f"BatchNorm2d: expected more than 1 value per channel when "
                             f"training, got input of shape {x4.shape}")
        mean = x4.mean(axis=(0, 2, 3), dtype=np.float64)
        xc = x4 - mean.astype(self.dtype)[:, None, None]
        var = np.square(xc, dtype=np.float64).mean(axis=(0, 2, 3))
        invstd = 1.0 / np.sqrt(var + self.eps)
        xhat = xc
        xhat *= invstd.astype(self.dtype)[:, None, None]
        y = xhat.copy() if self.training else xhat
        if self.affine:
            y *= self.weight[:, None, None]
            y += self.bias[:, None, None]
        if self.training and self.track_running_stats:
            tracked = self._own_buffers()["num_batches_tracked"] + 1
            self._set_buffer("num_batches_tracked", np.asarray(tracked, np.int64))
            f = self.momentum if self.momentum is not None else 1.0 / float(tracked)
            unbiased = var * (m / (m - 1))
            new_mean = (1 - f) * self.running_mean + f * mean
            new_var = (1 - f) * self.running_var + f * unbiased
            self._set_buffer("running_mean", new_mean.astype(self.dtype))
            self._set_buffer("running_var", new_var.astype(self.dtype))
        self._save(xhat, invstd, batched)
        return y if batched else y[0]

    # training: dx = weight * invstd / m * (m * g - sum(g) - xhat * sum(g * xhat))
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        xhat, invstd, batched = self._take_saved()
        g = self._grad_output(grad_output, xhat.shape if batched else xhat.shape[1:], self.dtype)
        g4 = g if batched else g[None]
        m = xhat.shape[0] * xhat.shape[2] * xhat.shape[3]
        sum_g = g4.sum(axis=(0, 2, 3), dtype=np.float64)
        sum_gx = np.einsum("nchw,nchw->c", g4, xhat, dtype=np.float64)
        if self.affine:
            self._accumulate("weight", sum_gx.astype(self.dtype))
            self._accumulate("bias", sum_g.astype(self.dtype))
        if not input_grad:
            return None
        gamma = self.weight if self.affine else 1.0
        gx = xhat * (sum_gx / m).astype(self.dtype)[:, None, None]
        np.subtract(g4, gx, out=gx)
        gx -= (sum_g / m).astype(self.dtype)[:, None, None]
        gx *= (gamma * invstd).astype(self.dtype)[:, None, None]
        return gx if batched else gx[0]

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        batch, chw = _split_batch(input_shape, 3, "BatchNorm2d", "(C, H, W)")
        if chw[0] != self.num_features:
            raise ValueError(f"BatchNorm2d: input_shape has {chw[0]} channels, expected "
                             f"{self.num_features}")
        return _join_batch(batch, chw)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps:g}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class Dropout(Module):
    """Zeroes each element with probability ``p`` in training mode and scales the others by
    ``1/(1-p)``, as ``torch.nn.Dropout``; the identity in eval mode (the input itself is
    returned). The masks come from a NumPy generator seeded by ``seed`` (None: fresh
    entropy), so a seeded model draws the same masks on every run.

    Parameters
    ----------
    p : float in [0, 1]
        The probability of an element being zeroed.
    seed : int, optional
        Seeds the generator of the masks.

    Examples
    --------
    >>> from convcore.layers import Dropout
    >>> d = Dropout(0.5, seed=0)
    >>> y = d(np.ones((2, 1000), np.float32))
    >>> sorted(set(y.ravel().tolist()))
    [0.0, 2.0]
    >>> d.eval()(np.ones(3)).tolist()
    [1.0, 1.0, 1.0]
    """

    def __init__(self, p: float = 0.5, *, seed: Optional[int] = None) -> None:
        self.p = F._float_param(p, "p")
        if not 0.0 <= self.p <= 1.0:
            raise ValueError(f"Dropout: p must be in [0, 1], got {p}")
        self.seed = _seed(seed)
        self._rng = np.random.default_rng(self.seed)

    def forward(self, x: Any) -> np.ndarray:
        arr = F._float_array(x, "input")
        if not self.training:
            return arr
        if self.p == 0.0:
            noise = None
            y = arr.copy()
        else:
            # torch: input * (bernoulli(1 - p) / (1 - p)), the noise in the input's dtype
            keep = self._rng.random(arr.shape, dtype=np.float32 if arr.dtype == np.float32
                                    else np.float64) >= self.p
            noise = keep.astype(arr.dtype)
            if self.p < 1.0:
                noise /= arr.dtype.type(1.0 - self.p)
            y = arr * noise
        self._save(noise, arr.shape, arr.dtype)
        return y

    # training: the gradient is masked and scaled as the input was
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        noise, shape, dtype = self._take_saved()
        g = self._grad_output(grad_output, shape, dtype)
        if not input_grad:
            return None
        return g.copy() if noise is None else g * noise

    def extra_repr(self) -> str:
        return f"p={self.p:g}"


class AdaptiveAvgPool2d(Module):
    """Average pooling to a fixed output size, as ``torch.nn.AdaptiveAvgPool2d``: output
    cell ``i`` averages input rows ``floor(i*H/Ho)`` to ``ceil((i+1)*H/Ho)`` (and so for
    columns). ``output_size=1`` is global average pooling.

    Parameters
    ----------
    output_size : int, or pair of int or None
        ``(Ho, Wo)``; None keeps that input dimension.

    Examples
    --------
    >>> from convcore.layers import AdaptiveAvgPool2d
    >>> AdaptiveAvgPool2d(1)(np.arange(8.0).reshape(1, 2, 2, 2)).ravel().tolist()
    [1.5, 5.5]
    >>> AdaptiveAvgPool2d((2, None)).output_shape((3, 7, 5))
    (3, 2, 5)
    """

    input_ndim = 3

    def __init__(self, output_size: Any) -> None:
        if isinstance(output_size, (tuple, list)):
            if len(output_size) != 2:
                raise ValueError(f"AdaptiveAvgPool2d: output_size must be an int or a pair, "
                                 f"got {output_size!r}")
            size = tuple(None if v is None else F._int_param(v, "output_size", 1)
                         for v in output_size)
        else:
            v = F._int_param(output_size, "output_size", 1)
            size = (v, v)
        self.output_size = output_size if isinstance(output_size, int) else size
        self._size = size

    def _out_hw(self, h: int, w: int) -> Tuple[int, int]:
        return (h if self._size[0] is None else self._size[0],
                w if self._size[1] is None else self._size[1])

    @staticmethod
    def _bins(n: int, out: int, dtype: np.dtype) -> np.ndarray:
        """(out, n): row i holds 1/len over PyTorch's bin i, so pooling is A @ x @ B.T."""
        i = np.arange(out)
        start, end = (i * n) // out, -((-(i + 1) * n) // out)
        j = np.arange(n)
        inside = (j >= start[:, None]) & (j < end[:, None])
        return (inside / (end - start)[:, None]).astype(dtype)

    def forward(self, x: Any) -> np.ndarray:
        x4, batched = _input(self, x, None)
        n, c, h, w = x4.shape
        if h == 0 or w == 0:
            raise ValueError(f"AdaptiveAvgPool2d: input {x4.shape} has an empty image")
        ho, wo = self._out_hw(h, w)
        if (ho, wo) == (1, 1):
            y = x4.mean(axis=(2, 3), keepdims=True)
        else:
            a, b = self._bins(h, ho, x4.dtype), self._bins(w, wo, x4.dtype)
            y = np.matmul(np.matmul(a, x4), b.T)
        self._save(x4.shape, batched, y.dtype)
        return y if batched else y[0]

    # training: each input element gets the gradient of the cells it is averaged into
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        shape, batched, dtype = self._take_saved()
        n, c, h, w = shape
        ho, wo = self._out_hw(h, w)
        g = self._grad_output(grad_output, (n, c, ho, wo) if batched else (c, ho, wo), dtype)
        if not input_grad:
            return None
        g4 = g if batched else g[None]
        if (ho, wo) == (1, 1):
            gx = np.broadcast_to(g4 / dtype.type(h * w), shape).copy()
        else:
            a, b = self._bins(h, ho, dtype), self._bins(w, wo, dtype)
            gx = np.matmul(np.matmul(a.T, g4), b)
        return gx if batched else gx[0]

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        batch, (c, h, w) = _split_batch(input_shape, 3, "AdaptiveAvgPool2d", "(C, H, W)")
        return _join_batch(batch, (c,) + self._out_hw(h, w))

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}"


class ReLU6(Module):
    """``min(max(x, 0), 6)``, element-wise, as ``torch.nn.ReLU6`` (MobileNetV2's
    activation; NaN stays NaN). Computed by NumPy, not fused into a convolution."""

    def forward(self, x: Any) -> np.ndarray:
        arr = F._float_array(x, "input")
        y = np.maximum(arr, arr.dtype.type(0))
        np.minimum(y, arr.dtype.type(6), out=y)
        self._save(arr)
        return y

    # training: hardtanh's gradient, 1 strictly inside (0, 6), as PyTorch
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        (x,) = self._take_saved()
        g = self._grad_output(grad_output, x.shape, x.dtype)
        if not input_grad:
            return None
        return np.where((x > 0) & (x < 6), g, x.dtype.type(0))


class Softmax(Module):
    """``exp(x) / sum(exp(x))`` along ``dim``, as ``torch.nn.Softmax`` (computed as
    ``exp(x - max)`` so large inputs do not overflow).

    Examples
    --------
    >>> from convcore.layers import Softmax
    >>> Softmax(dim=1)(np.array([[0.0, np.log(3.0)]])).round(6).tolist()
    [[0.25, 0.75]]
    """

    def __init__(self, dim: int = 1) -> None:
        self.dim = F._int_param(dim, "dim")

    def _axis(self, ndim: int) -> int:
        if not -ndim <= self.dim < max(ndim, 1):
            raise ValueError(f"Softmax: dim={self.dim} is out of range for an input with "
                             f"{ndim} dimensions")
        return self.dim % max(ndim, 1)

    def forward(self, x: Any) -> np.ndarray:
        arr = F._float_array(x, "input")
        axis = self._axis(arr.ndim)
        if arr.ndim == 0:
            y = np.ones_like(arr)
        else:
            y = arr - arr.max(axis=axis, keepdims=True) if arr.size else arr.copy()
            np.exp(y, out=y)
            y /= y.sum(axis=axis, keepdims=True)
        self._save(y, axis)
        return y

    # training: dx = y * (g - sum(g * y))
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        y, axis = self._take_saved()
        g = self._grad_output(grad_output, y.shape, y.dtype)
        if not input_grad:
            return None
        if y.ndim == 0:
            return np.zeros_like(y)
        return y * (g - (g * y).sum(axis=axis, keepdims=True))

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


def _fuse_pair(first: Module, second: Module) -> Optional[Module]:
    """``first`` then ``second`` as one layer (eval-mode semantics), or None: a Conv2d
    without an activation absorbs a BatchNorm2d with running statistics; a Conv2d or Dense
    without an activation absorbs an activation layer."""
    if not isinstance(first, (Conv2d, Dense)) or first._spec[0] != "none":
        return None
    if isinstance(second, BatchNorm2d):
        if (not isinstance(first, Conv2d) or not second.track_running_stats
                or second.num_features != first.out_channels or second.dtype != first.dtype):
            return None
        scale, shift = second.scale_shift()
        w = first.weight.astype(np.float64) * scale[:, None, None, None]
        b = shift if first.bias is None else first.bias.astype(np.float64) * scale + shift
        new = copy.deepcopy(first)
        new._set_param("weight", w.astype(first.dtype))
        new._set_param("bias", b.astype(first.dtype))
        return new
    if isinstance(second, _Activation):
        new = copy.deepcopy(first)
        new.activation = second
        new._spec = F.activation_spec(second)
        return new
    if isinstance(second, ReLU6) and type(first) is Conv2d:
        new = copy.deepcopy(first)
        new.__class__ = _Conv2dReLU6
        new.activation = "relu"
        new._spec = F.activation_spec("relu")
        return new
    return None


class _Conv2dReLU6(Conv2d):
    """A Conv2d followed by ReLU6, as ``fuse`` makes it: ReLU fused into the kernel's
    store, then the clip at 6 in place in the fresh output (one pass, no second array)."""

    def forward(self, x: Any) -> np.ndarray:
        y = super().forward(x)
        if self.training:      # y is also the saved pre-activation: a new array
            return np.minimum(y, y.dtype.type(6))
        return np.minimum(y, y.dtype.type(6), out=y)

    # training: hardtanh's gradient, the ReLU part by Conv2d (its saved output > 0)
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        saved = self.__dict__.get("_saved")
        if saved is not None:
            z = saved[1] if saved[2] else saved[1][0]
            g = np.asarray(grad_output)
            if g.shape == z.shape:
                grad_output = np.where(z < 6, g, g.dtype.type(0))
        return super().backward(grad_output, input_grad=input_grad)

    def extra_repr(self) -> str:
        return super().extra_repr().replace("activation='relu'", "activation=ReLU6()")


def _no_alias(out: np.ndarray, *inputs: np.ndarray) -> bool:
    """Whether ``out`` may be overwritten: it shares no memory with the inputs."""
    return all(out is not x and not np.may_share_memory(out, x) for x in inputs)


class Residual(Module):
    """``activation(block(x) + shortcut(x))``: a residual connection (ResNet's blocks,
    MobileNetV2's inverted residuals); ``shortcut=None`` is the identity. ``activation``
    is None, a name or an activation layer, as ``Conv2d``'s. In eval mode the sum and the
    activation are computed in place in the block's output.

    The ``state_dict`` keys are ``block.*`` and ``shortcut.*`` (the models name theirs as
    torchvision does).

    Examples
    --------
    >>> from convcore import layers as L
    >>> res = L.Residual(L.Conv2d(2, 2, 3, padding=1, seed=0), activation="relu")
    >>> res(np.ones((1, 2, 4, 4), np.float32)).shape
    (1, 2, 4, 4)
    """

    def __init__(self, block: Module, shortcut: Optional[Module] = None,
                 activation: Any = None) -> None:
        for name, m in (("block", block), ("shortcut", shortcut)):
            if m is not None and not isinstance(m, Module):
                raise TypeError(f"Residual: {name} must be a convcore.layers.Module, got "
                                f"{type(m).__name__}")
        if block is None:
            raise TypeError("Residual: block must be a convcore.layers.Module, got None")
        self.block, self.shortcut = block, shortcut
        self.activation = activation
        self._spec = F.activation_spec(activation)

    @property
    def input_ndim(self) -> Optional[int]:  # type: ignore[override]
        return self.block.input_ndim

    def _children(self) -> List[Tuple[str, Module]]:
        shortcut = [] if self.shortcut is None else [("shortcut", self.shortcut)]
        return [("block", self.block)] + shortcut

    def _fused(self) -> "Residual":
        new = copy.copy(self)
        new.__dict__ = {k: v for k, v in self.__dict__.items() if k != "_saved"}
        new.block = self.block._fused()
        new.shortcut = None if self.shortcut is None else self.shortcut._fused()
        return new

    def forward(self, x: Any) -> np.ndarray:
        y = self.block(x)
        s = x if self.shortcut is None else self.shortcut(x)
        s = np.asarray(s)
        if y.shape != s.shape:
            raise ValueError(f"{type(self).__name__}: the block's output {y.shape} and the "
                             f"shortcut's {s.shape} differ; they are added")
        if (not self.training and y.flags.writeable and y.dtype == s.dtype
                and _no_alias(y, x, s)):
            np.add(y, s, out=y)
            z = y
        else:
            z = np.add(y, s)
        if self._spec[0] == "relu" and z is y:
            np.maximum(z, z.dtype.type(0), out=z)  # NaN stays NaN, as relu
            out = z
        elif self._spec[0] != "none":
            out = F._activate(z, *self._spec)
        else:
            out = z
        self._save(z)
        return out

    # training: through the activation, then into both branches; their gradients add
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        (z,) = self._take_saved()
        g = self._grad_output(grad_output, z.shape, z.dtype)
        if self._spec[0] != "none":
            g = F.activation_backward(self.activation, g, z)
        gx = self.block.backward(g, input_grad=input_grad)
        gs = g if self.shortcut is None else self.shortcut.backward(g, input_grad=input_grad)
        return None if not input_grad else gx + gs

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        out = self.block.output_shape(input_shape)
        short = (_shape(input_shape) if self.shortcut is None
                 else self.shortcut.output_shape(input_shape))
        if out != short:
            raise ValueError(f"{type(self).__name__}: the block's output {out} and the "
                             f"shortcut's {short} differ; they are added")
        return out

    def macs(self, input_shape: Sequence[int]) -> int:
        self.output_shape(input_shape)
        return self.block.macs(input_shape) + (
            0 if self.shortcut is None else self.shortcut.macs(input_shape))

    def __repr__(self) -> str:
        inner = [f"  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._children()]
        if self._spec[0] != "none":
            inner.append(f"  activation={self.activation!r}")
        return f"{type(self).__name__}(\n" + "\n".join(inner) + "\n)"


class Concat(Module):
    """The branches' outputs concatenated along the channels (``torch.cat(..., 1)`` of an
    ``(N, C, H, W)`` batch; an unbatched ``(C, H, W)`` input: along its first axis), as in
    an inception block. Every branch gets the same input; their outputs must agree but for
    the channels. ``state_dict`` keys ``0.*``, ``1.*``, ... as a ``torch.nn.ModuleList``.

    Examples
    --------
    >>> from convcore import layers as L
    >>> cat = L.Concat(L.Conv2d(3, 4, 1, seed=0), L.Conv2d(3, 6, 3, padding=1, seed=1))
    >>> cat.output_shape((3, 8, 8))
    (10, 8, 8)
    """

    def __init__(self, *branches: Module) -> None:
        if not branches:
            raise ValueError("Concat: give at least one branch")
        for i, b in enumerate(branches):
            if not isinstance(b, Module):
                raise TypeError(f"Concat: branch {i} must be a convcore.layers.Module, got "
                                f"{type(b).__name__}")
        self.branches = list(branches)

    @property
    def input_ndim(self) -> Optional[int]:  # type: ignore[override]
        return self.branches[0].input_ndim

    def _children(self) -> List[Tuple[str, Module]]:
        return [(str(i), b) for i, b in enumerate(self.branches)]

    def _fused(self) -> "Concat":
        return Concat(*(b._fused() for b in self.branches))

    @staticmethod
    def _check(shapes: List[Shape]) -> None:
        first = shapes[0]
        for i, s in enumerate(shapes):
            if len(s) < 3 or len(s) != len(first) or s[:-3] != first[:-3] or s[-2:] != first[-2:]:
                raise ValueError(f"Concat: branch outputs {shapes} must be (N, C, H, W) or "
                                 f"(C, H, W) and agree but for the channels (branch {i})")

    def forward(self, x: Any) -> np.ndarray:
        outs = [np.asarray(b(x)) for b in self.branches]
        self._check([o.shape for o in outs])
        y = np.concatenate(outs, axis=-3)
        self._save(y.shape, y.dtype, [o.shape[-3] for o in outs])
        return y

    # training: each branch gets its channels of the gradient; their input gradients add
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        shape, dtype, sizes = self._take_saved()
        g = self._grad_output(grad_output, shape, dtype)
        parts = np.split(g, np.cumsum(sizes)[:-1], axis=-3)
        grads = [b.backward(np.ascontiguousarray(p), input_grad=input_grad)
                 for b, p in zip(self.branches, parts)]
        if not input_grad:
            return None
        total = grads[0]
        for gi in grads[1:]:
            total = total + gi
        return total

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        shapes = [b.output_shape(input_shape) for b in self.branches]
        self._check(shapes)
        return shapes[0][:-3] + (sum(s[-3] for s in shapes),) + shapes[0][-2:]

    def macs(self, input_shape: Sequence[int]) -> int:
        return sum(b.macs(input_shape) for b in self.branches)

    def __repr__(self) -> str:
        inner = "\n".join(f"  ({name}): " + repr(m).replace("\n", "\n  ")
                          for name, m in self._children())
        return f"Concat(\n{inner}\n)"


# ----------------------------------------------------------------------------- Sequential


class SummaryRow(NamedTuple):
    layer: str          # e.g. "Conv2d-1"; nested rows: "  conv1 (Conv2d)", indented
    output_shape: Shape
    params: int
    macs: int
    depth: int = 0      # 0 for the Sequential's own layers, 1 for their layers, ...


def _nested_rows(module: Module, shape: Shape, depth: int, level: int) -> List[SummaryRow]:
    """Summary rows of ``module``'s sub-modules (given ``module``'s batched input shape),
    ``depth`` levels down: a Sequential's layers in turn, any other container's children
    (Residual, Concat: branches) each on the container's input."""
    if depth <= 0:
        return []
    rows: List[SummaryRow] = []

    def add(name: str, child: Module, cur: Shape) -> Shape:
        out = child.output_shape(cur)
        rows.append(SummaryRow(f"{'  ' * level}{name} ({type(child).__name__})", out,
                               child.num_params, child.macs(cur), level))
        rows.extend(_nested_rows(child, cur, depth - 1, level + 1))
        return out

    children = module._children()
    if isinstance(module, Sequential):
        cur = shape
        for name, child in children:
            cur = add(name, child, cur)
    else:
        if isinstance(module, Residual) and not any(c is module.block for _, c in children):
            # a block whose layers are named as the container's own (ResNet's conv1, ...)
            rows.extend(_nested_rows(module.block, shape, depth, level))
            children = [(n, c) for n, c in children if c is not module.block
                        and not any(c is b for _, b in module.block._children())]
        for name, child in children:
            add(name, child, shape)
    return rows


class Summary:
    """``Sequential.summary``'s result: ``rows`` (one ``SummaryRow`` per layer),
    ``totals`` (``params``, ``macs``, ``output_shape``) and ``str()`` the table."""

    def __init__(self, input_shape: Shape, rows: List[SummaryRow]) -> None:
        self.input_shape = input_shape
        self.rows = rows
        self.totals = {
            "params": sum(r.params for r in rows if r.depth == 0),
            "macs": sum(r.macs for r in rows if r.depth == 0),
            "output_shape": ([r for r in rows if r.depth == 0][-1].output_shape if rows
                             else input_shape),
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


@contextlib.contextmanager
def _naming_layer(index: int, layer: Module) -> Iterator[None]:
    """Re-raise a ValueError or TypeError from layer ``index`` of a Sequential with the
    layer's index and repr in front (nested Sequentials add their own)."""
    try:
        yield
    except (ValueError, TypeError) as e:
        _rename_error(index, layer, e)


def _rename_error(index: int, layer: Module, e: Exception) -> None:
    """Raise ``e`` again, a plain ValueError or TypeError with layer ``index``'s index and
    repr in front (``_naming_layer``'s message, for a loop that catches it itself)."""
    if type(e) not in (ValueError, TypeError):
        raise e
    text = repr(layer) if not isinstance(layer, Sequential) else "Sequential"
    raise type(e)(f"Sequential layer ({index}) {text}: {e}") from e


class Sequential(Module):
    """Layers applied in order; iterable, indexable (a slice gives a Sequential), with
    ``summary(input_shape)``. An unbatched input (one ``(C, H, W)`` image for a stack
    starting with a conv) runs as a batch of one and comes back unbatched. A list or
    other array-like input takes the dtype of the first layer that has parameters.

    A ValueError or TypeError raised by a layer names it: ``Sequential layer (2)
    Conv2d(...): <the layer's message>``.

    >>> from convcore import layers as L
    >>> net = L.Sequential(L.Conv2d(1, 4, 3, seed=0), L.ReLU(), L.Flatten(), L.Dense(64, 2, seed=0))
    >>> net(np.zeros((1, 6, 6), np.float32)).shape
    (2,)
    """

    def __init__(self, *layers: Any) -> None:
        if len(layers) == 1 and isinstance(layers[0], OrderedDict):
            # named layers, as torch.nn.Sequential(OrderedDict(...)): the names prefix the
            # state_dict keys ("conv1.weight") and are attributes (model.conv1)
            names = [str(k) for k in layers[0]]
            layers = tuple(layers[0].values())
            for name in names:
                if not (name.isidentifier() or name.isdigit()) or hasattr(type(self), name):
                    raise ValueError(f"Sequential: layer name {name!r} must be an identifier "
                                     "(or a number) that is not a Sequential attribute")
        else:
            names = [str(i) for i in range(len(layers))]
        for name, layer in zip(names, layers):
            if not isinstance(layer, Module):
                raise TypeError(f"Sequential: layer {name} must be a convcore.layers.Module, "
                                f"got {type(layer).__name__}")
        self._layers = list(layers)
        self._names = names

    def __getattr__(self, name: str) -> Module:
        # only called when ordinary lookup fails: a named layer (model.fc)
        names = self.__dict__.get("_names")
        if names is not None and name in names and not name.isdigit():
            return self._layers[names.index(name)]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def named_children(self) -> List[Tuple[str, Module]]:
        """``(name, layer)`` pairs: "0", "1", ... or the names given in an OrderedDict."""
        return self._children()

    def __iter__(self) -> Iterator[Module]:
        return iter(self._layers)

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: Union[int, slice]) -> Any:
        if isinstance(index, slice):
            if self._names == [str(i) for i in range(len(self._names))]:
                return Sequential(*self._layers[index])
            return Sequential(OrderedDict(zip(self._names[index], self._layers[index])))
        return self._layers[index]

    def _children(self) -> List[Tuple[str, Module]]:
        return list(zip(self._names, self._layers))

    def _fused(self) -> "Sequential":
        names: List[str] = []
        layers: List[Module] = []
        for name, layer in self._children():
            fused = layer._fused()
            merged = _fuse_pair(layers[-1], fused) if layers else None
            if merged is not None:
                layers[-1] = merged
            else:
                names.append(name)
                layers.append(fused)
        new = copy.copy(self)
        new.__dict__ = {k: v for k, v in self.__dict__.items() if k != "_saved"}
        new._layers, new._names = layers, names
        return new

    @property
    def input_ndim(self) -> Optional[int]:  # type: ignore[override]
        """The dims of one input of the first layer that says (nested containers too)."""
        return next((l.input_ndim for l in self._layers if l.input_ndim is not None), None)

    def _unbatched(self, ndim: int) -> bool:
        """Whether an input of ``ndim`` dims is one unbatched input for the first layer
        that says how many dims it takes."""
        nd = self.input_ndim
        return nd is not None and ndim == nd

    def forward(self, x: Any) -> np.ndarray:
        if isinstance(x, np.ndarray):
            arr = x
        else:  # a list or other array-like takes the first parameter's dtype (nested too)
            dtype = next((p.dtype for _, p in self.named_parameters()), np.dtype(np.float64))
            arr = F._float_array(x, "input", dtype)
        single = self._unbatched(arr.ndim)
        y = arr[None] if single else arr
        # One try around the loop, not a context manager per layer (a few microseconds
        # each, every call): an error still names its layer.
        i = 0
        try:
            for i, layer in enumerate(self._layers):
                y = layer(y)
        except (ValueError, TypeError) as e:
            _rename_error(i, self._layers[i], e)
        self._save(single)
        return y[0] if single else y

    # training
    def backward(self, grad_output: Any, *, input_grad: bool = True) -> Optional[np.ndarray]:
        """The layers' backward passes in reverse order (each checks its grad_output). With
        ``input_grad=False`` the layers before the first one with parameters are skipped
        (their saved inputs dropped) and that one computes only its parameters' gradients."""
        (single,) = self._take_saved()
        g = np.asarray(grad_output)
        g = g[None] if single else g
        first = 0 if input_grad else next(
            (i for i, layer in enumerate(self._layers) if any(True for _ in layer.named_parameters())),
            len(self._layers))
        for i in range(len(self._layers) - 1, first - 1, -1):
            g = self._layers[i].backward(g, input_grad=input_grad or i > first)
        for layer in self._layers[:first]:
            layer._forget()
        if not input_grad:
            return None
        return g[0] if single else g

    def _shapes(self, input_shape: Sequence[int]) -> Tuple[Shape, List[Tuple[Shape, int]]]:
        """(the batched input shape, [(output shape, MACs)] per layer), batched."""
        shape = _shape(input_shape)
        batched = (1,) + shape if self._unbatched(len(shape)) else shape
        out, cur = [], batched
        for i, layer in enumerate(self._layers):
            with _naming_layer(i, layer):
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

    def summary(self, input_shape: Optional[Sequence[int]] = None, depth: int = 1) -> Summary:
        """A torchinfo-style table: per layer its output shape (with the batch dimension,
        1 for an unbatched input_shape), parameters and MACs, and the totals.
        ``depth`` > 1 adds the layers inside containers (nested Sequentials, Residual
        blocks, Concat branches), indented and named, that many levels down.

        ``input_shape`` is one input's shape, e.g. ``(1, 28, 28)``, with or without a
        batch dimension. It may be left out only when the first layer fixes it (a
        ``Dense`` takes ``(in_features,)``); otherwise leaving it out is a TypeError
        saying what to pass.

        Example::

            >>> from convcore import layers as L
            >>> net = L.Sequential(L.Conv2d(1, 6, 5), L.ReLU(), L.MaxPool2d(2))
            >>> s = net.summary((1, 28, 28))
            >>> s.totals["params"], s.totals["output_shape"]
            (156, (1, 6, 12, 12))
        """
        if input_shape is None:
            first = self._layers[0] if self._layers else None
            if isinstance(first, Dense):
                input_shape = (first.in_features,)
            else:
                raise TypeError(
                    "Sequential.summary() needs input_shape, one input's shape such as "
                    "(C, H, W) = (1, 28, 28)"
                    + (f": the first layer, {first!r}, does not fix it" if first else ""))
        depth = F._int_param(depth, "depth", 1)
        batched, per_layer = self._shapes(input_shape)
        rows: List[SummaryRow] = []
        cur = batched
        for i, (layer, (shape, macs)) in enumerate(zip(self._layers, per_layer)):
            rows.append(SummaryRow(f"{type(layer).__name__}-{i + 1}", shape, layer.num_params,
                                   macs))
            rows.extend(_nested_rows(layer, cur, depth - 1, 1))
            cur = shape
        return Summary(batched, rows)

    def __repr__(self) -> str:
        if not self._layers:
            return "Sequential()"
        inner = "\n".join(f"  ({name}): " + repr(layer).replace("\n", "\n  ")
                          for name, layer in self._children())
        return f"{type(self).__name__}(\n{inner}\n)"


# ----------------------------------------------------------------------------- losses


class _Loss:
    """A criterion, as ``torch.nn``'s: ``loss = crit(output, target)`` returns a float (an
    array of per-sample losses for ``reduction="none"``), ``crit.backward()`` returns
    dL/d(output) of that call (for "none": of the losses' sum)."""

    def __init__(self, reduction: str = "mean") -> None:
        self.reduction = F._choice(reduction, "reduction", ("mean", "sum", "none"))
        self._saved: Optional[Tuple[Any, ...]] = None

    def _take_saved(self) -> Tuple[Any, ...]:
        if self._saved is None:
            raise RuntimeError(f"{type(self).__name__}.backward: call the loss on an output "
                               "and a target first (each call allows one backward)")
        saved, self._saved = self._saved, None
        return saved

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class CrossEntropyLoss(_Loss):
    """Softmax cross-entropy of logits ``(N, classes)`` against integer class indices
    ``(N,)``, as ``torch.nn.CrossEntropyLoss`` (``convcore.cross_entropy``)."""

    def __call__(self, output: Any, target: Any) -> Any:
        loss = F.cross_entropy(output, target, self.reduction)
        self._saved = (output, target)
        return loss

    def backward(self) -> np.ndarray:
        output, target = self._take_saved()
        return F.cross_entropy_backward(output, target, self.reduction)


class MSELoss(_Loss):
    """Mean squared error ``mean((output - target)**2)``, as ``torch.nn.MSELoss``; output
    and target have one shape, the target is converted to the output's dtype. The loss is
    accumulated in float64."""

    def __call__(self, output: Any, target: Any) -> Any:
        out = F._float_array(output, "output")
        tgt = np.asarray(target)
        if tgt.shape != out.shape:
            raise ValueError(f"MSELoss: target has shape {tgt.shape}, output {out.shape}; "
                             "they must be equal")
        diff = np.subtract(out, tgt, dtype=out.dtype)
        self._saved = (diff,)
        if self.reduction == "none":
            return np.square(diff)
        total = np.square(diff, dtype=np.float64)
        return float(total.mean() if self.reduction == "mean" else total.sum())

    def backward(self) -> np.ndarray:
        (diff,) = self._take_saved()
        # PyTorch's mse_loss_backward: 2/n * (output - target) for "mean", 2 * (...) else
        scale = 2.0 / diff.size if self.reduction == "mean" and diff.size else 2.0
        return np.multiply(diff, diff.dtype.type(scale), out=diff)
