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
// Errors:
//   convcore::value_error for sizes < 1 (N may be 0: nothing to do, pointers may then be
//   null), non-positive stride or dilation, negative padding, a (dilated) kernel larger
//   than the padded input, size products overflowing 64 bits, a null input, weight or
//   output;
//   std::bad_alloc when the per-thread scratch (padded input rows, bounded) cannot be had;
//   std::system_error when the thread pool cannot start its threads;
//   convcore::interrupted when the interrupt handler (runtime.hpp) stops the call
//   (y is then partly written).
// Pointers need no particular alignment.
#pragma once

#include <cstdint>

#include "convcore/geometry.hpp"
#include "convcore/types.hpp"

namespace convcore {

// The shared geometry (geometry.hpp) with groups == 1, and the fused activation.
struct LocallyConnected2dParams : ConvGeometry {
  Activation activation{};

  // Throws value_error describing the first inconsistency (ConvGeometry::validate, groups
  // other than 1); checks every size product, the weight's included.
  void validate() const;
};

void locally_connected2d(const LocallyConnected2dParams& p, const float* x, const float* w,
                         const float* bias, float* y);
void locally_connected2d(const LocallyConnected2dParams& p, const double* x, const double* w,
                         const double* bias, double* y);

}  // namespace convcore
