// direct.cpp — the direct convolution driver: one task per (image, output channel,
// block of output rows); each output row is computed whole by the direct_row kernel.
#include <algorithm>
#include <cstring>

#include "checked.hpp"
#include "dispatch.hpp"
#include "ops/conv_drivers.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

template <class T>
kernels::DirectRowFn<T> direct_row();
template <>
kernels::DirectRowFn<float> direct_row<float>() { return kernels().direct_row_f32.fn; }
template <>
kernels::DirectRowFn<double> direct_row<double>() { return kernels().direct_row_f64.fn; }

}  // namespace

// The plain direct kernel reads the weights as given: the pack is a copy.
template <class T>
struct DirectWeights : PackedWeights<T> {
  Buffer<T> w;
  explicit DirectWeights(int64_t n) : w(n) {}
};

template <class T>
std::unique_ptr<PackedWeights<T>> direct_pack(const Conv2dParams& p, const T* w) {
  const int64_t n = checked_product("direct weights", p.K, p.C / p.groups, p.R, p.S);
  auto packed = std::make_unique<DirectWeights<T>>(n);
  std::memcpy(packed->w.get(), w, static_cast<size_t>(n) * sizeof(T));
  return packed;
}

template <class T>
void direct_run(const Conv2dParams& p, const PackedWeights<T>& packed, const T* x,
                const T* bias, T* y) {
  const T* w = static_cast<const DirectWeights<T>&>(packed).w.get();
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups;
  const int64_t rows = std::max<int64_t>(1, 4096 / std::max<int64_t>(1, Wo * Cg * p.R * p.S));
  const int64_t row_blocks = ceil_div(Ho, rows);
  const auto kernel = direct_row<T>();
  parallel_for(p.N * p.K * row_blocks, [&](int64_t t) {
    const int64_t rb = t % row_blocks, k = (t / row_blocks) % p.K, n = t / (row_blocks * p.K);
    const int64_t g = k / Kg;
    kernels::DirectRowArgs a{Cg, p.H, p.W, p.R, p.S, 0, Wo, p.stride_h, p.stride_w,
                             p.dilation_h, p.dilation_w, p.pad_top, p.pad_left};
    const T* xg = x + (n * p.C + g * Cg) * p.H * p.W;
    const T* wk = w + k * Cg * p.R * p.S;
    const T b = bias != nullptr ? bias[k] : T(0);
    for (int64_t oh = rb * rows; oh < std::min(Ho, (rb + 1) * rows); ++oh) {
      a.oh = oh;
      kernel(a, xg, wk, b, y + ((n * p.K + k) * Ho + oh) * Wo, p.activation);
    }
  });
}

template std::unique_ptr<PackedWeights<float>> direct_pack(const Conv2dParams&, const float*);
template std::unique_ptr<PackedWeights<double>> direct_pack(const Conv2dParams&,
                                                            const double*);
template void direct_run(const Conv2dParams&, const PackedWeights<float>&, const float*,
                         const float*, float*);
template void direct_run(const Conv2dParams&, const PackedWeights<double>&, const double*,
                         const double*, double*);

}  // namespace convcore::detail
