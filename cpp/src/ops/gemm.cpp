// gemm.cpp — linear (the fully connected layer) on the packed GEMM of gemm.hpp, and the
// GEMM kernel lookup shared with im2col.cpp.
//
// y (M x out) = x (M x in) * W^T: A is the input, packed per task into MC x KC blocks of
// MR-row panels; B is W^T, packed once (LinearOp) into NR-column panels of the whole
// reduction (panel p at p*NR*in, so any KC block of it is contiguous); the bias is per
// column of C. Tasks split M into balanced MC-or-smaller row blocks and the columns into
// NR-aligned ranges, enough of them that the tasks divide evenly over the threads.
#include "convcore/linear.hpp"

#include <cstring>
#include <numeric>
#include <string>
#include <vector>

#include "convcore/activation.hpp"
#include "dispatch.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {
namespace detail {

template <>
GemmKernel<float> gemm_kernel<float>() {
  const auto& k = kernels().gemm_f32;
  return {k.fn, k.mr, k.nr};
}
template <>
GemmKernel<double> gemm_kernel<double>() {
  const auto& k = kernels().gemm_f64;
  return {k.fn, k.mr, k.nr};
}

}  // namespace detail

using detail::ceil_div;
using detail::checked_product;

template <class T>
struct LinearOp<T>::Impl {
  int64_t in, out;
  int64_t nr;             // panel width the weights were packed for
  detail::Buffer<T> w;    // ceil(out / NR) panels of in x NR
  detail::Buffer<T> bias;
  bool has_bias;
  Activation act;
};

template <class T>
LinearOp<T>::LinearOp(int64_t in_features, int64_t out_features, const T* weight,
                      const T* bias, const Activation& act)
    : impl_(std::make_unique<Impl>()) {
  if (in_features < 0 || out_features < 0)
    throw value_error("linear: in_features and out_features must be >= 0, got (" +
                      std::to_string(in_features) + ", " + std::to_string(out_features) + ")");
  if (weight == nullptr && in_features > 0 && out_features > 0)
    throw value_error("linear: weight must not be null");
  Impl& m = *impl_;
  m.in = in_features;
  m.out = out_features;
  m.act = act;
  m.nr = detail::gemm_kernel<T>().nr;
  const int64_t panels = ceil_div(out_features, m.nr);
  m.w = detail::Buffer<T>(checked_product("linear packed weight", panels, m.nr, in_features));
  if (in_features > 0 && out_features > 0)
    detail::pack_panels(weight, in_features, out_features, 0, in_features, m.nr, m.w.get());
  m.has_bias = bias != nullptr;
  if (m.has_bias) {
    m.bias = detail::Buffer<T>(out_features);
    std::memcpy(m.bias.get(), bias, static_cast<size_t>(out_features) * sizeof(T));
  }
}

template <class T>
LinearOp<T>::~LinearOp() = default;
template <class T>
LinearOp<T>::LinearOp(LinearOp&&) noexcept = default;
template <class T>
LinearOp<T>& LinearOp<T>::operator=(LinearOp&&) noexcept = default;

template <class T>
int64_t LinearOp<T>::in_features() const {
  return impl_->in;
}
template <class T>
int64_t LinearOp<T>::out_features() const {
  return impl_->out;
}
template <class T>
const Activation& LinearOp<T>::activation() const {
  return impl_->act;
}

template <class T>
void LinearOp<T>::run(int64_t M, const T* x, T* y) const {
  const Impl& m = *impl_;
  if (M < 0) throw value_error("linear: batch size must be >= 0, got " + std::to_string(M));
  const int64_t K = m.in, N = m.out;
  if (M == 0 || N == 0) return;
  if (x == nullptr || y == nullptr) throw value_error("linear: input and output must not be null");
  checked_product("linear input", M, K);
  checked_product("linear output", M, N);
  const T* bias = m.has_bias ? m.bias.get() : nullptr;
  if (K == 0) {  // an empty sum: y = act(bias)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) y[i * N + j] = bias != nullptr ? bias[j] : T(0);
    activate(m.act, y, y, M * N);
    return;
  }
  const auto gk = detail::gemm_kernel<T>();
  if (gk.nr != m.nr) throw value_error("linear: weights were packed for another ISA");
  const int64_t MR = gk.mr, NR = gk.nr;
  // Balanced row blocks of at most MC rows, MR-aligned.
  const int64_t mb0 = ceil_div(M, detail::gemm_mc<T>() / MR * MR);
  const int64_t mc = ceil_div(ceil_div(M, mb0), MR) * MR, mb = ceil_div(M, mc);
  // Column ranges: enough that mb * nb is a multiple of the thread count.
  const int64_t threads = detail::pool_threads();
  const int64_t nb0 = threads / std::gcd(mb, threads);
  const int64_t ncb = ceil_div(ceil_div(N, std::min(nb0, ceil_div(N, NR))), NR) * NR;
  const int64_t nb = ceil_div(N, ncb);
  const int64_t KC = detail::gemm_kc(K);
  const T* w = m.w.get();
  detail::parallel_for(mb * nb, [&](int64_t t) {
    const int64_t i0 = (t / nb) * mc, j0 = (t % nb) * ncb;
    const int64_t rows = std::min(mc, M - i0), cols = std::min(ncb, N - j0);
    T* abuf = static_cast<T*>(
        detail::thread_scratch(static_cast<size_t>(mc * KC) * sizeof(T)));
    auto a_src = [&](int64_t ia, int64_t ma, int64_t k0, int64_t kc) {
      detail::pack_panels(x + (i0 + ia) * K, K, ma, k0, kc, MR, abuf);
      return detail::Panels<T>{abuf, MR * kc, MR};
    };
    auto b_src = [&](int64_t k0, int64_t) {
      return detail::Panels<T>{w + j0 * K + k0 * NR, NR * K, NR};
    };
    detail::gemm_tile(gk, rows, cols, K, a_src, b_src, y + i0 * N + j0, N,
                      bias != nullptr ? bias + j0 : nullptr, true, m.act);
  });
}

template class LinearOp<float>;
template class LinearOp<double>;

void linear(int64_t M, int64_t in_features, int64_t out_features, const float* x,
            const float* w, const float* bias, float* y, const Activation& act) {
  LinearOp<float>(in_features, out_features, w, bias, act).run(M, x, y);
}
void linear(int64_t M, int64_t in_features, int64_t out_features, const double* x,
            const double* w, const double* bias, double* y, const Activation& act) {
  LinearOp<double>(in_features, out_features, w, bias, act).run(M, x, y);
}

}  // namespace convcore
