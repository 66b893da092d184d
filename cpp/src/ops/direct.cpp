// direct.cpp — the direct convolution driver: one task per (image, output channel,
// block of output rows); each output row is computed whole by the direct_row kernel.
#include <algorithm>

#include "checked.hpp"
#include "dispatch.hpp"
#include "ops/conv_drivers.hpp"
#include "threadpool.hpp"

namespace convcore::detail {
namespace {

template <class T>
kernels::DirectRowFn<T> direct_row();
template <>
kernels::DirectRowFn<float> direct_row<float>() { return kernels().direct_row_f32.fn; }
template <>
kernels::DirectRowFn<double> direct_row<double>() { return kernels().direct_row_f64.fn; }

}  // namespace

template <class T>
void conv2d_direct(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y) {
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

template void conv2d_direct<float>(const Conv2dParams&, const float*, const float*,
                                   const float*, float*);
template void conv2d_direct<double>(const Conv2dParams&, const double*, const double*,
                                    const double*, double*);

}  // namespace convcore::detail
