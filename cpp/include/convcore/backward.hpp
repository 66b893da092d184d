// convcore/backward.hpp — gradients of the forward calls (training), and the cross-entropy
// loss. Same layouts, parameter structs and errors as the forward calls (conv2d.hpp,
// linear.hpp, locally_connected.hpp, pool.hpp); `grad_output` has the forward output's
// shape. An output pointer that is nullptr is not computed (PyTorch's output_mask).
// Every result is the same bits for any thread count: each gradient element is summed in
// an order fixed by the sizes alone (weight gradients reduce the batch and pixels in
// fixed-size chunks, added in chunk order). Activations are not part of these passes:
// differentiate a fused activation with activation_backward first.
// Errors: value_error for bad sizes or arguments (the forward call's messages), a target
// outside [0, classes); std::bad_alloc; convcore::interrupted (outputs then unspecified).
#pragma once

#include <cstdint>

#include "convcore/conv2d.hpp"
#include "convcore/locally_connected.hpp"
#include "convcore/pool.hpp"
#include "convcore/types.hpp"

namespace convcore {

// grad_input[i] = grad_output[i] * act'(x[i]) for i < n, PyTorch's conventions at the
// kinks: relu'(0) = 0, leaky_relu'(0) = slope, abs'(0) = 0; at NaN relu passes the
// gradient, leaky_relu scales it by the slope, abs gives 0; sigmoid(a, b)' = a*y*(1-y).
void activation_backward(const Activation& act, const float* grad_output, const float* x,
                         float* grad_input, int64_t n);
void activation_backward(const Activation& act, const double* grad_output, const double* x,
                         double* grad_input, int64_t n);

// Cross-entropy of logits (N, classes) against integer targets (N), PyTorch's
// torch.nn.functional.cross_entropy: loss[i] = logsumexp(logits[i]) - logits[i, target[i]],
// computed in double. reduction: 0 none (per_sample[i] = loss[i], N values), 1 mean,
// 2 sum; returns the reduced loss (0 for none). grad (nullable) = d(reduced loss)/d(logits):
// softmax(logits[i]) - onehot(target[i]), divided by N for mean (for none: the gradient
// of the sum). per_sample may be nullptr unless reduction is none.
enum class Reduction : int { none = 0, mean, sum };
double cross_entropy(int64_t N, int64_t classes, const float* logits, const int64_t* target,
                     Reduction reduction, float* per_sample, float* grad);
double cross_entropy(int64_t N, int64_t classes, const double* logits, const int64_t* target,
                     Reduction reduction, double* per_sample, double* grad);

// Pooling: grad_input (N, C, H, W) of max_pool2d / avg_pool2d at x, fully overwritten.
// Max sends each output's gradient to its window's maximum (the first one in row-major
// window order on ties; the last NaN when there are NaNs, as PyTorch).
void max_pool2d_backward(const Pool2dParams& p, const float* grad_output, const float* x,
                         float* grad_input);
void max_pool2d_backward(const Pool2dParams& p, const double* grad_output, const double* x,
                         double* grad_input);
void avg_pool2d_backward(const Pool2dParams& p, const float* grad_output, float* grad_input);
void avg_pool2d_backward(const Pool2dParams& p, const double* grad_output,
                         double* grad_input);

// linear: grad_input (M, in) = grad_output (M, out) * w; grad_weight (out, in) =
// grad_output^T * x; grad_bias (out) = column sums of grad_output. Each nullable.
void linear_backward(int64_t M, int64_t in_features, int64_t out_features,
                     const float* grad_output, const float* x, const float* w,
                     float* grad_input, float* grad_weight, float* grad_bias);
void linear_backward(int64_t M, int64_t in_features, int64_t out_features,
                     const double* grad_output, const double* x, const double* w,
                     double* grad_input, double* grad_weight, double* grad_bias);

// conv2d (p as for the forward call; p.activation and p.algorithm are ignored):
//   grad_input (N, C, H, W): stride 1 — the forward conv2d (its `auto` choice of direct or
//     im2col) of grad_output with the flipped, transposed weights; larger strides — a
//     GEMM of the transposed weights with grad_output (read in place) into bounded
//     column blocks, scattered back (col2im) in bands of output rows, even bands then odd
//     ones so that no two tasks touch one element. Padding modes other than zeros compute
//     the gradient of the padded input and fold the padding back onto the cells it copies.
//   grad_weight (K, C/groups, R, S): a GEMM of grad_output with the gathered input (the
//     im2col gather), the batch and pixels reduced in blocks of at most 256 pixels of one
//     image, blocks grouped into a fixed number of chunks (a function of the sizes, at most
//     8) whose partial sums are added in order; one output channel per group (depthwise,
//     one-channel filtering), or at stride 1 up to 16 filters on one input channel per
//     group (LeNet-like first layers): dot products of rows instead (blocks of whole output
//     rows, chunked alike).
//   grad_bias (K): sums of grad_output per channel.
// x is needed for grad_weight only, w for grad_input only (may be nullptr otherwise).
void conv2d_backward(const Conv2dParams& p, const float* grad_output, const float* x,
                     const float* w, float* grad_input, float* grad_weight, float* grad_bias);
void conv2d_backward(const Conv2dParams& p, const double* grad_output, const double* x,
                     const double* w, double* grad_input, double* grad_weight,
                     double* grad_bias);
// Scratch bytes one conv2d_backward call takes beyond its arguments, on the current thread
// count (dtype_bytes 4 or 8; which gradients are computed): bounded by a few MiB plus a
// copy of the weights whatever the image size, except the padded input and its gradient
// for padding modes other than zeros (as the forward call).
int64_t conv2d_backward_workspace_bytes(const Conv2dParams& p, int dtype_bytes,
                                        bool grad_input, bool grad_weight);

// Locally connected layer (weight (Ho, Wo, K, C, R, S), bias (K, Ho, Wo)).
void locally_connected2d_backward(const LocallyConnected2dParams& p, const float* grad_output,
                                  const float* x, const float* w, float* grad_input,
                                  float* grad_weight, float* grad_bias);
void locally_connected2d_backward(const LocallyConnected2dParams& p, const double* grad_output,
                                  const double* x, const double* w, double* grad_input,
                                  double* grad_weight, double* grad_bias);

}  // namespace convcore
