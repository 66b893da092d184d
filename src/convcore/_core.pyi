# Typing stub for the compiled module convcore._core (cpp/bindings/module.cpp).
# tests/test_package.py checks that it names exactly the module's functions.
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

def empty(shape: Sequence[int], dtype: np.dtype) -> NDArray: ...
def set_output_cache_bytes(nbytes: int) -> None: ...
def get_output_cache_bytes() -> int: ...
def output_cache_stats() -> tuple[int, int, int, int]: ...
def conv2d(
    input: NDArray[np.floating],
    weight: NDArray[np.floating],
    bias: NDArray[np.floating] | None,
    out: NDArray[np.floating],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    padding_mode: str,
    activation: str,
    alpha: float,
    beta: float,
    algorithm: str,
) -> None: ...
class Conv2dOp:
    """A convolution with its weights packed once; run(input, out) per batch."""

    def __init__(
        self,
        weight: NDArray[np.floating],
        bias: NDArray[np.floating] | None,
        input_chw: tuple[int, int, int],
        stride: tuple[int, int],
        padding: tuple[int, int, int, int],
        dilation: tuple[int, int],
        groups: int,
        padding_mode: str,
        activation: str,
        alpha: float,
        beta: float,
        algorithm: str,
    ) -> None: ...
    def run(self, input: NDArray[np.floating], out: NDArray[np.floating]) -> None: ...
    @property
    def algorithm(self) -> str: ...

def activate(
    input: NDArray[np.floating], out: NDArray[np.floating], activation: str, alpha: float, beta: float
) -> None: ...
def conv2d_output_shape(
    input_shape: tuple[int, int, int, int],
    weight_shape: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    padding_mode: str,
) -> tuple[int, int, int, int]: ...
def conv2d_check_parameters(
    in_channels: int,
    out_channels: int,
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    padding_mode: str,
) -> None: ...
def locally_connected2d_output_shape(
    input_shape: tuple[int, int, int, int],
    kcrs: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
) -> tuple[int, int, int, int]: ...
def pool2d_output_shape(
    input_shape: tuple[int, int, int, int],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
    avg: bool,
) -> tuple[int, int, int, int]: ...
def pool2d_check_parameters(
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    avg: bool,
) -> None: ...
def algorithms() -> list[str]: ...
def gemm_blocking() -> dict[str, int]: ...
def choose_algorithm(
    nchw: tuple[int, int, int, int],
    krs_groups: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    algorithm: str,
    dtype_bytes: int = ...,
) -> str: ...
def direct_layout(
    nchw: tuple[int, int, int, int],
    krs_groups: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
) -> str: ...
def set_direct_layout(name: str) -> None: ...
def get_direct_layout() -> str: ...
def linear(
    input: NDArray[np.floating],
    weight: NDArray[np.floating],
    bias: NDArray[np.floating] | None,
    out: NDArray[np.floating],
    activation: str,
    alpha: float,
    beta: float,
) -> None: ...
class LinearOp:
    """A fully connected layer with its weights packed once; run(input, out) per batch."""

    def __init__(
        self,
        weight: NDArray[np.floating],
        bias: NDArray[np.floating] | None,
        activation: str,
        alpha: float,
        beta: float,
    ) -> None: ...
    def run(self, input: NDArray[np.floating], out: NDArray[np.floating]) -> None: ...
    @property
    def in_features(self) -> int: ...
    @property
    def out_features(self) -> int: ...

def conv2d_workspace_bytes(
    nchw: tuple[int, int, int, int],
    krs_groups: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    padding_mode: str,
    algorithm: str,
    dtype_bytes: int,
) -> int: ...
def set_num_threads(n: int) -> None: ...
def get_num_threads() -> int: ...
def set_thread_limit(n: int) -> None: ...
def get_thread_limit() -> int: ...
def get_isa() -> str: ...
def set_isa(name: str) -> None: ...
def set_winograd(on: bool) -> None: ...
def get_winograd() -> bool: ...
def isas_compiled() -> list[str]: ...
def isas_supported() -> list[str]: ...
def kernels() -> list[dict[str, str | int]]: ...
def version() -> str: ...
def compiler() -> str: ...
def cxx_flags() -> str: ...
def locally_connected2d(
    input: NDArray[np.floating],
    weight: NDArray[np.floating],
    bias: NDArray[np.floating] | None,
    out: NDArray[np.floating],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    activation: str,
    alpha: float,
    beta: float,
) -> None: ...
def max_pool2d(
    input: NDArray[np.floating],
    out: NDArray[np.floating],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
) -> None: ...
def avg_pool2d(
    input: NDArray[np.floating],
    out: NDArray[np.floating],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> None: ...
def measure_peak_gflops(threads: int = 1, seconds: float = 0.2, isa: str = "") -> float: ...
def measure_gemm_kernel_gflops(seconds: float = 0.2, isa: str = "") -> float: ...

# Gradients (cpp/bindings/backward.cpp); None outputs are not computed.
def activation_backward(
    grad_output: NDArray[np.floating],
    input: NDArray[np.floating],
    grad_input: NDArray[np.floating],
    activation: str,
    alpha: float,
    beta: float,
) -> None: ...
def cross_entropy(
    logits: NDArray[np.floating],
    target: NDArray[np.int64],
    per_sample: NDArray[np.floating] | None,
    grad: NDArray[np.floating] | None,
    reduction: str,
) -> float: ...
def max_pool2d_backward(
    grad_output: NDArray[np.floating],
    input: NDArray[np.floating],
    grad_input: NDArray[np.floating],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    ceil_mode: bool,
) -> None: ...
def avg_pool2d_backward(
    grad_output: NDArray[np.floating],
    grad_input: NDArray[np.floating],
    kernel_size: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    ceil_mode: bool,
    count_include_pad: bool,
) -> None: ...
def linear_backward(
    grad_output: NDArray[np.floating],
    input: NDArray[np.floating],
    weight: NDArray[np.floating],
    grad_input: NDArray[np.floating] | None,
    grad_weight: NDArray[np.floating] | None,
    grad_bias: NDArray[np.floating] | None,
) -> None: ...
def conv2d_backward(
    grad_output: NDArray[np.floating],
    input: NDArray[np.floating],
    weight: NDArray[np.floating],
    grad_input: NDArray[np.floating] | None,
    grad_weight: NDArray[np.floating] | None,
    grad_bias: NDArray[np.floating] | None,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
    padding_mode: str,
) -> None: ...
def conv2d_backward_workspace_bytes(
    nchw: tuple[int, int, int, int],
    krs_groups: tuple[int, int, int, int],
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
    padding_mode: str,
    dtype_bytes: int,
    grad_input: bool,
    grad_weight: bool,
) -> int: ...
def locally_connected2d_backward(
    grad_output: NDArray[np.floating],
    input: NDArray[np.floating],
    weight: NDArray[np.floating],
    grad_input: NDArray[np.floating] | None,
    grad_weight: NDArray[np.floating] | None,
    grad_bias: NDArray[np.floating] | None,
    stride: tuple[int, int],
    padding: tuple[int, int, int, int],
    dilation: tuple[int, int],
) -> None: ...
