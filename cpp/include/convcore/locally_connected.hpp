// convcore/locally_connected.hpp — the locally connected layer: a convolution whose
// filters are not shared, one filter bank per output position (local, untied weights).
//
//   input  x : (N, C, H, W)               contiguous, NCHW
//   weight w : (Ho, Wo, K, C, R, S)       contiguous: the filters of output position (i, j)
//   bias   b : (K, Ho, Wo) or nullptr     one bias per output element of an image
//   output y : (N, K, Ho, Wo)             contiguous, fully overwritten
//
//   Ho = (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1
//   Wo = (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1
//
//   y[n,k,i,j] = act(b[k,i,j] + sum_{c,r,s} w[i,j,k,c,r,s] * x[n, c, i*stride_h + r*dilation_h
//                                                  - pad_top, j*stride_w + s*dilation_w - pad_left])
// with taps outside the input counting as zero. With w[i,j] the same for every (i, j)
// this is conv2d with groups = 1. Parameters: Ho*Wo*(K*C*R*S + K).
//
// Threads split the output positions; each output is one task's dot product, so
// results are bitwise the same for any thread count.
//
// Throws value_error for sizes < 1 (N may be 0: nothing to do), non-positive stride or
// dilation, negative padding, a kernel larger than the padded input, size products
// overflowing 64 bits; std::bad_alloc when the patch workspace cannot be allocated.
#pragma once

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore {

struct LocallyConnected2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel rows, kernel columns
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  Activation activation{};

  int64_t out_h() const;  // formula above (call validate() first)
  int64_t out_w() const;
  // Throws value_error describing the first inconsistency; checks every size product.
  void validate() const;
};

void locally_connected2d(const LocallyConnected2dParams& p, const float* x, const float* w,
                         const float* bias, float* y);
void locally_connected2d(const LocallyConnected2dParams& p, const double* x, const double* w,
                         const double* bias, double* y);

}  // namespace convcore
