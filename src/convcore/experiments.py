"""The lecture's two experiments, shared by the demo (``python -m convcore``) and the
benchmark report (``python -m convcore bench``).

* **The cost of full connectivity** (:func:`connectivity`): one convolution layer, the
  equivalent locally connected layer (the same filters at every output position, not
  shared) and the equivalent fully connected layer (the convolution's dense matrix) on
  one image: their parameters, weight bytes and multiply-accumulates, and the three
  layers themselves while their weights fit a memory budget. The counts are the layers'
  own ``num_params`` and ``macs``; beyond the budget, where a layer cannot be built,
  :func:`costs` gives the same numbers (tests hold the two equal).
* **The permutation experiment** (:func:`permutation`): permute the pixels of an image.
  A fully connected layer whose columns are permuted the same way gives the same output
  (it has no notion of neighbours); a convolution's output on the permuted image is
  neither its output nor that output permuted.

Both take "same" padding (the output has the image's size), as the lecture's layers do.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Callable, Dict, Optional, Tuple

import numpy as np

from . import functional as F
from . import layers

#: The three layers of the cost experiment, in the order they are reported.
KINDS = ("conv", "locally connected", "dense")


@dataclasses.dataclass
class Layer:
    """One layer of the cost experiment on one image: counts, and a time in seconds
    (nan until measured; ``estimated`` when it was not run but inferred)."""

    kind: str  # one of KINDS
    image: Tuple[int, int]  # (H, W)
    params: int  # weights and biases
    weight_bytes: int
    macs: int
    seconds: float = math.nan
    estimated: bool = False

    @property
    def size(self) -> int:
        """The image height (its side, for the square images of the sweep)."""
        return self.image[0]


def _conv_layer(in_channels: int, out_channels: int, kernel_size: Tuple[int, int],
                dtype: np.dtype) -> layers.Conv2d:
    return layers.Conv2d(in_channels, out_channels, kernel_size, padding="same", dtype=dtype,
                         seed=0)


def costs(in_channels: int, out_channels: int, kernel_size: Tuple[int, int],
          image: Tuple[int, int], itemsize: int = 4) -> Dict[str, Layer]:
    """Parameters (with the bias), weight bytes and MACs of the three layers on one image,
    without building the two that grow with it. The convolution's numbers are its
    layer's; a locally connected layer holds one conv filter bank and bias per output
    position; the dense layer maps ``C*H*W`` inputs to ``K*Ho*Wo`` outputs."""
    c, k = in_channels, out_channels
    conv = _conv_layer(c, k, kernel_size, np.dtype(np.float32))
    chw = (c,) + tuple(image)
    _, ho, wo = conv.output_shape(chw)
    macs = conv.macs(chw)
    lc_params = conv.num_params * ho * wo
    dense_in, dense_out = c * image[0] * image[1], k * ho * wo
    dense_params = dense_out * (dense_in + 1)
    counts = {"conv": (conv.num_params, macs), "locally connected": (lc_params, macs),
              "dense": (dense_params, dense_out * dense_in)}
    return {kind: Layer(kind, tuple(image), p, p * itemsize, m) for kind, (p, m) in counts.items()}


@dataclasses.dataclass
class Connectivity:
    """:func:`connectivity`'s result: ``costs`` per kind, the layers that fit the budget
    (``None`` for those that do not) and, for each built layer, a zero-argument callable
    computing the maps ``(K, Ho, Wo)`` of the image (the dense one by NumPy matmul)."""

    costs: Dict[str, Layer]
    layers: Dict[str, Optional[layers.Module]]
    runs: Dict[str, Callable[[], np.ndarray]]


def connectivity(image: np.ndarray, weight: np.ndarray, bias: Optional[np.ndarray] = None,
                 budget: int = 2 << 30) -> Connectivity:
    """The cost experiment on one image ``(C, H, W)`` with a conv weight ``(K, C, R, S)``
    (and bias ``(K,)``, zeros when None: the counts include a bias): builds
    ``layers.Conv2d``, ``Conv2d.to_locally_connected`` and ``Conv2d.to_dense`` while
    their weights take at most ``budget`` bytes, and takes their counts from them."""
    x = F._float_array(image, "image")
    w = F._float_array(weight, "weight")
    if x.ndim != 3 or w.ndim != 4 or w.shape[1] != x.shape[0]:
        raise ValueError(f"image must be (C, H, W) and weight (K, C, R, S), got {x.shape} "
                         f"and {w.shape}")
    k, c, r, s = w.shape
    hw = x.shape[1:]
    conv = _conv_layer(c, k, (r, s), w.dtype)
    conv.weight = w
    conv.bias = np.zeros(k, w.dtype) if bias is None else F._float_array(bias, "bias")
    cost = costs(c, k, (r, s), hw, w.dtype.itemsize)
    built: Dict[str, Optional[layers.Module]] = {"conv": conv}
    built["locally connected"] = (conv.to_locally_connected(hw)
                                  if cost["locally connected"].weight_bytes <= budget else None)
    built["dense"] = (conv.to_dense(x.shape) if cost["dense"].weight_bytes <= budget else None)
    inputs = {"conv": x.shape, "locally connected": x.shape, "dense": (x.size,)}
    for kind, layer in built.items():
        if layer is not None:  # the counts of a layer that exists are its own
            cost[kind].params = layer.num_params
            cost[kind].weight_bytes = layer.num_params * w.dtype.itemsize
            cost[kind].macs = layer.macs(inputs[kind])

    runs: Dict[str, Callable[[], np.ndarray]] = {"conv": lambda: conv(x)}
    if built["locally connected"] is not None:
        lc = built["locally connected"]
        runs["locally connected"] = lambda: lc(x)
    if built["dense"] is not None:
        dense = built["dense"]
        m, b, flat = dense.weight, dense.bias, x.reshape(-1)
        out_shape = conv.output_shape(x.shape)
        runs["dense"] = lambda: np.add(m @ flat, b).reshape(out_shape)
    return Connectivity(cost, built, runs)


@dataclasses.dataclass
class Permutation:
    """:func:`permutation`'s result. Arrays are ``(K, H, W)`` maps or ``(C, H, W)`` images;
    differences are absolute (divide by ``scale`` or ``dense_scale`` for relative ones)."""

    pixels: np.ndarray  # the permutation: flat pixel p of the permuted image is pixels[p]
    permuted: np.ndarray  # P(x)
    maps: np.ndarray  # conv(x)
    permuted_maps: np.ndarray  # conv(P(x))
    unscrambled: np.ndarray  # P^-1(conv(P(x))): noise, not conv(x)
    scale: float  # max |conv(x)|
    conv_changed: float  # max |conv(P(x)) - conv(x)|
    conv_not_permuted: float  # max |conv(P(x)) - P(conv(x))|: not equivariant to P
    dense_vs_conv: Optional[float] = None  # max |M x - conv(x)| (None: M beyond the budget)
    dense_permuted: Optional[float] = None  # max |M[:, P] P(x) - M x|: zero up to rounding
    dense_scale: Optional[float] = None  # max |M x|


def permutation(image: np.ndarray, weight: np.ndarray, *, padding_mode: str = "zeros",
                seed: int = 0, dense_budget: int = 2 << 30) -> Permutation:
    """Permute the pixels of ``image`` ``(C, H, W)`` at random (``seed``; the same
    permutation in every channel) and compare a convolution (``weight`` ``(K, C, R, S)``,
    "same" padding in ``padding_mode``) and its dense matrix ``M`` (zero padding; built
    while it takes at most ``dense_budget`` bytes) on the image and on its permutation."""
    x = F._float_array(image, "image")
    w = F._float_array(weight, "weight")
    c, h, wd = x.shape
    pixels = np.random.default_rng(seed).permutation(h * wd)

    def permute(a: np.ndarray) -> np.ndarray:
        return a.reshape(a.shape[0], -1)[:, pixels].reshape(a.shape)

    def conv(a: np.ndarray) -> np.ndarray:
        return F.conv2d(a, w, padding="same", padding_mode=padding_mode)

    xp = permute(x)
    y, yp = conv(x), conv(xp)
    unscrambled = np.empty_like(yp)
    unscrambled.reshape(yp.shape[0], -1)[:, pixels] = yp.reshape(yp.shape[0], -1)
    out = Permutation(
        pixels=pixels, permuted=xp, maps=y, permuted_maps=yp, unscrambled=unscrambled,
        scale=float(np.abs(y).max()),
        conv_changed=float(np.abs(yp - y).max()),
        conv_not_permuted=float(np.abs(yp - permute(y)).max()),
    )
    if y.size * x.size * w.dtype.itemsize <= dense_budget:
        m = F.conv2d_dense_matrix(w, x.shape, padding="same")
        columns = (np.arange(c)[:, None] * h * wd + pixels[None, :]).ravel()
        flat = x.ravel()
        dense = m @ flat
        zeros = conv(x) if padding_mode == "zeros" else F.conv2d(x, w, padding="same")
        out.dense_vs_conv = float(np.abs(dense - zeros.ravel()).max())
        out.dense_permuted = float(np.abs(m[:, columns] @ flat[columns] - dense).max())
        out.dense_scale = float(np.abs(dense).max())
    return out


__all__ = ["KINDS", "Connectivity", "Layer", "Permutation", "connectivity", "costs",
           "permutation"]
