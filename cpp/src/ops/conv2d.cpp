// conv2d.cpp — conv2d's front: Conv2dParams' own rules, the padding modes other than
// zeros (a padded copy of the input), and "plan, run" on the algorithm registry
// (ops/algorithm.hpp): Conv2dOp holds a plan, the one-call conv2d() makes a one-shot one.
#include "convcore/conv2d.hpp"
#include "convcore/runtime.hpp"

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "checked.hpp"
#include "dispatch.hpp"
#include "ops/algorithm.hpp"
#include "ops/conv_pieces.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {

using detail::checked_add;
using detail::checked_product;

PaddingMode padding_mode_from_name(const char* name) {
  const std::string s = name;
  if (s == "zeros") return PaddingMode::zeros;
  if (s == "reflect") return PaddingMode::reflect;
  if (s == "replicate") return PaddingMode::replicate;
  if (s == "circular") return PaddingMode::circular;
  throw value_error("padding_mode must be one of 'zeros', 'reflect', 'replicate', 'circular', got '" +
                    s + "'");
}

void Conv2dParams::validate() const {
  ConvGeometry::validate("conv2d");
  const int64_t ph = std::max(pad_top, pad_bottom), pw = std::max(pad_left, pad_right);
  const auto where = [&] {
    return "got padding (top, bottom, left, right) = (" + std::to_string(pad_top) + ", " +
           std::to_string(pad_bottom) + ", " + std::to_string(pad_left) + ", " +
           std::to_string(pad_right) + ") for input (H, W) = (" + std::to_string(H) + ", " +
           std::to_string(W) + ")";
  };
  if (padding_mode == PaddingMode::reflect && (ph >= H || pw >= W))
    throw value_error("conv2d: padding_mode='reflect' needs padding < the input size, " + where());
  if (padding_mode == PaddingMode::circular && (ph > H || pw > W))
    throw value_error("conv2d: padding_mode='circular' needs padding <= the input size, " +
                      where());
}

namespace detail {

// Index of padded coordinate i (may be out of [0, n)) in the source, by padding mode.
int64_t source_index(int64_t i, int64_t n, PaddingMode mode) {
  switch (mode) {
    case PaddingMode::reflect: return i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i);
    case PaddingMode::replicate: return std::clamp<int64_t>(i, 0, n - 1);
    case PaddingMode::circular: return ((i % n) + n) % n;
    case PaddingMode::zeros: break;
  }
  return i;
}

// The source column of each of the pad_left + pad_right edge columns; the columns in
// between are a straight copy of the row. (A lookup per element cost about 5 ns each: on
// 8x8 images more than the 3x3 convolution spent per input element.)
std::vector<int64_t> edge_columns(const Conv2dParams& p) {
  std::vector<int64_t> cols(static_cast<size_t>(p.pad_left + p.pad_right));
  for (int64_t j = 0; j < p.pad_left; ++j) cols[j] = source_index(j - p.pad_left, p.W, p.padding_mode);
  for (int64_t j = 0; j < p.pad_right; ++j)
    cols[p.pad_left + j] = source_index(p.W + j, p.W, p.padding_mode);
  return cols;
}

template <class T>
void pad_planes(const Conv2dParams& p, const T* x, T* xp) {
  const int64_t hp = p.H + p.pad_top + p.pad_bottom, wp = p.W + p.pad_left + p.pad_right;
  const std::vector<int64_t> edge = edge_columns(p);
  const int64_t* left = edge.data();
  const int64_t* right = left + p.pad_left;
  detail::parallel_for(p.N * p.C, p.N * p.C * hp * wp, [&](int64_t plane) {
    const T* src = x + plane * p.H * p.W;
    T* dst = xp + plane * hp * wp;
    for (int64_t i = 0; i < hp; ++i) {
      const T* row = src + source_index(i - p.pad_top, p.H, p.padding_mode) * p.W;
      T* out = dst + i * wp;
      for (int64_t j = 0; j < p.pad_left; ++j) out[j] = row[left[j]];
      std::copy(row, row + p.W, out + p.pad_left);
      for (int64_t j = 0; j < p.pad_right; ++j) out[p.pad_left + p.W + j] = row[right[j]];
    }
  });
}

// What the drivers run: zero padding only. Other padding modes become a padded input.
Conv2dParams inner_params(const Conv2dParams& p) {
  Conv2dParams q = p;
  if (p.padding_mode != PaddingMode::zeros) {
    q.H = p.H + p.pad_top + p.pad_bottom;
    q.W = p.W + p.pad_left + p.pad_right;
    q.pad_top = q.pad_bottom = q.pad_left = q.pad_right = 0;
    q.padding_mode = PaddingMode::zeros;
  }
  return q;
}

template void pad_planes(const Conv2dParams&, const float*, float*);
template void pad_planes(const Conv2dParams&, const double*, double*);

}  // namespace detail

namespace {

using detail::inner_params;
using detail::pad_planes;

// x itself, or (padding modes other than zeros) its padded copy in `padded`.
template <class T>
const T* padded_input(const Conv2dParams& p, const Conv2dParams& q, const T* x,
                      detail::Buffer<T>& padded) {
  if (p.padding_mode == PaddingMode::zeros) return x;
  padded = detail::Buffer<T>(checked_product("conv2d padded input", p.N, p.C, q.H, q.W));
  pad_planes(p, x, padded.get());
  return padded.get();
}

// The plan of `q` (the inner problem) for weight/bias on the active kernels.
template <class T>
std::unique_ptr<detail::ConvPlan<T>> forward_plan(const Conv2dParams& q, const T* w, const T* bias,
                                                  bool one_shot,
                                                  const detail::ConvAlgorithm** chosen = nullptr) {
  return detail::make_plan<T>(q, detail::Pass::forward, detail::kernels<T>(), w, bias, one_shot,
                              chosen);
}

// Checks what a run adds to a validated problem: its batch N and the pointers.
void check_run(const Conv2dParams& p, int64_t N, const void* x, const void* y) {
  if (N < 0) throw value_error("conv2d: batch size must be >= 0, got N = " + std::to_string(N));
  if (N == 0) return;
  if (x == nullptr || y == nullptr) throw value_error("conv2d: input and output must not be null");
  checked_product("conv2d input", N, p.C, p.H, p.W);
  checked_product("conv2d output", N, p.K, p.out_h(), p.out_w());
}

// y = conv2d(x) with `plan` (made for inner_params(p)): pads the input for the padding
// modes other than zeros, then runs (small problems inline, see kInlineWork).
template <class T>
void run_plan(const detail::ConvPlan<T>& plan, const Conv2dParams& params, int64_t N,
              const T* x, T* y) {
  check_run(params, N, x, y);
  if (N == 0) return;
  Conv2dParams p = params;
  p.N = N;
  // In double: the product of all the factors may exceed int64 for a huge problem.
  const double macs = static_cast<double>(N) * p.K * p.out_h() * p.out_w() *
                      (p.C / p.groups) * p.R * p.S;
  std::optional<detail::InlineScope> inline_scope;
  if (macs < static_cast<double>(detail::kInlineWork * detail::kMacsPerWork))
    inline_scope.emplace();
  const Conv2dParams q = inner_params(p);
  detail::Buffer<T> padded;
  detail::ConvTensors<T> t;
  t.N = N;
  t.x = padded_input(p, q, x, padded);
  t.y = y;
  plan.run(t);
}

}  // namespace

int64_t conv2d_workspace_bytes(const Conv2dParams& p, int dtype_bytes) {
  p.validate();
  if (dtype_bytes != 4 && dtype_bytes != 8)
    throw value_error("conv2d_workspace_bytes: dtype_bytes must be 4 or 8, got " +
                      std::to_string(dtype_bytes));
  const Conv2dParams q = inner_params(p);
  const int64_t padded =
      p.padding_mode == PaddingMode::zeros
          ? 0
          : checked_product("conv2d padded input", p.N, p.C, q.H, q.W, int64_t{dtype_bytes});
  if (p.N == 0) return padded;
  // A plan without weights, made only to size its scratch.
  const int threads = detail::pool_threads();
  const int64_t plan = dtype_bytes == 4
                           ? forward_plan<float>(q, nullptr, nullptr, true)->workspace_bytes(p.N, threads)
                           : forward_plan<double>(q, nullptr, nullptr, true)->workspace_bytes(p.N, threads);
  return checked_add(padded, plan, "conv2d workspace");
}

template <class T>
struct Conv2dOp<T>::Impl {
  Conv2dParams params;  // as given
  const detail::ConvAlgorithm* algorithm = nullptr;
  std::unique_ptr<detail::ConvPlan<T>> plan;  // for inner_params(params), owns the packed weights
};

template <class T>
Conv2dOp<T>::Conv2dOp(const Conv2dParams& p, const T* weight, const T* bias)
    : impl_(std::make_unique<Impl>()) {
  p.validate();
  if (weight == nullptr) throw value_error("conv2d: weight must not be null");
  impl_->params = p;
  impl_->plan = forward_plan<T>(inner_params(p), weight, bias, false, &impl_->algorithm);
}

template <class T>
Conv2dOp<T>::~Conv2dOp() = default;
template <class T>
Conv2dOp<T>::Conv2dOp(Conv2dOp&&) noexcept = default;
template <class T>
Conv2dOp<T>& Conv2dOp<T>::operator=(Conv2dOp&&) noexcept = default;

template <class T>
const Conv2dParams& Conv2dOp<T>::params() const {
  return impl_->params;
}
template <class T>
Algorithm Conv2dOp<T>::algorithm() const {
  return impl_->algorithm->id;
}

template <class T>
void Conv2dOp<T>::run(int64_t N, const T* x, T* y) const {
  run_plan(*impl_->plan, impl_->params, N, x, y);
}

template class Conv2dOp<float>;
template class Conv2dOp<double>;

namespace {

// One call: plan (one-shot: the algorithm may read w and bias in place), run.
template <class T>
void conv2d_once(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  p.validate();
  if (w == nullptr) throw value_error("conv2d: weight must not be null");
  check_run(p, p.N, x, y);
  if (p.N == 0) return;
  run_plan(*forward_plan<T>(inner_params(p), w, bias, true), p, p.N, x, y);
}

}  // namespace

void conv2d(const Conv2dParams& p, const float* x, const float* w, const float* bias, float* y) {
  conv2d_once(p, x, w, bias, y);
}
void conv2d(const Conv2dParams& p, const double* x, const double* w, const double* bias,
            double* y) {
  conv2d_once(p, x, w, bias, y);
}

}  // namespace convcore
