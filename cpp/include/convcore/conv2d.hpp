// convcore/conv2d.hpp — 2D convolution (deep-learning convention: cross-correlation).
//
//   input  x : (N, C, H, W)            contiguous, NCHW
//   weight w : (K, C / groups, R, S)   contiguous
//   bias   b : (K) or nullptr
//   output y : (N, K, Ho, Wo)          contiguous, fully overwritten
//
//   Ho = (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1
//   Wo = (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1
//
//   y[n,k,i,j] = act(b[k] + sum_{c,r,s} w[k,c,r,s] * xp[n, g*C/groups + c,
//                                            i*stride_h + r*dilation_h,
//                                            j*stride_w + s*dilation_w])
// with g = k / (K / groups) and xp the input padded by padding_mode.
//
// Throws value_error for inconsistent sizes, non-positive stride/dilation/groups,
// negative padding, groups not dividing C and K, a kernel larger than the padded input,
// reflect padding >= the input size, circular padding > the input size; std::bad_alloc
// when the workspace cannot be allocated. N == 0 is valid and does nothing.
#pragma once

#include <cstdint>
#include <memory>

#include "convcore/types.hpp"

namespace convcore {

enum class PaddingMode : int { zeros = 0, reflect, replicate, circular };
enum class Algorithm : int { automatic = 0, direct, im2col };

PaddingMode padding_mode_from_name(const char* name);  // throws value_error
Algorithm algorithm_from_name(const char* name);       // "auto", "direct", "im2col"
const char* algorithm_name(Algorithm a);

struct Conv2dParams {
  int64_t N = 1, C = 1, H = 1, W = 1;  // input
  int64_t K = 1, R = 1, S = 1;         // output channels, kernel rows, kernel columns
  int64_t stride_h = 1, stride_w = 1;
  int64_t pad_top = 0, pad_bottom = 0, pad_left = 0, pad_right = 0;
  int64_t dilation_h = 1, dilation_w = 1;
  int64_t groups = 1;
  PaddingMode padding_mode = PaddingMode::zeros;
  Activation activation{};
  Algorithm algorithm = Algorithm::automatic;

  int64_t out_h() const;  // formula above (call validate() first)
  int64_t out_w() const;
  // Throws value_error describing the first inconsistency; checks every size product.
  void validate() const;
};

// The algorithm `automatic` resolves to for these parameters (never `automatic`).
Algorithm choose_algorithm(const Conv2dParams& p);

// Scratch bytes one conv2d call with these parameters takes on the current thread count,
// for elements of dtype_bytes (4: float, 8: double): for im2col, one gathered B block of
// at most 256 KiB per thread (bounded whatever the image size); for padding modes other
// than zeros, plus the padded copy of the input. 0 for the direct algorithm's own use.
int64_t conv2d_workspace_bytes(const Conv2dParams& p, int dtype_bytes);

// A convolution layer's operator: validates the parameters and packs the weights once
// (construction), then runs any number of batches (run). `p.N` is only a hint for the
// choice of algorithm; `run` takes the batch size. The weights and bias are copied, so
// the caller's arrays may change afterwards. `run` is const and safe to call from many
// threads at once. T is float or double.
template <class T>
class Conv2dOp {
 public:
  Conv2dOp(const Conv2dParams& p, const T* weight, const T* bias);
  ~Conv2dOp();
  Conv2dOp(Conv2dOp&&) noexcept;
  Conv2dOp& operator=(Conv2dOp&&) noexcept;

  // y (N, K, Ho, Wo) = conv2d(x (N, C, H, W)); N == 0 does nothing.
  void run(int64_t N, const T* x, T* y) const;

  const Conv2dParams& params() const;
  Algorithm algorithm() const;  // the algorithm chosen at construction

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
extern template class Conv2dOp<float>;
extern template class Conv2dOp<double>;

// One call: Conv2dOp(p, w, bias).run(p.N, x, y).
void conv2d(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y);
void conv2d(const Conv2dParams& p, const double* x, const double* w, const double* bias,
            double* y);

}  // namespace convcore
