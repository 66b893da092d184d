// convcore/pool.hpp — 2D max and average pooling with PyTorch's semantics
// (torch.nn.functional.max_pool2d / avg_pool2d).
//
//   input  x : (N, C, H, W)     contiguous, NCHW (each plane pooled on its own)
//   output y : (N, C, Ho, Wo)   contiguous, fully overwritten
//
//   window size R x S, stride (stride_h, stride_w) (PyTorch's default is the window
//   size), zero-cost implicit padding pad_h / pad_w on both sides, dilation (max only).
//   Ho = floor_or_ceil((H + 2*pad_h - dilation_h*(R - 1) - 1) / stride_h) + 1, rounding
//   up when ceil_mode; in ceil_mode the last window must start inside the input or the
//   left padding: if (Ho - 1) * stride_h >= H + pad_h, Ho is one less. Likewise Wo.
//
//   max: y[n,c,i,j] = max over the window's taps inside the input (padding never wins);
//        a NaN in the window gives NaN.
//   avg: y[n,c,i,j] = sum over the window's taps inside the input / divisor, with
//        divisor = (window clipped to the padded input [-pad, H + pad)) when
//        count_include_pad, else the number of taps inside the input. A window of
//        ceil_mode that reaches past the right padding is clipped, as PyTorch does.
//
// Errors:
//   convcore::value_error (PyTorch's conditions) for R, S, stride or dilation < 1,
//   negative padding, padding larger than half the window (pad_h > R / 2 or
//   pad_w > S / 2), H or W < 1 (N and C may be 0: nothing to do), an output smaller than
//   1 x 1, dilation != 1 for avg_pool2d, size products overflowing 64 bits, a null input
//   or output;
//   std::bad_alloc when the per-thread scratch row cannot be had;
//   std::system_error when the thread pool cannot start its threads;
//   convcore::interrupted when the interrupt handler (runtime.hpp) stops the call
//   (y is then partly written).
// Pointers need no particular alignment.
#pragma once

#include <cstdint>

namespace convcore {

struct Pool2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t R = 1, S = 1;                // window rows, columns
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_h = 0, pad_w = 0;        // on both sides
  int64_t dilation_h = 1, dilation_w = 1;
  bool ceil_mode = false;
  bool count_include_pad = true;       // avg only

  int64_t out_h() const;  // formula above (call validate() first)
  int64_t out_w() const;
  // Throws value_error describing the first inconsistency, its message starting with `op`
  // ("max_pool2d", "avg_pool2d": avg also needs dilation 1; "pool2d": the rules both
  // share); checks every size product.
  void validate(const char* op = "pool2d") const;
  // The rules that do not need the input (a pooling layer's): window, stride, dilation,
  // padding (>= 0, at most half the window), avg's dilation 1.
  void validate_parameters(const char* op = "pool2d") const;
};

void max_pool2d(const Pool2dParams& p, const float* x, float* y);
void max_pool2d(const Pool2dParams& p, const double* x, double* y);
void avg_pool2d(const Pool2dParams& p, const float* x, float* y);   // dilation must be 1
void avg_pool2d(const Pool2dParams& p, const double* x, double* y);

}  // namespace convcore
