"""convcore: fast 2D convolution on NumPy arrays, and the case for convolution layers.

Convolution layers beat fully connected ones: local connectivity and weight sharing keep
the parameter count independent of the image size, locality lets the layer see spatial
structure, and convolution is equivariant to translation. convcore computes them fast on
the CPU (a C++ core with scalar, AVX2 and AVX-512 kernels, chosen at run time, and a
thread pool) and shows the argument in numbers.

The functions below take and return NumPy arrays; ``convcore.layers`` holds the layers,
``convcore.signal``'s ``correlate2d`` / ``convolve2d`` are SciPy drop-ins, and
``convcore.testing`` the float64 reference, ``convcore.machine`` the CPU and its
measured FMA peaks. ``threadpoolctl.threadpool_limits`` limits
convcore's threads too (when threadpoolctl is installed).
"""

from __future__ import annotations

import numpy as np

from . import _core, _threadpoolctl, layers, machine, optim, train
from .functional import (
    abs,
    activation_backward,
    avg_pool2d,
    avg_pool2d_backward,
    conv2d,
    conv2d_backward,
    conv2d_dense_matrix,
    cross_entropy,
    cross_entropy_backward,
    leaky_relu,
    linear,
    linear_backward,
    locally_connected2d,
    locally_connected2d_backward,
    max_pool2d,
    max_pool2d_backward,
    relu,
    sigmoid,
    square,
    tanh,
)
from .signal import convolve2d, correlate2d

__version__: str = _core.version()

# Fail at import, with the reason, when CONVCORE_ISA, CONVCORE_NUM_THREADS or
# CONVCORE_OUTPUT_CACHE_MB is bad.
_core.get_isa()
_core.get_num_threads()
_core.get_output_cache_bytes()

# threadpoolctl.threadpool_limits(n) limits convcore's pool too (when it is installed).
_threadpoolctl.register()


def set_num_threads(n: int) -> None:
    """Set the number of threads every convcore call uses (n >= 1)."""
    from .functional import _int_param

    _core.set_num_threads(_int_param(n, "n", minimum=1))


def get_num_threads() -> int:
    """The number of threads convcore calls use (start value: CONVCORE_NUM_THREADS or the
    CPUs in this process's affinity mask)."""
    return _core.get_num_threads()

def set_winograd(enabled: bool) -> None:
    """Let ``algorithm="auto"`` choose Winograd (True, the default) or not (False).

    Winograd does fewer multiplications than the other algorithms but rounds more: its
    error bound is ``c * u * sum|x||w|`` with a larger constant ``c`` than the summation
    bound of ``direct`` and ``im2col`` (:doc:`/algorithms`). Switched off, ``auto`` keeps
    to those two; ``algorithm="winograd"`` still runs it when asked for by name. The
    environment variable ``CONVCORE_WINOGRAD=0`` switches it off at start. Layers that
    have already packed their weights (eval mode) keep the algorithm they chose.

    Parameters
    ----------
    enabled : bool
        Whether ``auto`` may pick Winograd (float32 3x3 stride-1 layers only).

    Examples
    --------
    >>> import convcore
    >>> convcore.set_winograd(False)
    >>> convcore.get_winograd()
    False
    >>> convcore.set_winograd(True)
    """
    if not isinstance(enabled, (bool, np.bool_)):
        raise TypeError(f"enabled must be a bool, got {type(enabled).__name__}")
    _core.set_winograd(bool(enabled))


def get_winograd() -> bool:
    """Whether ``algorithm="auto"`` may choose Winograd (see :func:`set_winograd`)."""
    return _core.get_winograd()


def set_output_cache_bytes(nbytes: int) -> None:
    """Set how many bytes of dead outputs convcore keeps for its next outputs.

    Writing into fresh memory costs a page fault per 4 KiB page the first time (a 16 MiB
    output: 15-21 ms where recycled memory takes 2.5-5 ms on the development machine), so
    the memory of outputs of at least 256 KiB that are freed is kept, up to this many
    bytes in all, and handed to the next output it fits. The default, 256 MiB, holds a
    Dask worker's share of a large image's output blocks (:doc:`/api/dask`); the
    environment variable ``CONVCORE_OUTPUT_CACHE_MB`` sets the start value in MiB. Lower
    it (0 keeps nothing) where a process must stay within a tight memory limit: the
    excess is freed at once. The kept memory counts in the process's resident size.

    Parameters
    ----------
    nbytes : int
        From 0 to 2**50.

    Raises
    ------
    TypeError
        If ``nbytes`` is not an integer.
    ValueError
        If ``nbytes`` is negative or above 2**50.

    Examples
    --------
    >>> import convcore
    >>> previous = convcore.get_output_cache_bytes()
    >>> convcore.set_output_cache_bytes(64 << 20)
    >>> convcore.get_output_cache_bytes()
    67108864
    >>> convcore.set_output_cache_bytes(previous)
    """
    from .functional import _int_param

    nbytes = _int_param(nbytes, "nbytes", minimum=0)
    if nbytes > 2**50:  # beyond int64 the binding would raise a TypeError
        raise ValueError(f"set_output_cache_bytes: nbytes must be from 0 to 2**50, got {nbytes}")
    _core.set_output_cache_bytes(nbytes)


def get_output_cache_bytes() -> int:
    """The most bytes of dead outputs kept for reuse (see :func:`set_output_cache_bytes`)."""
    return _core.get_output_cache_bytes()


def info() -> dict:
    """Version, ISA in use, ISAs compiled and supported, threads, compiler and flags."""
    return {
        "version": __version__,
        "isa": _core.get_isa(),
        "isas_compiled": _core.isas_compiled(),
        "isas_supported": _core.isas_supported(),
        "threads": _core.get_num_threads(),
        "winograd": _core.get_winograd(),
        "output_cache_bytes": _core.get_output_cache_bytes(),
        "compiler": _core.compiler(),
        "flags": _core.cxx_flags(),
    }


__all__ = [
    "abs",
    "activation_backward",
    "avg_pool2d",
    "avg_pool2d_backward",
    "conv2d",
    "conv2d_backward",
    "conv2d_dense_matrix",
    "convolve2d",
    "correlate2d",
    "cross_entropy",
    "cross_entropy_backward",
    "get_num_threads",
    "get_output_cache_bytes",
    "get_winograd",
    "info",
    "layers",
    "leaky_relu",
    "linear",
    "linear_backward",
    "locally_connected2d",
    "locally_connected2d_backward",
    "machine",
    "max_pool2d",
    "max_pool2d_backward",
    "optim",
    "relu",
    "set_num_threads",
    "set_output_cache_bytes",
    "set_winograd",
    "sigmoid",
    "square",
    "tanh",
    "train",
]
