// pointwise_backward.cpp — activation_backward and the cross-entropy loss with its
// gradient: element-wise or row-wise loops, chunked over the pool (each element written by
// one task: the same bits for any thread count).
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"

namespace convcore {
namespace {

constexpr int64_t kChunk = 1 << 15;  // elements per task

template <class T>
void activation_grad(const Activation& act, const T* g, const T* x, T* gi, int64_t n) {
  if (n < 0) throw value_error("activation_backward: n must be >= 0, got " + std::to_string(n));
  if (n > 0 && (g == nullptr || x == nullptr || gi == nullptr))
    throw value_error("activation_backward: arrays must not be null");
  const auto fwd = detail::kernels<T>().activate.fn;
  const T alpha = static_cast<T>(act.alpha);
  detail::parallel_for(detail::ceil_div(n, kChunk), [&](int64_t t) {
    const int64_t i0 = t * kChunk, m = std::min(kChunk, n - i0);
    const T* gg = g + i0;
    const T* xx = x + i0;
    T* out = gi + i0;
    switch (act.kind) {
      case Activation::none:
        std::copy(gg, gg + m, out);
        break;
      // The loops below read both operands unconditionally and select: the compiler
      // turns the selects into vector masks (a branch per element, mispredicted on half
      // of a ReLU's inputs, made its gradient cost 10x its forward).
      case Activation::relu:  // PyTorch's threshold_backward: 0 where x <= 0 (at 0 too; NaN passes)
        for (int64_t i = 0; i < m; ++i) {
          const T gv = gg[i];
          out[i] = xx[i] <= T(0) ? T(0) : gv;
        }
        break;
      case Activation::leaky_relu:
        for (int64_t i = 0; i < m; ++i) {
          const T gv = gg[i], scaled = gv * alpha;
          out[i] = xx[i] > T(0) ? gv : scaled;
        }
        break;
      case Activation::abs:  // sign(x); 0 at 0 and at NaN, as PyTorch's sgn
        for (int64_t i = 0; i < m; ++i) {
          const T v = xx[i];
          const T pos = v > T(0) ? T(1) : T(0), neg = v < T(0) ? T(1) : T(0);
          out[i] = gg[i] * (pos - neg);
        }
        break;
      case Activation::square:
        for (int64_t i = 0; i < m; ++i) out[i] = gg[i] * (T(2) * xx[i]);
        break;
      case Activation::sigmoid:  // y = the forward's value (same kernel), dy/dx = a*y*(1-y)
        fwd(xx, out, m, act);
        for (int64_t i = 0; i < m; ++i) out[i] = gg[i] * (alpha * out[i] * (T(1) - out[i]));
        break;
      case Activation::tanh:
        fwd(xx, out, m, act);
        for (int64_t i = 0; i < m; ++i) out[i] = gg[i] * (T(1) - out[i] * out[i]);
        break;
    }
  });
}

template <class T>
double cross_entropy_impl(int64_t N, int64_t classes, const T* z, const int64_t* target,
                          Reduction reduction, T* per_sample, T* grad) {
  if (N < 0 || classes < 1)
    throw value_error("cross_entropy: logits must be (N, classes) with classes >= 1, got (" +
                      std::to_string(N) + ", " + std::to_string(classes) + ")");
  detail::checked_product("cross_entropy logits", N, classes);
  if (N > 0 && (z == nullptr || target == nullptr))
    throw value_error("cross_entropy: logits and target must not be null");
  for (int64_t i = 0; i < N; ++i)
    if (target[i] < 0 || target[i] >= classes)
      throw value_error("cross_entropy: target[" + std::to_string(i) + "] = " +
                        std::to_string(target[i]) + " is not a class index in [0, " +
                        std::to_string(classes) + ")");
  const double scale = reduction == Reduction::mean && N > 0 ? 1.0 / static_cast<double>(N) : 1.0;
  // Per-sample losses in double (a scratch row of N when the caller keeps none), reduced
  // in order afterwards.
  std::vector<double> loss(static_cast<size_t>(N));
  const int64_t rows = std::max<int64_t>(1, kChunk / classes);
  detail::parallel_for(detail::ceil_div(N, rows), [&](int64_t t) {
    for (int64_t i = t * rows; i < std::min(N, (t + 1) * rows); ++i) {
      const T* zi = z + i * classes;
      double mx = -INFINITY;
      for (int64_t j = 0; j < classes; ++j) mx = std::max(mx, static_cast<double>(zi[j]));
      // All -inf (or +inf somewhere): let IEEE arithmetic give NaN / inf as PyTorch does.
      const double shift = std::isfinite(mx) ? mx : 0.0;
      double sum = 0;
      for (int64_t j = 0; j < classes; ++j) sum += std::exp(static_cast<double>(zi[j]) - shift);
      const double lse = std::log(sum) + shift;
      loss[i] = lse - static_cast<double>(zi[target[i]]);
      if (per_sample != nullptr) per_sample[i] = static_cast<T>(loss[i]);
      if (grad != nullptr) {
        T* gi = grad + i * classes;
        for (int64_t j = 0; j < classes; ++j)
          gi[j] = static_cast<T>((std::exp(static_cast<double>(zi[j]) - lse) -
                                  (j == target[i] ? 1.0 : 0.0)) * scale);
      }
    }
  });
  if (reduction == Reduction::none) return 0.0;
  double total = 0;
  for (int64_t i = 0; i < N; ++i) total += loss[i];
  return reduction == Reduction::mean ? (N > 0 ? total / static_cast<double>(N) : NAN) : total;
}

}  // namespace

void activation_backward(const Activation& act, const float* g, const float* x, float* gi,
                         int64_t n) {
  activation_grad(act, g, x, gi, n);
}
void activation_backward(const Activation& act, const double* g, const double* x, double* gi,
                         int64_t n) {
  activation_grad(act, g, x, gi, n);
}

double cross_entropy(int64_t N, int64_t classes, const float* logits, const int64_t* target,
                     Reduction reduction, float* per_sample, float* grad) {
  return cross_entropy_impl(N, classes, logits, target, reduction, per_sample, grad);
}
double cross_entropy(int64_t N, int64_t classes, const double* logits, const int64_t* target,
                     Reduction reduction, double* per_sample, double* grad) {
  return cross_entropy_impl(N, classes, logits, target, reduction, per_sample, grad);
}

}  // namespace convcore
