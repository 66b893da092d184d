"""Whole networks built from ``convcore.layers``.

``lenet5()``: LeNet-5 for 28x28 one-channel images (MNIST), in the form of the PyTorch
tutorials (ReLU and max pooling; the first convolution pads by 2 so that 28x28 images
give the original 32x32 geometry). Its ``state_dict`` keys are those of the
``torch.nn.Sequential`` of the same layers ("0.weight", "3.weight", "7.weight", ...).

``resnet18()``, ``resnet50()`` and ``mobilenet_v2()``: torchvision's architectures
(ResNet v1.5: the stride of a bottleneck is in its 3x3 convolution), built from named
``Sequential``s so that their ``state_dict`` keys and shapes are torchvision's
(``conv1.weight``, ``layer1.0.bn1.running_mean``, ``features.1.conv.0.0.weight``,
``classifier.1.bias``, ...): ``model.load_state_dict(torchvision_model.state_dict())``
loads pretrained weights (tensors or arrays). They start in training mode, as PyTorch
models do; call ``eval()`` for inference, or ``fuse()`` for a copy with every batch
normalisation folded into its convolution and the ReLUs fused. ``summary(input_shape)``
lists their top-level parts.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Iterator, List, Optional, Tuple

import numpy as np

from . import layers as L

__all__ = ["InvertedResidual", "ResNetBlock", "lenet5", "mobilenet_v2", "resnet18", "resnet50"]


def _seeds(seed: Optional[int]) -> Iterator[Optional[int]]:
    """One independent seed per layer (None: fresh entropy for each)."""
    if seed is None:
        while True:
            yield None
    ss = np.random.SeedSequence(seed)
    while True:
        yield int(ss.spawn(1)[0].generate_state(1)[0])


def lenet5(num_classes: int = 10, *, dtype: Any = np.float32,
           seed: Optional[int] = None) -> L.Sequential:
    """conv 1->6 5x5 pad 2, ReLU, max pool 2, conv 6->16 5x5, ReLU, max pool 2, flatten,
    dense 400->120, ReLU, dense 120->84, ReLU, dense 84->num_classes (61,706 parameters
    for 10 classes). ``seed`` initialises every layer (PyTorch's rule), each from its
    own stream."""
    seeds = np.random.SeedSequence(seed).generate_state(5) if seed is not None else [None] * 5
    s = [None if v is None else int(v) for v in seeds]
    return L.Sequential(
        L.Conv2d(1, 6, 5, padding=2, dtype=dtype, seed=s[0]), L.ReLU(), L.MaxPool2d(2),
        L.Conv2d(6, 16, 5, dtype=dtype, seed=s[1]), L.ReLU(), L.MaxPool2d(2),
        L.Flatten(),
        L.Dense(400, 120, dtype=dtype, seed=s[2]), L.ReLU(),
        L.Dense(120, 84, dtype=dtype, seed=s[3]), L.ReLU(),
        L.Dense(84, num_classes, dtype=dtype, seed=s[4]))


# ----------------------------------------------------------------------------- ResNet


class ResNetBlock(L.Residual):
    """A ResNet block as torchvision's ``BasicBlock`` / ``Bottleneck``: a
    :class:`convcore.layers.Residual` with ReLU after the add, whose block's layers are
    named as the block's own (``conv1``, ``bn1``, ...; attributes too) and whose
    projection shortcut is ``downsample`` (None when the shortcut is the identity)."""

    def _children(self) -> List[Tuple[str, L.Module]]:
        out = list(self.block.named_children())
        return out + ([("downsample", self.shortcut)] if self.shortcut is not None else [])

    def __getattr__(self, name: str) -> Any:
        # torchvision's attributes: block.conv1, block.downsample (None without one)
        if name == "downsample" and "shortcut" in self.__dict__:
            return self.__dict__["shortcut"]
        block = self.__dict__.get("block")
        if block is not None and name in block.__dict__.get("_names", ()):
            return getattr(block, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")


def _conv_bn(cin: int, cout: int, k: int, stride: int, padding: int, dtype: Any,
             seeds: Iterator[Optional[int]], groups: int = 1) -> List[L.Module]:
    return [L.Conv2d(cin, cout, k, stride, padding, groups=groups, bias=False, dtype=dtype,
                     seed=next(seeds)),
            L.BatchNorm2d(cout, dtype=dtype)]


def _resnet_block(cin: int, width: int, stride: int, bottleneck: bool, dtype: Any,
                  seeds: Iterator[Optional[int]]) -> ResNetBlock:
    expansion = 4 if bottleneck else 1
    cout = width * expansion
    if bottleneck:   # 1x1 reduce, 3x3 (with the stride: v1.5), 1x1 expand
        c1, b1 = _conv_bn(cin, width, 1, 1, 0, dtype, seeds)
        c2, b2 = _conv_bn(width, width, 3, stride, 1, dtype, seeds)
        c3, b3 = _conv_bn(width, cout, 1, 1, 0, dtype, seeds)
        body = OrderedDict([("conv1", c1), ("bn1", b1), ("relu1", L.ReLU()), ("conv2", c2),
                            ("bn2", b2), ("relu2", L.ReLU()), ("conv3", c3), ("bn3", b3)])
    else:
        c1, b1 = _conv_bn(cin, width, 3, stride, 1, dtype, seeds)
        c2, b2 = _conv_bn(width, width, 3, 1, 1, dtype, seeds)
        body = OrderedDict([("conv1", c1), ("bn1", b1), ("relu", L.ReLU()), ("conv2", c2),
                            ("bn2", b2)])
    shortcut = None
    if stride != 1 or cin != cout:
        shortcut = L.Sequential(*_conv_bn(cin, cout, 1, stride, 0, dtype, seeds))
    return ResNetBlock(L.Sequential(body), shortcut, activation="relu")


def _resnet(blocks: Tuple[int, ...], bottleneck: bool, num_classes: int, dtype: Any,
            seed: Optional[int]) -> L.Sequential:
    seeds = _seeds(seed)
    conv1, bn1 = _conv_bn(3, 64, 7, 2, 3, dtype, seeds)
    parts: "OrderedDict[str, L.Module]" = OrderedDict(
        [("conv1", conv1), ("bn1", bn1), ("relu", L.ReLU()), ("maxpool", L.MaxPool2d(3, 2, 1))])
    cin = 64
    for i, (n, width) in enumerate(zip(blocks, (64, 128, 256, 512))):
        stage = []
        for j in range(n):
            stage.append(_resnet_block(cin, width, 2 if (i > 0 and j == 0) else 1,
                                       bottleneck, dtype, seeds))
            cin = width * (4 if bottleneck else 1)
        parts[f"layer{i + 1}"] = L.Sequential(*stage)
    parts["avgpool"] = L.AdaptiveAvgPool2d((1, 1))
    parts["flatten"] = L.Flatten()
    parts["fc"] = L.Dense(cin, num_classes, dtype=dtype, seed=next(seeds))
    return L.Sequential(parts)


def resnet18(num_classes: int = 1000, *, dtype: Any = np.float32,
             seed: Optional[int] = None) -> L.Sequential:
    """ResNet-18 as ``torchvision.models.resnet18``: a 7x7 stem, max pooling, four stages
    of two basic blocks (64, 128, 256, 512 channels), global average pooling and a fully
    connected layer (11,689,512 parameters for 1000 classes; 1.82 GMACs at 224x224).
    Convolutions are initialised by PyTorch's default rule from ``seed``; BatchNorm2d to
    weight 1, bias 0.

    Examples
    --------
    >>> from convcore import models
    >>> net = models.resnet18(num_classes=10, seed=0)
    >>> net.num_params, list(net.state_dict())[:3]
    (11181642, ['conv1.weight', 'bn1.weight', 'bn1.bias'])
    >>> net.eval()(np.zeros((1, 3, 64, 64), np.float32)).shape
    (1, 10)
    """
    return _resnet((2, 2, 2, 2), False, num_classes, dtype, seed)


def resnet50(num_classes: int = 1000, *, dtype: Any = np.float32,
             seed: Optional[int] = None) -> L.Sequential:
    """ResNet-50 as ``torchvision.models.resnet50`` (v1.5): four stages of 3, 4, 6, 3
    bottleneck blocks (1x1, 3x3 with the stride, 1x1 with 4x the width; 25,557,032
    parameters for 1000 classes; 4.09 GMACs at 224x224). Initialised as
    :func:`resnet18`."""
    return _resnet((3, 4, 6, 3), True, num_classes, dtype, seed)


# ----------------------------------------------------------------------------- MobileNetV2


class InvertedResidual(L.Residual):
    """A MobileNetV2 block with its identity shortcut, as torchvision's
    ``InvertedResidual`` where ``use_res_connect`` holds: a
    :class:`convcore.layers.Residual` whose block is named ``conv``. (The blocks without
    a shortcut are a ``Sequential`` holding ``conv``.)"""

    def _children(self) -> List[Tuple[str, L.Module]]:
        return [("conv", self.block)]


def _conv_bn_relu6(cin: int, cout: int, k: int, stride: int, dtype: Any,
                   seeds: Iterator[Optional[int]], groups: int = 1) -> L.Sequential:
    """torchvision's Conv2dNormActivation: conv (no bias, padding (k-1)/2), BN, ReLU6."""
    return L.Sequential(*_conv_bn(cin, cout, k, stride, (k - 1) // 2, dtype, seeds, groups),
                        L.ReLU6())


def _make_divisible(v: float, divisor: int = 8) -> int:
    """torchvision's channel rounding: to a multiple of 8, never down by more than 10%."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def mobilenet_v2(num_classes: int = 1000, *, width_mult: float = 1.0, dropout: float = 0.2,
                 dtype: Any = np.float32, seed: Optional[int] = None) -> L.Sequential:
    """MobileNetV2 as ``torchvision.models.mobilenet_v2``: a 3x3 stride-2 stem, 17 inverted
    residual blocks (1x1 expansion by t, 3x3 depthwise, 1x1 linear projection; an
    identity shortcut where stride is 1 and the channels stay), a 1x1 convolution to
    1280 channels, global average pooling, dropout and a fully connected layer
    (3,504,872 parameters for 1000 classes; 0.30 GMACs at 224x224). Activations are
    ReLU6. Initialised as :func:`resnet18`; ``dropout`` seeded from ``seed``.

    Examples
    --------
    >>> from convcore import models
    >>> net = models.mobilenet_v2(seed=0)
    >>> net.num_params, list(net.state_dict())[-2:]
    (3504872, ['classifier.1.weight', 'classifier.1.bias'])
    """
    seeds = _seeds(seed)
    settings = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                (6, 160, 3, 2), (6, 320, 1, 1)]   # expansion t, channels c, repeats n, stride s
    cin = _make_divisible(32 * width_mult)
    last = _make_divisible(1280 * max(1.0, width_mult))
    features: List[L.Module] = [_conv_bn_relu6(3, cin, 3, 2, dtype, seeds)]
    for t, c, n, s in settings:
        cout = _make_divisible(c * width_mult)
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = int(round(cin * t))
            layers: List[L.Module] = []
            if t != 1:
                layers.append(_conv_bn_relu6(cin, hidden, 1, 1, dtype, seeds))
            layers.append(_conv_bn_relu6(hidden, hidden, 3, stride, dtype, seeds, groups=hidden))
            layers += _conv_bn(hidden, cout, 1, 1, 0, dtype, seeds)
            body = L.Sequential(*layers)
            if stride == 1 and cin == cout:
                features.append(InvertedResidual(body))
            else:
                features.append(L.Sequential(OrderedDict([("conv", body)])))
            cin = cout
    features.append(_conv_bn_relu6(cin, last, 1, 1, dtype, seeds))
    return L.Sequential(OrderedDict([
        ("features", L.Sequential(*features)),
        ("avgpool", L.AdaptiveAvgPool2d((1, 1))),
        ("flatten", L.Flatten()),
        ("classifier", L.Sequential(L.Dropout(dropout, seed=next(seeds)),
                                    L.Dense(last, num_classes, dtype=dtype, seed=next(seeds)))),
    ]))
