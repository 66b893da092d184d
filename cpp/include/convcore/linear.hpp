// convcore/linear.hpp — the fully connected layer, as torch.nn.functional.linear.
//
//   input  x : (M, in)     contiguous, row-major (M = all leading dimensions)
//   weight w : (out, in)   contiguous
//   bias   b : (out) or nullptr
//   output y : (M, out)    contiguous, fully overwritten
//
//   y[i, j] = act(b[j] + sum_k x[i, k] * w[j, k])
//
// Computed by the same packed GEMM as conv2d's im2col algorithm: the weight is packed
// once into the micro-kernel's B panels (LinearOp), the input is packed per block.
// Throws value_error for negative sizes, null pointers or overflowing sizes;
// std::bad_alloc when memory cannot be had; convcore::interrupted when the interrupt
// handler (runtime.hpp) stops the call. M == 0 or out == 0 does nothing; in == 0 gives
// y = act(bias) (an empty sum).
#pragma once

#include <cstdint>
#include <memory>

#include "convcore/types.hpp"

namespace convcore {

// A fully connected layer's operator: packs the weights once (construction), then runs
// any number of batches. Weight and bias are copied; `run` is const and safe to call
// from many threads at once. T is float or double.
template <class T>
class LinearOp {
 public:
  LinearOp(int64_t in_features, int64_t out_features, const T* weight, const T* bias,
           const Activation& act = {});
  ~LinearOp();
  LinearOp(LinearOp&&) noexcept;
  LinearOp& operator=(LinearOp&&) noexcept;

  // y (M, out) = linear(x (M, in)); M == 0 does nothing.
  void run(int64_t M, const T* x, T* y) const;

  int64_t in_features() const;
  int64_t out_features() const;
  const Activation& activation() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};
extern template class LinearOp<float>;
extern template class LinearOp<double>;

// One call: LinearOp(in, out, w, bias, act).run(M, x, y).
void linear(int64_t M, int64_t in_features, int64_t out_features, const float* x,
            const float* w, const float* bias, float* y, const Activation& act = {});
void linear(int64_t M, int64_t in_features, int64_t out_features, const double* x,
            const double* w, const double* bias, double* y, const Activation& act = {});

}  // namespace convcore
