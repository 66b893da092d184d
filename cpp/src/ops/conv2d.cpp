// conv2d.cpp — conv2d's front: validation, the non-zero padding modes, the choice of
// algorithm. The algorithms themselves live in direct.cpp and im2col.cpp.
#include "convcore/conv2d.hpp"

#include <algorithm>
#include <cstring>
#include <string>

#include "checked.hpp"
#include "ops/conv_drivers.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {

using detail::checked_add;
using detail::checked_mul;
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

Algorithm algorithm_from_name(const char* name) {
  const std::string s = name;
  if (s == "auto") return Algorithm::automatic;
  if (s == "direct") return Algorithm::direct;
  if (s == "im2col") return Algorithm::im2col;
  throw value_error("algorithm must be one of 'auto', 'direct', 'im2col', got '" + s + "'");
}

const char* algorithm_name(Algorithm a) {
  switch (a) {
    case Algorithm::automatic: return "auto";
    case Algorithm::direct: return "direct";
    case Algorithm::im2col: return "im2col";
  }
  return "?";
}

int64_t Conv2dParams::out_h() const {
  return (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1;
}
int64_t Conv2dParams::out_w() const {
  return (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1;
}

namespace {
std::string pair(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}
}  // namespace

void Conv2dParams::validate() const {
  if (N < 0) throw value_error("conv2d: batch size must be >= 0, got " + std::to_string(N));
  if (C < 1 || H < 1 || W < 1)
    throw value_error("conv2d: input channels, height and width must be >= 1, got (C, H, W) = (" +
                      std::to_string(C) + ", " + std::to_string(H) + ", " + std::to_string(W) + ")");
  if (K < 1 || R < 1 || S < 1)
    throw value_error("conv2d: weight out_channels and kernel size must be >= 1, got (K, R, S) = (" +
                      std::to_string(K) + ", " + std::to_string(R) + ", " + std::to_string(S) + ")");
  if (stride_h < 1 || stride_w < 1)
    throw value_error("conv2d: stride must be >= 1, got stride=" + pair(stride_h, stride_w));
  if (dilation_h < 1 || dilation_w < 1)
    throw value_error("conv2d: dilation must be >= 1, got dilation=" + pair(dilation_h, dilation_w));
  if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0)
    throw value_error("conv2d: padding must be >= 0");
  if (groups < 1) throw value_error("conv2d: groups must be >= 1, got " + std::to_string(groups));
  if (C % groups != 0 || K % groups != 0)
    throw value_error("conv2d: groups=" + std::to_string(groups) +
                      " must divide in_channels=" + std::to_string(C) +
                      " and out_channels=" + std::to_string(K));
  checked_product("conv2d input", N, C, H, W);
  checked_product("conv2d weight", K, C / groups, R, S);
  const int64_t hp = checked_add(checked_add(H, pad_top, "padding"), pad_bottom, "padding");
  const int64_t wp = checked_add(checked_add(W, pad_left, "padding"), pad_right, "padding");
  const int64_t eh = checked_add(checked_mul(dilation_h, R - 1, "dilation"), 1, "dilation");
  const int64_t ew = checked_add(checked_mul(dilation_w, S - 1, "dilation"), 1, "dilation");
  if (eh > hp || ew > wp)
    throw value_error("conv2d: kernel size " + pair(eh, ew) + " (with dilation) is larger than the padded input " +
                      pair(hp, wp));
  if (padding_mode == PaddingMode::reflect &&
      (std::max(pad_top, pad_bottom) >= H || std::max(pad_left, pad_right) >= W))
    throw value_error("conv2d: padding_mode='reflect' needs padding < input size, got padding " +
                      pair(std::max(pad_top, pad_bottom), std::max(pad_left, pad_right)) +
                      " for input " + pair(H, W));
  if (padding_mode == PaddingMode::circular &&
      (std::max(pad_top, pad_bottom) > H || std::max(pad_left, pad_right) > W))
    throw value_error("conv2d: padding_mode='circular' needs padding <= input size, got padding " +
                      pair(std::max(pad_top, pad_bottom), std::max(pad_left, pad_right)) +
                      " for input " + pair(H, W));
  checked_product("conv2d output", N, K, out_h(), out_w());
  checked_product("conv2d work", N, K, out_h(), out_w(), C / groups, R, S);
}

// `auto`: im2col when C/groups > 1 and (R*S == 1 or C/groups > kAutoMaxDirectChannels),
// else direct. With one input channel per group (depthwise, one-channel filtering) the
// reduction is only R*S terms and the GEMM cannot amortise anything. A 1x1 convolution is
// a plain GEMM reading the input in place. Otherwise the GEMM pays for
// gathering R*S copies of the input and for packing, and earns it back by cache-blocking a
// long reduction over many input channels (deep layers); with few input channels per group
// the direct kernels stream the input once per block of output channels and win (stems,
// LeNet-like layers, depthwise, one-channel filtering). The threshold is the best fit to
// the measurements of benchmarks/auto_rule.py over convcore.testing.SHAPES (table in
// README.md, "How auto chooses"); re-run it after changing either algorithm.
constexpr int64_t kAutoMaxDirectChannels = 64;

Algorithm choose_algorithm(const Conv2dParams& p) {
  if (p.algorithm != Algorithm::automatic) return p.algorithm;
  const int64_t cg = p.C / p.groups;
  const bool gemm = cg > 1 && ((p.R == 1 && p.S == 1) || cg > kAutoMaxDirectChannels);
  return gemm ? Algorithm::im2col : Algorithm::direct;
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

template <class T>
void pad_planes(const Conv2dParams& p, const T* x, T* xp) {
  const int64_t hp = p.H + p.pad_top + p.pad_bottom, wp = p.W + p.pad_left + p.pad_right;
  detail::parallel_for(p.N * p.C, [&](int64_t plane) {
    const T* src = x + plane * p.H * p.W;
    T* dst = xp + plane * hp * wp;
    for (int64_t i = 0; i < hp; ++i) {
      const T* row = src + source_index(i - p.pad_top, p.H, p.padding_mode) * p.W;
      T* out = dst + i * wp;
      for (int64_t j = 0; j < wp; ++j) out[j] = row[source_index(j - p.pad_left, p.W, p.padding_mode)];
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
  if (p.N == 0 || choose_algorithm(q) != Algorithm::im2col) return padded;
  const int threads = detail::pool_threads();
  const int64_t tiles = dtype_bytes == 4 ? detail::im2col_workspace_bytes<float>(q, threads)
                                         : detail::im2col_workspace_bytes<double>(q, threads);
  return checked_add(padded, tiles, "conv2d workspace");
}

template <class T>
struct Conv2dOp<T>::Impl {
  Conv2dParams params;  // as given
  Conv2dParams inner;   // what the driver runs: zero padding, padded H and W
  Algorithm algorithm;
  std::unique_ptr<detail::PackedWeights<T>> weights;
  detail::Buffer<T> bias;
  bool has_bias;
};

template <class T>
Conv2dOp<T>::Conv2dOp(const Conv2dParams& p, const T* weight, const T* bias)
    : impl_(std::make_unique<Impl>()) {
  p.validate();
  if (weight == nullptr) throw value_error("conv2d: weight must not be null");
  Impl& m = *impl_;
  m.params = p;
  m.inner = inner_params(p);
  m.algorithm = choose_algorithm(m.inner);
  m.weights = m.algorithm == Algorithm::direct ? detail::direct_pack(m.inner, weight)
                                               : detail::im2col_pack(m.inner, weight);
  m.has_bias = bias != nullptr;
  if (m.has_bias) {
    m.bias = detail::Buffer<T>(p.K);
    std::memcpy(m.bias.get(), bias, static_cast<size_t>(p.K) * sizeof(T));
  }
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
  return impl_->algorithm;
}

template <class T>
void Conv2dOp<T>::run(int64_t N, const T* x, T* y) const {
  const Impl& m = *impl_;
  if (N < 0) throw value_error("conv2d: batch size must be >= 0, got " + std::to_string(N));
  if (N == 0) return;
  if (x == nullptr || y == nullptr) throw value_error("conv2d: input and output must not be null");
  Conv2dParams p = m.params, q = m.inner;
  p.N = q.N = N;
  checked_product("conv2d input", N, p.C, p.H, p.W);
  checked_product("conv2d output", N, p.K, p.out_h(), p.out_w());
  const T* bias = m.has_bias ? m.bias.get() : nullptr;
  detail::Buffer<T> padded;
  x = padded_input(p, q, x, padded);
  if (m.algorithm == Algorithm::direct)
    detail::direct_run(q, *m.weights, x, bias, y);
  else
    detail::im2col_run(q, *m.weights, x, bias, y);
}

template class Conv2dOp<float>;
template class Conv2dOp<double>;

namespace {

// One call. im2col runs on the caller's weights, packed block by block as the GEMM goes
// (no up-front pass over them, no buffer per call); direct packs through Conv2dOp.
template <class T>
void conv2d_once(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  p.validate();
  const Conv2dParams q0 = inner_params(p);
  if (choose_algorithm(q0) != Algorithm::im2col) {
    Conv2dOp<T>(p, w, bias).run(p.N, x, y);
    return;
  }
  if (w == nullptr) throw value_error("conv2d: weight must not be null");
  if (p.N == 0) return;
  if (x == nullptr || y == nullptr) throw value_error("conv2d: input and output must not be null");
  detail::Buffer<T> padded;
  x = padded_input(p, q0, x, padded);
  detail::im2col_run_once(q0, w, x, bias, y);
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
