"""Whole networks built from ``convcore.layers``.

``lenet5()``: LeNet-5 for 28x28 one-channel images (MNIST), in the form of the PyTorch
tutorials (ReLU and max pooling; the first convolution pads by 2 so that 28x28 images
give the original 32x32 geometry). Its ``state_dict`` keys are those of the
``torch.nn.Sequential`` of the same layers ("0.weight", "3.weight", "7.weight", ...).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import layers as L

__all__ = ["lenet5"]


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
