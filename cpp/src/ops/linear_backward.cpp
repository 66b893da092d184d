// linear_backward.cpp — gradients of linear on the packed GEMM of gemm.cpp (linear()):
// grad_input = grad_output * W and grad_weight = grad_output^T * x, each a linear() call
// on transposed copies (linear multiplies by the transpose of its weight); grad_bias the
// column sums. linear's GEMM reduces in fixed KC blocks, so every result is the same bits
// for any thread count.
#include <algorithm>
#include <string>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "convcore/linear.hpp"
#include "ops/backward_util.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {
namespace {

template <class T>
void linear_grad(int64_t M, int64_t in, int64_t out, const T* g, const T* x, const T* w, T* gi,
                 T* gw, T* gb) {
  if (M < 0 || in < 0 || out < 0)
    throw value_error("linear_backward: sizes must be >= 0, got (M, in, out) = (" +
                      std::to_string(M) + ", " + std::to_string(in) + ", " + std::to_string(out) +
                      ")");
  detail::checked_product("linear_backward grad_output", M, out);
  detail::checked_product("linear_backward input", M, in);
  detail::checked_product("linear_backward weight", out, in);
  if (gi != nullptr && M * in > 0) {
    if (g == nullptr || w == nullptr) throw value_error("linear_backward: grad_output and weight must not be null");
    detail::Buffer<T> wt(out * in);
    detail::transpose(w, out, in, wt.get());
    linear(M, out, in, g, wt.get(), static_cast<const T*>(nullptr), gi);
  }
  if (gw != nullptr && M == 0) std::fill(gw, gw + out * in, T(0));
  if (gw != nullptr && out * in > 0 && M > 0) {
    if (g == nullptr || x == nullptr) throw value_error("linear_backward: grad_output and input must not be null");
    detail::Buffer<T> gt(M * out), xt(M * in);
    detail::transpose(g, M, out, gt.get());
    detail::transpose(x, M, in, xt.get());
    linear(out, M, in, gt.get(), xt.get(), static_cast<const T*>(nullptr), gw);
  }
  if (gb != nullptr && out > 0) {
    if (g == nullptr && M > 0) throw value_error("linear_backward: grad_output must not be null");
    detail::column_sums(g, M, out, gb);
  }
}

}  // namespace

void linear_backward(int64_t M, int64_t in, int64_t out, const float* g, const float* x,
                     const float* w, float* gi, float* gw, float* gb) {
  linear_grad(M, in, out, g, x, w, gi, gw, gb);
}
void linear_backward(int64_t M, int64_t in, int64_t out, const double* g, const double* x,
                     const double* w, double* gi, double* gw, double* gb) {
  linear_grad(M, in, out, g, x, w, gi, gw, gb);
}

}  // namespace convcore
