// convcore/geometry.hpp — the geometry of a 2D convolution-shaped operation: the one
// problem type that conv2d (Conv2dParams), the locally connected layer
// (LocallyConnected2dParams) and their backward passes share. It holds the sizes,
// stride, padding, dilation and groups, validates them once (one rule, one message,
// whichever entry point — C++, the Python function or a layer — was used) and computes
// the output size.
//
//   input  (N, C, H, W)        weight (K, C / groups, R, S)        output (N, K, Ho, Wo)
//   Ho = (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1
//   Wo = (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1
//   (integer division, rounding down, as PyTorch)
//
// The backward passes of the same operation use the same geometry: grad_output has the
// output's shape (N, K, Ho, Wo), grad_input the input's, grad_weight the weight's.
#pragma once

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore {

struct ConvGeometry {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input: batch (>= 0), channels, rows, columns (>= 1)
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel rows, kernel columns (>= 1)
  int64_t stride_h = 1, stride_w = 1;  // step between output pixels, in input pixels (>= 1)
  // Rows/columns added on each side (>= 0). "same" output size (stride 1): the total
  // dilation_h * (R - 1) split as top = total / 2, bottom = the rest (likewise columns).
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;  // spacing of kernel taps (>= 1; 1 = dense)
  // Channel groups (>= 1, divides C and K): filter k sees only the C/groups input
  // channels of its group. groups == C == K is a depthwise convolution.
  int64_t groups = 1;

  int64_t out_h() const;  // Ho, formula above (validate first)
  int64_t out_w() const;  // Wo

  // The rules that do not depend on the input's batch and size (N, H, W): C, K, R, S >= 1,
  // stride and dilation >= 1, padding >= 0, groups >= 1 dividing C and K. What a layer
  // checks when it is built. Throws value_error, its message starting with `op` ("conv2d").
  void validate_parameters(const char* op) const;
  // validate_parameters, then N >= 0, H, W >= 1, the (dilated) kernel within the padded
  // input, and every size product of input, weight, output and work within 64 bits.
  void validate(const char* op) const;
};

}  // namespace convcore
