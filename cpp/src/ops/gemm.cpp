// gemm.cpp — linear (the fully connected layer) on the packed GEMM of gemm.hpp, and the
// GEMM kernel lookup shared with im2col.cpp.
//
// y (M x out) = x (M x in) * W^T: A is the input, packed per MC x KC block of MR-row
// panels; B is W^T in NR-column panels, packed once by LinearOp (panel p at p*NR*in, so
// any KC block of it is contiguous) or per task by the one-call linear(); the bias is
// per column of C. A LinearOp keeps the kernel table it packed for (switching ISA
// later does not change its kernels); linear() uses the active one.
#include "convcore/linear.hpp"
#include "convcore/runtime.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "dispatch.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {
namespace detail {

}  // namespace detail

using detail::ceil_div;
using detail::checked_product;

template <class T>
struct LinearOp<T>::Impl {
  int64_t in, out;
  const kernels::KernelTable<T>* kernels;  // the table the weights were packed for
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
  m.kernels = &detail::kernels<T>();
  const auto gk = detail::gemm_kernel(*m.kernels);
  const int64_t panels = ceil_div(out_features, gk.nr);
  m.w = detail::Buffer<T>(checked_product("linear packed weight", panels, gk.nr, in_features));
  if (in_features > 0 && out_features > 0)
    detail::pack_b_panels(gk, weight, in_features, out_features, 0, in_features, m.w.get());
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

namespace {

// Columns per task: a KC x NC block of W^T is 1 MiB of floats, packed per call into L3.
constexpr int64_t kLinearNC = 1024;
constexpr int64_t kLinearRowBlocks = 8;  // MC row blocks per task at most

// y (M x N) = act(x (M x K) * W^T + bias) for K >= 1 on the kernels of `kt`. W^T's
// panels come from `packed` (LinearOp: packed once for kt, panel p at p*NR*K) or, when it
// is null, are packed
// per KC x NC block from w (N x K) into the task's scratch, prefetching the next block's
// pieces of each row as it goes (KC-long pieces of 1024 rows are too short for the
// hardware prefetcher: without that, packing W cost twice a plain copy). Tasks are column blocks
// with all rows each (up to kLinearRowBlocks MC blocks: W is read from memory once per
// that many rows), as many as make them divide evenly over the threads; rows are split
// further when the columns are too few for the threads.
template <class T>
void linear_gemm(const kernels::KernelTable<T>& kt, int64_t M, int64_t K, int64_t N, const T* x,
                 const T* w, const T* packed, const T* bias, T* y, const Activation& act) {
  const auto gk = detail::gemm_kernel(kt);
  const int64_t MR = gk.mr, NR = gk.nr, KC = detail::gemm_kc(K);
  const int64_t threads = detail::pool_threads();
  const int64_t panels = ceil_div(N, NR);
  const int64_t nb0 = ceil_div(ceil_div(N, kLinearNC), threads) * threads;
  const int64_t ncb = ceil_div(panels, std::min(nb0, panels)) * NR;
  const int64_t nb = ceil_div(N, ncb);
  // Rows per task: at most kLinearRowBlocks MC blocks, so that a task stays short (the
  // interrupt handler is polled between tasks) while W is packed again only every
  // thousand-odd rows.
  const int64_t mb0 = std::max(std::min(ceil_div(M, MR), ceil_div(threads, nb)),
                               ceil_div(M, kLinearRowBlocks * detail::gemm_mc<T>()));
  const int64_t mrows = ceil_div(ceil_div(M, mb0), MR) * MR, mb = ceil_div(M, mrows);
  const int64_t MC = std::min(detail::gemm_mc<T>() / MR * MR, mrows);
  const bool in_place = packed != nullptr;
  const int64_t scratch = MC * KC + (in_place ? 0 : ncb * KC);
  detail::parallel_for(mb * nb, detail::macs_work(M * K * N), [&](int64_t t) {
    const int64_t i0 = (t % mb) * mrows, j0 = (t / mb) * ncb;
    const int64_t rows = std::min(mrows, M - i0), cols = std::min(ncb, N - j0);
    T* abuf = static_cast<T*>(detail::thread_scratch(static_cast<size_t>(scratch) * sizeof(T)));
    T* bbuf = abuf + MC * KC;
    auto a_src = [&](int64_t ia, int64_t ma, int64_t k0, int64_t kc) {
      detail::pack_panels(gk, x + (i0 + ia) * K, K, ma, k0, kc, abuf, k0 + kc < K ? kc : 0);
      return detail::Panels<T>{abuf, MR * kc, MR};
    };
    auto b_src = [&](int64_t k0, int64_t kc) {
      if (in_place) return detail::Panels<T>{packed + j0 * K + k0 * NR, NR * K, NR};
      detail::pack_b_panels(gk, w + j0 * K, K, cols, k0, kc, bbuf, k0 + kc < K ? kc : 0);
      return detail::Panels<T>{bbuf, NR * kc, NR};
    };
    detail::gemm_tile(gk, rows, cols, K, a_src, b_src, y + i0 * N + j0, N,
                      bias != nullptr ? bias + j0 : nullptr, true, act);
  });
}

// Shapes and the empty cases shared by LinearOp::run and linear(); false when done.
template <class T>
bool linear_prologue(const kernels::KernelTable<T>& kt, int64_t M, int64_t K, int64_t N,
                     const T* x, const T* bias, T* y, const Activation& act) {
  if (M < 0) throw value_error("linear: batch size must be >= 0, got " + std::to_string(M));
  if (M == 0 || N == 0) return false;
  if (x == nullptr || y == nullptr) throw value_error("linear: input and output must not be null");
  checked_product("linear input", M, K);
  checked_product("linear output", M, N);
  if (K == 0) {  // an empty sum: y = act(bias)
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) y[i * N + j] = bias != nullptr ? bias[j] : T(0);
    kt.activate.fn(y, y, M * N, act);
    return false;
  }
  return true;
}

template <class T>
void linear_call(int64_t M, int64_t K, int64_t N, const T* x, const T* w, const T* bias, T* y,
                 const Activation& act) {
  if (K < 0 || N < 0)
    throw value_error("linear: in_features and out_features must be >= 0, got (" +
                      std::to_string(K) + ", " + std::to_string(N) + ")");
  const auto& kt = detail::kernels<T>();
  if (!linear_prologue(kt, M, K, N, x, bias, y, act)) return;
  if (w == nullptr) throw value_error("linear: weight must not be null");
  linear_gemm<T>(kt, M, K, N, x, w, nullptr, bias, y, act);
}

}  // namespace

template <class T>
void LinearOp<T>::run(int64_t M, const T* x, T* y) const {
  const Impl& m = *impl_;
  const T* bias = m.has_bias ? m.bias.get() : nullptr;
  if (!linear_prologue(*m.kernels, M, m.in, m.out, x, bias, y, m.act)) return;
  linear_gemm<T>(*m.kernels, M, m.in, m.out, x, nullptr, m.w.get(), bias, y, m.act);
}

GemmBlocking gemm_blocking() {
  return {detail::kGemmKC, detail::gemm_mc<float>(), detail::gemm_mc<double>(),
          detail::kGemmBlockBytes};
}

template class LinearOp<float>;
template class LinearOp<double>;

void linear(int64_t M, int64_t in_features, int64_t out_features, const float* x,
            const float* w, const float* bias, float* y, const Activation& act) {
  linear_call<float>(M, in_features, out_features, x, w, bias, y, act);
}
void linear(int64_t M, int64_t in_features, int64_t out_features, const double* x,
            const double* w, const double* bias, double* y, const Activation& act) {
  linear_call<double>(M, in_features, out_features, x, w, bias, y, act);
}

}  // namespace convcore
