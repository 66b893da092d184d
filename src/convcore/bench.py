"""Benchmarks as a product: ``python -m convcore bench`` and the pieces ``benchmarks/`` shares.

What it measures, and how:

* **Implementations of one convolution side by side** — convcore's ``direct``,
  ``im2col`` and ``auto`` beside the peers that are installed: NumPy (sliding-window
  view + matmul, and einsum), SciPy (``signal.correlate2d``, ``ndimage.correlate``),
  OpenCV (``filter2D``), the dense-matrix equivalent (NumPy matmul), PyTorch
  (``F.conv2d``) and ONNX Runtime (a one-node Conv model). A peer that is not
  installed, or cannot compute a shape, raises ``Unavailable`` with the reason.
* **Every thread count pinned**: ``pinned_threads(n)`` sets convcore, BLAS and OpenMP
  (threadpoolctl), PyTorch and OpenCV to ``n`` threads; ONNX Runtime sessions are
  built with ``n`` intra-op threads.
* **Fractions of a measured peak**: ``peak_gflops(n)`` is the FMA peak of ``n`` threads
  for the vector width in use (``convcore.machine.peak_gflops`` of the active ISA: the
  C++ probe, 12 independent FMA chains, once per process); the report also prints the
  ymm and zmm peaks and the machine's kind (half- or full-width AVX-512).
* **The cost of full connectivity**: a conv layer (3 -> 16 channels, 3x3, padding 1),
  the equivalent locally connected layer and the equivalent fully connected layer as
  the image grows: parameters, weight bytes, MACs and time. The dense layer is timed
  while its weights fit a memory budget (2 GiB; 16 MiB with ``--quick``) and estimated
  beyond it from a memory bandwidth measured out of cache (marked "est.").
* **The permutation experiment**: a dense layer whose columns are permuted like the
  pixels gives the same output; a convolution of the permuted image does not.

Timing: implementations of one shape are run interleaved, round-robin, and the
median per-call time is kept, with the median of the per-round ratios to convcore
(the machine is noisy; ratios measured in the same round are steadier than times).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib
import math
import os
import platform
import sys
import time
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

import convcore
from convcore import _core, experiments
from convcore import machine as machine_info
from convcore.experiments import Layer
from convcore.testing import SHAPES, ConvShape

#: Memory the dense-equivalent matrix may take before its time is estimated instead.
DENSE_BUDGET = 2 << 30
#: The dense budget of ``bench --quick``.
QUICK_BUDGET = 16 << 20
#: Image sides of the cost-of-full-connectivity sweep.
SWEEP_SIZES = (8, 16, 32, 64, 128, 256)
#: The sweep's layer: C input channels, K filters of R x R, padding R // 2.
SWEEP_C, SWEEP_K, SWEEP_R = 3, 16, 3


class Unavailable(Exception):
    """A peer that cannot run here: not installed, or outside what it computes."""


def require(module: str):
    """Import ``module`` or raise ``Unavailable`` naming it."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Unavailable(f"{module} is not installed ({e})") from None


# ----------------------------------------------------------------------------- machine


def peak_gflops(threads: int = 1) -> float:
    """The float32 FMA peak of ``threads`` threads in GFLOP/s for the vector width of
    the ISA in use (zmm with AVX-512, ymm with AVX2), measured once per process."""
    return machine_info.peak_gflops(None, threads)


@contextlib.contextmanager
def _convcore_threads(n: int) -> Iterator[None]:
    previous = convcore.get_num_threads()
    convcore.set_num_threads(n)
    try:
        yield
    finally:
        convcore.set_num_threads(previous)


_PEER_MODULES = ("scipy.signal", "scipy.ndimage", "cv2", "torch", "onnxruntime")


@contextlib.contextmanager
def pinned_threads(n: int) -> Iterator[None]:
    """Run every implementation on ``n`` threads: convcore, BLAS/OpenMP, PyTorch, OpenCV.

    The peers are imported first, because threadpoolctl limits only the thread pools
    of libraries already loaded. ONNX Runtime reads ``n`` from ``current_threads()``.
    """
    for name in _PEER_MODULES:
        with contextlib.suppress(ImportError):
            importlib.import_module(name)
    with contextlib.ExitStack() as stack:
        stack.enter_context(_convcore_threads(n))
        with contextlib.suppress(ImportError):
            from threadpoolctl import threadpool_limits

            stack.enter_context(threadpool_limits(limits=n))
        torch = sys.modules.get("torch")
        if torch is not None:
            previous_torch = torch.get_num_threads()
            torch.set_num_threads(n)
            stack.callback(torch.set_num_threads, previous_torch)
        cv2 = sys.modules.get("cv2")
        if cv2 is not None:
            previous_cv2 = cv2.getNumThreads()
            cv2.setNumThreads(n)
            stack.callback(cv2.setNumThreads, previous_cv2)
        stack.callback(_threads.__setitem__, 0, _threads[0])
        _threads[0] = n
        yield


_threads = [1]  # the innermost pinned_threads' count


def current_threads() -> int:
    """The thread count set by the innermost ``pinned_threads`` (1 outside)."""
    return _threads[0]


def machine() -> Dict[str, str]:
    """CPU model (generation, family and model), cores, OS, Python and the versions of
    convcore and every peer."""
    cpu = machine_info.cpu()
    name = cpu.model_name
    if cpu.microarchitecture is not None:
        name += f" ({cpu.microarchitecture})"
    if cpu.family is not None and cpu.model is not None:
        name += f", family {cpu.family} model {cpu.model}"
    info = convcore.info()
    out = {
        "cpu": name,
        "cpus": str(cpu.cpus),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "convcore": f"{info['version']} ({info['isa']}, {info['compiler']})",
        "numpy": np.__version__,
    }
    for name, module in (("scipy", "scipy"), ("opencv", "cv2"), ("torch", "torch"),
                         ("onnxruntime", "onnxruntime")):
        with contextlib.suppress(ImportError):
            out[name] = importlib.import_module(module).__version__
    return out


def peaks_text(threads: int) -> str:
    """The report's sentence on the measured peaks: ymm and zmm per core (and on
    ``threads`` threads), the machine's kind, and which one the fractions divide by."""
    one = machine_info.peaks(1)
    many = machine_info.peaks(threads) if threads > 1 else one
    kind = machine_info.kind(one["ymm"], one["zmm"])

    def show(width: str) -> str:
        if one[width] is None:
            return f"{width} none"
        text = f"{width} {one[width]:.1f} GFLOP/s a core"
        return text + (f" ({many[width]:.1f} on {threads} threads)" if threads > 1 else "")

    isa = _core.get_isa()
    width = {"avx512": "zmm", "avx2": "ymm"}.get(isa, "scalar")
    return (f"Measured FMA peaks (12 independent FMA chains per thread): {show('ymm')}, "
            f"{show('zmm')}: {kind}. Fractions of peak divide by the {width} peak "
            f"({isa}, the ISA in use) on {threads} thread{'s' * (threads > 1)}: "
            f"{peak_gflops(threads):.1f} GFLOP/s.")


# ----------------------------------------------------------------------------- conv2d implementations

# A maker takes (shape, x, w) and returns a zero-argument callable computing the
# convolution as an (N, K, Ho, Wo) array; it prepares what a caller would prepare once
# (a compiled model, reshaped weights) and raises Unavailable when it cannot run.
Maker = Callable[[ConvShape, np.ndarray, np.ndarray], Callable[[], np.ndarray]]

#: Per-plane peers (SciPy, OpenCV) loop in Python over N*K*(C/groups) planes; beyond
#: this many the loop, not the peer, would be measured.
MAX_PLANES = 4096


def _convcore(algorithm: str) -> Maker:
    def make(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
        kwargs = s.conv2d_kwargs
        return lambda: convcore.conv2d(x, w, algorithm=algorithm, **kwargs)

    return make


def _convcore_winograd(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    """``algorithm="winograd"`` (functional: the weights transformed per call), on the
    geometry it takes."""
    if (s.r, s.s, s.stride, s.dilation) != (3, 3, 1, 1) or s.c // s.groups < 4:
        raise Unavailable("winograd takes 3x3, stride-1, undilated layers with C/groups >= 4")
    return _convcore("winograd")(s, x, w)


def _convcore_winograd_layer(s: ConvShape, x: np.ndarray,
                             w: np.ndarray) -> Callable[[], np.ndarray]:
    """A ``Conv2dOp`` running Winograd with the weights transformed once (as a layer in
    eval mode whose ``auto`` picks it, or an ONNX Runtime session's initializers)."""
    _convcore_winograd(s, x, w)  # the same geometry check
    y = np.empty(s.output_shape, x.dtype)
    op = convcore._core.Conv2dOp(w, None, (s.c, s.h, s.w), (s.stride, s.stride),
                                 (s.padding,) * 4, (s.dilation, s.dilation), s.groups, "zeros",
                                 "none", 0.0, 0.0, "winograd")
    return lambda: op.run(x, y) or y


def _convcore_layer(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    """A ``layers.Conv2d`` holding the weights (packed once, as a model holds them; ONNX
    Runtime's session likewise packs its initializers once)."""
    layer = convcore.layers.Conv2d(s.c, s.k, (s.r, s.s), bias=False, dtype=x.dtype,
                                   **s.conv2d_kwargs)
    layer.weight = w
    layer.eval()  # eval mode keeps the packed weights (training mode reads them per call)
    return lambda: layer(x)


def padded(s: ConvShape, x: np.ndarray) -> np.ndarray:
    """The input with the shape's zero padding on both sides of H and W."""
    p = s.padding
    return np.pad(x, ((0, 0), (0, 0), (p, p), (p, p))) if p else x


def windows(s: ConvShape, xp: np.ndarray) -> np.ndarray:
    """The view (N, G, C/G, Ho, Wo, R, S) of the padded input: the pixels each output sees."""
    d = s.dilation
    v = np.lib.stride_tricks.sliding_window_view(
        xp, (d * (s.r - 1) + 1, d * (s.s - 1) + 1), axis=(2, 3))
    v = v[:, :, ::s.stride, ::s.stride, ::d, ::d]
    return v.reshape(s.n, s.groups, s.c // s.groups, *v.shape[2:])


def _numpy_im2col(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    g, kg, crs = s.groups, s.k // s.groups, (s.c // s.groups) * s.r * s.s
    ho, wo = s.out_hw
    wm = np.ascontiguousarray(w.reshape(g, kg, crs))

    def run() -> np.ndarray:
        v = windows(s, padded(s, x))  # (N, G, Cg, Ho, Wo, R, S)
        cols = v.transpose(0, 1, 2, 5, 6, 3, 4).reshape(s.n, g, crs, ho * wo)  # the copy
        return np.matmul(wm, cols).reshape(s.n, s.k, ho, wo)

    return run


def _numpy_einsum(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    g, kg = s.groups, s.k // s.groups
    ho, wo = s.out_hw
    wg = w.reshape(g, kg, s.c // g, s.r, s.s)
    path = np.einsum_path("ngchwrs,gkcrs->ngkhw", windows(s, padded(s, x)), wg,
                          optimize="optimal")[0]

    def run() -> np.ndarray:
        v = windows(s, padded(s, x))
        return np.einsum("ngchwrs,gkcrs->ngkhw", v, wg, optimize=path).reshape(s.n, s.k, ho, wo)

    return run


def _per_plane(s: ConvShape, what: str) -> None:
    if s.stride != 1 or s.dilation != 1:
        raise Unavailable(f"{what} filters at stride 1 and dilation 1 only")
    planes = s.n * s.k * (s.c // s.groups)
    if planes > MAX_PLANES:
        raise Unavailable(f"{what} runs one plane per Python call: {planes} planes "
                          f"(more than {MAX_PLANES}) would measure the loop")


def _plane_loop(s: ConvShape, x: np.ndarray, w: np.ndarray,
                filt: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> Callable[[], np.ndarray]:
    """y[n, k] = sum over the group's channels c of filt(padded x[n, c], w[k, c])."""
    cg, kg = s.c // s.groups, s.k // s.groups
    ho, wo = s.out_hw

    def run() -> np.ndarray:
        xp = padded(s, x)
        y = np.zeros((s.n, s.k, ho, wo), dtype=x.dtype)
        for n in range(s.n):
            for k in range(s.k):
                c0 = (k // kg) * cg
                for c in range(cg):
                    y[n, k] += filt(xp[n, c0 + c], w[k, c])
        return y

    return run


def _scipy_correlate2d(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    _per_plane(s, "scipy.signal.correlate2d")
    signal = require("scipy.signal")
    return _plane_loop(s, x, w, lambda p, k: signal.correlate2d(p, k, mode="valid"))


def _valid_of_same(s: ConvShape, filt):
    """The valid part of a 'same'-size filter centred at (R//2, S//2) (ndimage, OpenCV)."""
    ho, wo = s.out_hw
    return lambda p, k: filt(p, k)[s.r // 2:s.r // 2 + ho, s.s // 2:s.s // 2 + wo]


def _scipy_ndimage(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    _per_plane(s, "scipy.ndimage.correlate")
    ndimage = require("scipy.ndimage")
    return _plane_loop(s, x, w, _valid_of_same(
        s, lambda p, k: ndimage.correlate(p, k, mode="constant", cval=0.0)))


def _opencv_filter2d(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    _per_plane(s, "cv2.filter2D")
    cv2 = require("cv2")
    if x.dtype != np.float32:
        raise Unavailable("cv2.filter2D is measured on float32")
    return _plane_loop(s, x, w, _valid_of_same(
        s, lambda p, k: cv2.filter2D(p, -1, k, borderType=cv2.BORDER_CONSTANT)))


def dense_matrix_bytes(s: ConvShape, itemsize: int = 4) -> int:
    ho, wo = s.out_hw
    return s.k * ho * wo * s.c * s.h * s.w * itemsize


def dense_matmul(s: ConvShape, x: np.ndarray, w: np.ndarray,
                 budget: int = DENSE_BUDGET) -> Callable[[], np.ndarray]:
    """The conv as its dense matrix (``convcore.conv2d_dense_matrix``) times the flattened
    images, NumPy matmul; Unavailable when the matrix would take more than ``budget``."""
    size = dense_matrix_bytes(s, x.itemsize)
    if size > budget:
        raise Unavailable(f"the dense matrix takes {_bytes(size)}, more than the "
                          f"{_bytes(budget)} budget")
    m = convcore.conv2d_dense_matrix(w, (s.c, s.h, s.w), **s.conv2d_kwargs)
    ho, wo = s.out_hw
    xf = x.reshape(s.n, -1)
    return lambda: np.matmul(xf, m.T).reshape(s.n, s.k, ho, wo)


def _torch(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    torch = require("torch")
    xt, wt = torch.from_numpy(x), torch.from_numpy(w)
    kwargs = s.conv2d_kwargs

    def run() -> np.ndarray:
        with torch.inference_mode():
            return torch.nn.functional.conv2d(xt, wt, **kwargs).numpy()

    return run


def torch_sequential(model: "convcore.layers.Sequential") -> Any:
    """The ``torch.nn.Sequential`` computing a convcore ``Sequential`` (Conv2d, Dense,
    ReLU, Tanh, MaxPool2d, AvgPool2d, Flatten; fused activations unfused), same dtype and
    weights: the peer of the training benchmarks and the gradient tests. ``Unavailable``
    without PyTorch, ValueError for a layer it cannot translate."""
    torch = require("torch")
    L, nn = convcore.layers, torch.nn
    acts = {"none": None, "relu": nn.ReLU, "tanh": nn.Tanh}
    mods: List[Any] = []
    for layer in model:
        act = getattr(layer, "_spec", ("none",))[0]
        if isinstance(layer, L.Conv2d):
            mods.append(nn.Conv2d(layer.in_channels, layer.out_channels, layer.kernel_size,
                                  layer.stride, layer.padding, layer.dilation, layer.groups,
                                  layer.bias is not None, layer.padding_mode))
        elif isinstance(layer, L.Dense):
            mods.append(nn.Linear(layer.in_features, layer.out_features, layer.bias is not None))
        elif isinstance(layer, L.MaxPool2d):
            mods.append(nn.MaxPool2d(layer._k, layer._s, layer._p, layer._d,
                                     ceil_mode=layer.ceil_mode))
        elif isinstance(layer, L.AvgPool2d):
            mods.append(nn.AvgPool2d(layer._k, layer._s, layer._p, layer.ceil_mode,
                                     layer.count_include_pad))
        elif isinstance(layer, L.Flatten):
            mods.append(nn.Flatten())
        elif isinstance(layer, (L.ReLU, L.Tanh)):
            act = layer.activation_spec[0]
        else:
            raise ValueError(f"torch_sequential: no translation of {layer!r}")
        if acts.get(act, False) is False:
            raise ValueError(f"torch_sequential: no translation of activation {act!r} in {layer!r}")
        if acts[act] is not None:
            mods.append(acts[act]())
    tmodel = nn.Sequential(*mods).to(torch.float64 if model.parameters()
                                     and model.parameters()[0].dtype == np.float64
                                     else torch.float32)
    params = [p for m in tmodel for p in m.parameters()]
    ours = model.parameters()
    assert len(params) == len(ours), "one torch parameter per convcore parameter"
    with torch.no_grad():
        for tp, p in zip(params, ours):
            tp.copy_(torch.from_numpy(p.data))
    return tmodel


def torchvision_twin(name: str, num_classes: int = 1000) -> Any:
    """``torch.nn`` models of torchvision's ``resnet18``, ``resnet50`` and ``mobilenet_v2``
    (torchvision need not be installed): the same modules, attribute names and forward
    as torchvision's definitions, written out here from ``torch.nn`` alone, so their
    ``state_dict`` keys are torchvision's. The independent peer of ``convcore.models``
    in the tests (the same network, built without convcore's code) and the benchmarks
    (exported to ONNX Runtime). float32, training mode, PyTorch's initialisation;
    ``Unavailable`` without PyTorch."""
    torch = require("torch")
    nn = torch.nn

    class BasicBlock(nn.Module):
        expansion = 1

        def __init__(self, cin, width, stride, downsample):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 3, stride, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.relu = nn.ReLU(inplace=True)
            self.conv2 = nn.Conv2d(width, width, 3, 1, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            return self.relu(self.bn2(self.conv2(out)) + identity)

    class Bottleneck(nn.Module):
        expansion = 4

        def __init__(self, cin, width, stride, downsample):
            super().__init__()
            self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
            self.bn1 = nn.BatchNorm2d(width)
            self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
            self.bn2 = nn.BatchNorm2d(width)
            self.conv3 = nn.Conv2d(width, width * 4, 1, bias=False)
            self.bn3 = nn.BatchNorm2d(width * 4)
            self.relu = nn.ReLU(inplace=True)
            self.downsample = downsample

        def forward(self, x):
            identity = x if self.downsample is None else self.downsample(x)
            out = self.relu(self.bn1(self.conv1(x)))
            out = self.relu(self.bn2(self.conv2(out)))
            return self.relu(self.bn3(self.conv3(out)) + identity)

    class ResNet(nn.Module):
        def __init__(self, block, layers):
            super().__init__()
            self.inplanes = 64
            self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
            self.bn1 = nn.BatchNorm2d(64)
            self.relu = nn.ReLU(inplace=True)
            self.maxpool = nn.MaxPool2d(3, 2, 1)
            self.layer1 = self._make_layer(block, 64, layers[0], 1)
            self.layer2 = self._make_layer(block, 128, layers[1], 2)
            self.layer3 = self._make_layer(block, 256, layers[2], 2)
            self.layer4 = self._make_layer(block, 512, layers[3], 2)
            self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
            self.fc = nn.Linear(512 * block.expansion, num_classes)

        def _make_layer(self, block, width, blocks, stride):
            downsample = None
            if stride != 1 or self.inplanes != width * block.expansion:
                downsample = nn.Sequential(
                    nn.Conv2d(self.inplanes, width * block.expansion, 1, stride, bias=False),
                    nn.BatchNorm2d(width * block.expansion))
            out = [block(self.inplanes, width, stride, downsample)]
            self.inplanes = width * block.expansion
            out += [block(self.inplanes, width, 1, None) for _ in range(1, blocks)]
            return nn.Sequential(*out)

        def forward(self, x):
            x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
            x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
            return self.fc(torch.flatten(self.avgpool(x), 1))

    def conv_bn_act(cin, cout, k, stride=1, groups=1):   # Conv2dNormActivation
        return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups,
                                       bias=False),
                             nn.BatchNorm2d(cout), nn.ReLU6(inplace=True))

    class InvertedResidual(nn.Module):
        def __init__(self, cin, cout, stride, t):
            super().__init__()
            hidden = int(round(cin * t))
            self.use_res_connect = stride == 1 and cin == cout
            layers = [conv_bn_act(cin, hidden, 1)] if t != 1 else []
            layers += [conv_bn_act(hidden, hidden, 3, stride, hidden),
                       nn.Conv2d(hidden, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout)]
            self.conv = nn.Sequential(*layers)

        def forward(self, x):
            return x + self.conv(x) if self.use_res_connect else self.conv(x)

    class MobileNetV2(nn.Module):
        def __init__(self):
            super().__init__()
            features = [conv_bn_act(3, 32, 3, 2)]
            cin = 32
            for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
                               (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
                for i in range(n):
                    features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                    cin = c
            features.append(conv_bn_act(cin, 1280, 1))
            self.features = nn.Sequential(*features)
            self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

        def forward(self, x):
            x = nn.functional.adaptive_avg_pool2d(self.features(x), (1, 1))
            return self.classifier(torch.flatten(x, 1))

    builders = {"resnet18": lambda: ResNet(BasicBlock, (2, 2, 2, 2)),
                "resnet50": lambda: ResNet(Bottleneck, (3, 4, 6, 3)),
                "mobilenet_v2": MobileNetV2}
    if name not in builders:
        raise ValueError(f"torchvision_twin: name must be one of {sorted(builders)}, got {name!r}")
    return builders[name]()


def _varint(n: int) -> bytes:
    out = bytearray()
    n &= (1 << 64) - 1  # negative int64s take ten bytes, as protobuf writes them
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number: int, value) -> bytes:
    """One protobuf field: an int as a varint, bytes/str length-delimited."""
    if isinstance(value, int):
        return _varint(number << 3) + _varint(value)
    data = value.encode() if isinstance(value, str) else value
    return _varint(number << 3 | 2) + _varint(len(data)) + data


def onnx_conv_model(s: ConvShape, w: np.ndarray) -> bytes:
    """A serialised ONNX model of one Conv node (opset 13, the weight as an initializer)
    for inputs of shape ``s.input_shape``, written field by field from onnx.proto, so
    that ONNX Runtime can be measured without the onnx package."""
    elem = 1 if w.dtype == np.float32 else 11  # TensorProto.FLOAT / DOUBLE

    def value_info(name, shape):
        dims = b"".join(_field(1, _field(1, d)) for d in shape)  # Dimension.dim_value
        tensor = _field(1, elem) + _field(2, dims)  # TypeProto.Tensor: elem_type, shape
        return _field(1, name) + _field(2, _field(1, tensor))

    def ints(name, values):
        return _field(1, name) + b"".join(_field(8, v) for v in values) + _field(20, 7)

    # Sorted by name, as onnx.helper.make_node writes them.
    attributes = [ints("dilations", [s.dilation] * 2),
                  _field(1, "group") + _field(3, s.groups) + _field(20, 2),
                  ints("kernel_shape", [s.r, s.s]), ints("pads", [s.padding] * 4),
                  ints("strides", [s.stride] * 2)]
    node = (_field(1, "x") + _field(1, "w") + _field(2, "y") + _field(4, "Conv")
            + b"".join(_field(5, a) for a in attributes))
    weight = (b"".join(_field(1, d) for d in w.shape) + _field(2, elem) + _field(8, "w")
              + _field(9, np.ascontiguousarray(w).astype(w.dtype.newbyteorder("<")).tobytes()))
    graph = (_field(1, node) + _field(2, "conv") + _field(5, weight)
             + _field(11, value_info("x", s.input_shape))
             + _field(12, value_info("y", s.output_shape)))
    opset = _field(1, "") + _field(2, 13)
    return _field(1, 8) + _field(7, graph) + _field(8, opset)  # ir_version 8


def onnx_conv_model_via_helper(s: ConvShape, w: np.ndarray) -> bytes:
    """The same model built with the onnx package's helper."""
    from onnx import TensorProto, helper, numpy_helper

    elem = TensorProto.FLOAT if w.dtype == np.float32 else TensorProto.DOUBLE
    node = helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[s.r, s.s],
                            strides=[s.stride] * 2, pads=[s.padding] * 4,
                            dilations=[s.dilation] * 2, group=s.groups)
    graph = helper.make_graph(
        [node], "conv", [helper.make_tensor_value_info("x", elem, list(s.input_shape))],
        [helper.make_tensor_value_info("y", elem, list(s.output_shape))],
        initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # old enough for any ONNX Runtime that runs opset 13
    return model.SerializeToString()


def _onnxruntime(s: ConvShape, x: np.ndarray, w: np.ndarray) -> Callable[[], np.ndarray]:
    ort = require("onnxruntime")
    try:
        model = onnx_conv_model_via_helper(s, w)
    except ImportError:
        model = onnx_conv_model(s, w)
    options = ort.SessionOptions()
    options.intra_op_num_threads = current_threads()
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    return lambda: session.run(None, {"x": x})[0]


#: Every conv2d implementation, by the name the tables and plots use.
CONV2D: Dict[str, Maker] = {
    "convcore-auto": _convcore("auto"),
    "convcore-direct": _convcore("direct"),
    "convcore-im2col": _convcore("im2col"),
    "convcore-winograd": _convcore_winograd,
    "convcore-winograd-layer": _convcore_winograd_layer,
    "convcore-layer": _convcore_layer,
    "numpy-im2col": _numpy_im2col,
    "numpy-einsum": _numpy_einsum,
    "scipy-correlate2d": _scipy_correlate2d,
    "scipy-ndimage": _scipy_ndimage,
    "opencv-filter2d": _opencv_filter2d,
    "dense-matrix": dense_matmul,
    "torch": _torch,
    "onnxruntime": _onnxruntime,
}


def conv_inputs(s: ConvShape, dtype=np.float32, seed: int = 0) -> Tuple[np.ndarray, np.ndarray]:
    """A random input and weight for shape ``s``, the same for every implementation."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(s.input_shape, dtype=np.float32).astype(dtype)
    w = rng.standard_normal(s.weight_shape, dtype=np.float32).astype(dtype)
    return x, w


# ----------------------------------------------------------------------------- timing


def measure(fns: Dict[str, Callable[[], object]], rounds: int = 5, sample_s: float = 0.02,
            baseline: Optional[str] = None) -> Dict[str, Tuple[float, float]]:
    """Median seconds per call of each function, and the median ratio to ``baseline``.

    Each function is called once to warm up, then ``rounds`` rounds run every function
    in turn (the order rotating each round); a sample calls a function as many times as
    fill ``sample_s``. With more than one thread each sample starts after a short pause:
    OpenBLAS, OpenMP (PyTorch) and ONNX Runtime workers spin for a while after a call and
    would otherwise steal a core from whichever implementation runs next. Returns ``{name: (median_seconds, median_ratio_to_baseline)}``
    (ratio ``nan`` without a baseline).
    """
    names = list(fns)
    number = {}
    for name in names:
        t0 = time.perf_counter()
        fns[name]()
        first = time.perf_counter() - t0
        number[name] = max(1, min(1000, int(sample_s / max(first, 1e-7))))
    samples: Dict[str, List[float]] = {n: [] for n in names}
    settle_s = 0.05 if current_threads() > 1 else 0.0
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            fn, k = fns[name], number[name]
            time.sleep(settle_s)
            t0 = time.perf_counter()
            for _ in range(k):
                fn()
            samples[name].append((time.perf_counter() - t0) / k)
    out = {}
    for name in names:
        ratio = math.nan
        if baseline in samples:
            ratio = float(np.median(np.array(samples[name]) / np.array(samples[baseline])))
        out[name] = (float(np.median(samples[name])), ratio)
    return out


# ----------------------------------------------------------------------------- cost of full connectivity

#: A matrix this large is out of any cache: the dense layer's estimates beyond the budget
#: use the bandwidth of a matvec on one at least this large (4x the 32 MiB L3 of the
#: EPYCs the reports come from). A matrix timed inside the cache would make them
#: several times optimistic.
OUT_OF_CACHE_BYTES = 128 << 20


def sweep_shape(size: int) -> ConvShape:
    """The sweep's conv layer on one size x size image."""
    return ConvShape(f"sweep-{size}x{size}", 1, SWEEP_C, size, size, SWEEP_K, SWEEP_R, SWEEP_R,
                     1, SWEEP_R // 2)


def sweep_costs(size: int, c: int = SWEEP_C, k: int = SWEEP_K, r: int = SWEEP_R,
                itemsize: int = 4) -> Dict[str, Layer]:
    """Parameters (with bias), weight bytes and MACs of the three layers on a size x size
    image with padding r // 2 (so the output is size x size too)."""
    return experiments.costs(c, k, (r, r), (size, size), itemsize)


def locally_connected(x: np.ndarray, w: np.ndarray, r: int) -> Callable[[], np.ndarray]:
    """convcore's locally connected layer with the conv weights ``w`` copied to every
    position (padding r // 2): the same output as the conv, untied weights."""
    size = x.shape[-1]
    lc_w = np.ascontiguousarray(np.broadcast_to(w, (size, size) + w.shape))
    return lambda: convcore.locally_connected2d(x, lc_w, padding=r // 2)


def matvec_bandwidth(nbytes: int = OUT_OF_CACHE_BYTES, rounds: int = 3) -> float:
    """Bytes per second a float32 NumPy matvec streams from a matrix of ``nbytes``
    (median of ``rounds`` calls after a warm-up)."""
    cols = 4096
    m = np.ones((max(1, nbytes // (4 * cols)), cols), np.float32)
    x = np.ones(cols, np.float32)
    seconds, _ = measure({"matvec": lambda: m @ x}, rounds=rounds, sample_s=0.0)["matvec"]
    return m.nbytes / seconds


def connectivity_sweep(sizes: Sequence[int] = SWEEP_SIZES, budget: int = DENSE_BUDGET,
                       rounds: int = 5, progress=None) -> List[Dict[str, Layer]]:
    """Measure the sweep (``convcore.experiments.connectivity``): the conv and locally
    connected layers, and the dense one (NumPy matmul on the conv's dense matrix) at
    each image size, interleaved. The dense layer is timed while its weights fit
    ``budget`` bytes; beyond, its time is its weight bytes over the bandwidth of the
    largest one timed when that one is out of cache (``OUT_OF_CACHE_BYTES``), else over
    that of a matvec on an out-of-cache matrix (memory-bound: one image, each weight
    read once)."""
    rows = []
    bandwidth, basis = math.nan, 0
    for size in sizes:
        x, w = conv_inputs(sweep_shape(size), seed=size)
        # Rebinding ``run`` frees the previous size's dense matrix before the next is built.
        run = experiments.connectivity(x[0], w, budget=budget)
        layers = run.costs
        for name, (seconds, _) in measure(run.runs, rounds=rounds).items():
            layers[name].seconds = seconds
        dense = layers["dense"]
        if "dense" in run.runs:
            bandwidth, basis = dense.weight_bytes / dense.seconds, dense.weight_bytes
        else:
            if basis < OUT_OF_CACHE_BYTES:
                del run
                bandwidth, basis = matvec_bandwidth(), OUT_OF_CACHE_BYTES
            dense.seconds, dense.estimated = dense.weight_bytes / bandwidth, True
        rows.append(layers)
        if progress:
            progress()
    return rows


@dataclasses.dataclass
class Permutation:
    """The permutation experiment's numbers (relative max differences)."""

    size: int
    dense_vs_conv: float  # the dense matrix reproduces the conv: max|Mx - conv(x)| / max|conv(x)|
    dense_permuted: float  # max|M[:, p] x[p] - M x| / max|M x|: 0 up to rounding
    conv_permuted: float  # max|conv(x[p]) - conv(x)| / max|conv(x)|: of order 1


def permutation_experiment(size: int = 16, seed: int = 0) -> Permutation:
    """Permute the pixels of an image (the same permutation in every channel): the dense
    layer with its columns permuted the same way gives the same output — it has no
    notion of which pixels are neighbours — while the conv's output changes entirely.
    Computed in float64 so that 'the same' means equal to rounding (~1e-16)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((SWEEP_C, size, size))
    w = rng.standard_normal((SWEEP_K, SWEEP_C, SWEEP_R, SWEEP_R))
    p = experiments.permutation(x, w, seed=seed)
    return Permutation(size=size, dense_vs_conv=p.dense_vs_conv / p.scale,
                       dense_permuted=p.dense_permuted / p.dense_scale,
                       conv_permuted=p.conv_changed / p.scale)


# ----------------------------------------------------------------------------- the command

#: The compact selection ``bench`` runs: the anchors of ANCHORS.md, or three small
#: layers with ``--quick``.
QUICK_SHAPES = ("lenet-conv1", "lenet-conv2", "lenetlike-conv1-b64")


def selected_shapes(quick: bool) -> List[ConvShape]:
    if quick:
        return [s for s in SHAPES if s.name in QUICK_SHAPES]
    return [s for s in SHAPES if s.anchor is not None]


@dataclasses.dataclass
class ConvResult:
    shape: ConvShape
    impl: str
    seconds: float = math.nan
    ratio: float = math.nan  # median of per-round time / convcore-auto's time
    skipped: str = ""

    @property
    def gflops(self) -> float:
        return self.shape.flops / self.seconds * 1e-9


def run_conv2d(shapes: Sequence[ConvShape], rounds: int, progress=None) -> List[ConvResult]:
    results = []
    for s in shapes:
        x, w = conv_inputs(s)
        fns, skipped = {}, []
        for name, make in CONV2D.items():
            try:
                fns[name] = make(s, x, w)
            except Unavailable as e:
                skipped.append(ConvResult(s, name, skipped=str(e)))
        for name, (seconds, ratio) in measure(fns, rounds=rounds,
                                              baseline="convcore-auto").items():
            results.append(ConvResult(s, name, seconds, ratio))
        results.extend(skipped)
        if progress:
            progress()
    return results


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.3g}"


def _bytes(n: float) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n:.0f} B"


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "–"
    ms = seconds * 1e3
    return f"{ms:.3g}" if ms < 1000 else f"{ms:,.0f}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |",
             "| " + " | ".join("---" if i == 0 else "---:" for i in range(len(header))) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def conv2d_tables(results: Sequence[ConvResult], peak: float) -> str:
    """GFLOP/s (% of peak) per shape and implementation, and time ratios to convcore-auto."""
    impls = [n for n in CONV2D if any(r.impl == n and not r.skipped for r in results)]
    shapes = list(dict.fromkeys(r.shape for r in results))
    by = {(r.shape.name, r.impl): r for r in results}

    def cell(s, n, what):
        r = by.get((s.name, n))
        if r is None or r.skipped:
            return "–"
        if what == "gflops":
            return f"{r.gflops:.3g} ({100 * r.gflops / peak:.0f}%)"
        return f"{r.ratio:.2f}"

    speed = _table(["shape"] + impls, [[s.name] + [cell(s, n, "gflops") for n in impls]
                                       for s in shapes])
    ratio = _table(["shape"] + impls, [[s.name] + [cell(s, n, "ratio") for n in impls]
                                       for s in shapes])
    skipped = sorted({f"- {r.impl}: {r.skipped}" for r in results if r.skipped
                      and "not installed" in r.skipped})
    text = (f"GFLOP/s (fraction of the {peak:.0f} GFLOP/s measured FMA peak):\n\n{speed}\n\n"
            f"Time relative to convcore-auto (median of per-round ratios; < 1 is faster):\n\n"
            f"{ratio}\n")
    if skipped:
        text += "\nNot measured:\n\n" + "\n".join(skipped) + "\n"
    return text


def connectivity_table(rows: Sequence[Dict[str, Layer]]) -> str:
    out = []
    for layers in rows:
        conv, lc, dense = layers["conv"], layers["locally connected"], layers["dense"]
        dense_t = _ms(dense.seconds) + (" (est.)" if dense.estimated else "")
        out.append([f"{conv.size}x{conv.size}", f"{conv.params:,}", f"{lc.params:,}",
                    f"{dense.params:,}", _bytes(conv.weight_bytes), _bytes(lc.weight_bytes),
                    _bytes(dense.weight_bytes), _si(conv.macs), _si(dense.macs),
                    _ms(conv.seconds), _ms(lc.seconds), dense_t])
    header = ["image", "conv params", "LC params", "dense params", "conv weights",
              "LC weights", "dense weights", "conv/LC MACs", "dense MACs", "conv ms", "LC ms",
              "dense ms"]
    return _table(header, out) + "\n"


def permutation_text(p: Permutation) -> str:
    return (f"On a {p.size}x{p.size} image with {SWEEP_C} channels (float64), pixels permuted "
            f"at random:\n\n"
            f"- the dense matrix is the conv: max|Mx - conv(x)| / max|conv(x)| = "
            f"{p.dense_vs_conv:.1e}\n"
            f"- dense layer, columns permuted like the pixels: max|M[:,p] x[p] - Mx| / max|Mx| "
            f"= {p.dense_permuted:.1e} (the same output: it cannot tell)\n"
            f"- conv layer on the permuted image: max|conv(x[p]) - conv(x)| / max|conv(x)| = "
            f"{p.conv_permuted:.2f} (a different output: it sees the spatial structure)\n")


def connectivity_figure(rows: Sequence[Dict[str, Layer]]):
    """Log-log curves of parameters, weight bytes, MACs and time against the image side
    (a matplotlib Figure). Measured points are filled; estimated times are hollow,
    joined to the last measured point by a dashed line that carries no marker there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4.2))
    # conv and locally connected have the same MACs: a larger marker keeps conv visible.
    colours = {"conv": "tab:blue", "locally connected": "tab:orange", "dense": "tab:red"}
    sizes = {"conv": 9, "locally connected": 5, "dense": 5}
    for ax, (field, title) in zip(axes, (("params", "parameters"),
                                         ("weight_bytes", "bytes of weights"),
                                         ("macs", "multiply-adds"), ("seconds", "time (s)"))):
        for kind, colour in colours.items():
            layers = [r[kind] for r in rows]
            pts = [(l.size, getattr(l, field), l.estimated) for l in layers
                   if not math.isnan(getattr(l, field))]
            measured = [(s, v) for s, v, e in pts if not (field == "seconds" and e)]
            estimated = [(s, v) for s, v, e in pts if field == "seconds" and e]
            if measured:
                ax.plot(*zip(*measured), "o-", ms=sizes[kind], color=colour, label=kind)
            if estimated:
                if measured:  # the dashed line starts at the last measured point
                    ax.plot(*zip(*([measured[-1]] + estimated)), "--", color=colour)
                ax.plot(*zip(*estimated), "o", color=colour, mfc="white",
                        label=f"{kind} (estimated)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("image side (pixels)")
        ax.set_title(title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"Cost of full connectivity: {SWEEP_C} -> {SWEEP_K} channels, "
                 f"{SWEEP_R}x{SWEEP_R}, padding {SWEEP_R // 2}")
    fig.tight_layout()
    return fig


def plot_connectivity(rows: Sequence[Dict[str, Layer]], path: str) -> None:
    """``connectivity_figure`` written to ``path`` (PNG)."""
    import matplotlib.pyplot as plt

    fig = connectivity_figure(rows)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_gflops(results: Sequence[ConvResult], peak: float, path: str) -> None:
    """GFLOP/s per shape (groups of bars) per implementation, the peak as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results if not r.skipped]
    shapes = list(dict.fromkeys(r.shape.name for r in done))
    impls = [n for n in CONV2D if any(r.impl == n for r in done)]
    by = {(r.shape.name, r.impl): r.gflops for r in done}
    width = 0.8 / max(1, len(impls))
    bars = len(shapes) * max(1, len(impls))
    fig, ax = plt.subplots(figsize=(min(18, max(8, 0.13 * bars + 4)), 5.5))
    tab20 = plt.get_cmap("tab20").colors  # the dark shades first: 20 distinct colours
    colours = tab20[0::2] + tab20[1::2]
    for i, impl in enumerate(impls):
        xs = [j + (i - (len(impls) - 1) / 2) * width for j in range(len(shapes))]
        ax.bar(xs, [by.get((s, impl), 0) for s in shapes], width, label=impl,
               color=colours[i % len(colours)])
    ax.axhline(peak, color="black", ls="--", lw=1, label=f"FMA peak {peak:.0f}")
    ax.set_xticks(range(len(shapes)))
    ax.set_xticklabels(shapes, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("GFLOP/s")
    ax.set_yscale("log")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.set_title("conv2d, float32, GFLOP/s per shape and implementation (log scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _progress(total: int, desc: str):
    """A tqdm bar when tqdm is installed, else one line per step on stderr."""
    try:
        from tqdm import tqdm

        bar = tqdm(total=total, desc=desc, file=sys.stderr)
        return bar.update, bar.close
    except ImportError:
        count = [0]

        def step(n: int = 1) -> None:
            count[0] += n
            print(f"{desc}: {count[0]}/{total}", file=sys.stderr)

        return step, lambda: None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bench`` subcommand's options (called by ``convcore.__main__``)."""
    parser.description = (
        "Time convcore's conv2d algorithms beside every installed peer (NumPy, SciPy, "
        "OpenCV, PyTorch, ONNX Runtime) as GFLOP/s and fractions of the measured FMA peak; "
        "then the cost of full connectivity (conv vs locally connected vs dense as the "
        "image grows) and the permutation experiment. Prints the tables; --out DIR also "
        "writes report.md and PNG plots (matplotlib).")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes and images (up to 32x32), few rounds, and a "
                             f"{QUICK_BUDGET >> 20} MiB dense budget (seconds, not minutes)")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads for convcore and every peer (default 1)")
    parser.add_argument("--out", metavar="DIR", default=None,
                        help="write report.md and the PNG plots into DIR")
    parser.add_argument("--budget-gib", type=float, default=DENSE_BUDGET / 2**30,
                        help="memory the dense layer's weights may take before its time "
                             "is estimated (default 2; --quick: "
                             f"{QUICK_BUDGET >> 20} MiB)")


def main(args: argparse.Namespace) -> int:
    """Run the selection, print the tables, write the report and plots into --out."""
    if args.threads < 1:
        raise SystemExit("--threads must be >= 1")
    shapes = selected_shapes(args.quick)
    sizes = SWEEP_SIZES[:3] if args.quick else SWEEP_SIZES
    budget = int(QUICK_BUDGET if args.quick else args.budget_gib * 2**30)
    rounds = 3 if args.quick else 7
    info = machine()
    with pinned_threads(args.threads):
        peak = peak_gflops(args.threads)
        step, close = _progress(len(shapes) + len(sizes), "bench")
        try:
            conv = run_conv2d(shapes, rounds, progress=step)
            sweep = connectivity_sweep(sizes, budget, rounds, progress=step)
        finally:
            close()
        perm = permutation_text(permutation_experiment())

    lines = [f"# convcore benchmark report: {machine_info.slug()}", "",
             "Machine: " + ", ".join(f"{k} {v}" for k, v in info.items()) + ".", "",
             peaks_text(args.threads), "",
             f"Threads: {args.threads} for convcore and every peer. float32, NCHW, output "
             f"allocated per call; medians of {rounds} interleaved rounds.", "",
             "## conv2d", "", conv2d_tables(conv, peak),
             "## The cost of full connectivity", "",
             f"A conv layer ({SWEEP_C} -> {SWEEP_K} channels, {SWEEP_R}x{SWEEP_R}, padding "
             f"{SWEEP_R // 2}), the equivalent locally connected layer (one filter bank per "
             f"position) and the equivalent fully connected layer (its dense matrix, NumPy "
             f"matmul), on one image. Parameters include the bias; float32 weights. The dense "
             f"layer is timed while its weights fit {_bytes(budget)}; beyond, its time is "
             f"its weight bytes over the bandwidth of the largest one timed, or of a NumPy "
             f"matvec on a {_bytes(OUT_OF_CACHE_BYTES)} matrix when that one fits in the "
             f"cache (est.).", "",
             connectivity_table(sweep),
             "## The permutation experiment", "", perm]
    report = "\n".join(lines)
    print(report)
    if args.out:
        os.makedirs(args.out, exist_ok=True)
        with open(os.path.join(args.out, "report.md"), "w") as f:
            f.write(report)
        try:
            plot_connectivity(sweep, os.path.join(args.out, "connectivity.png"))
            plot_gflops(conv, peak, os.path.join(args.out, "gflops.png"))
            written = "report.md, connectivity.png, gflops.png"
        except ImportError:
            written = "report.md (no plots: matplotlib is not installed)"
        print(f"wrote {written} into {args.out}", file=sys.stderr)
    return 0
