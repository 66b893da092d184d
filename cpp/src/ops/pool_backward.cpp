// pool_backward.cpp — gradients of max and average pooling (PyTorch's CPU semantics):
// each output's gradient goes to its window's maximum (max) or is spread over the window's
// taps inside the input (avg). One task per plane accumulates into that plane only, in
// output order: the same bits for any thread count.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "ops/pool_window.hpp"
#include "threadpool.hpp"

namespace convcore {
namespace {

// First tap of a window inside the input, along one axis (PyTorch steps by the dilation).
int64_t first_inside(int64_t start, int64_t dilation) {
  while (start < 0) start += dilation;
  return start;
}

template <class T>
void max_grad(const Pool2dParams& p, const T* g, const T* x, T* gi) {
  p.validate();
  if (p.N == 0 || p.C == 0) return;
  if (g == nullptr || x == nullptr || gi == nullptr)
    throw value_error("max_pool2d_backward: arrays must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w(), H = p.H, W = p.W;
  detail::parallel_for(p.N * p.C, [&](int64_t plane) {
    const T* xp = x + plane * H * W;
    const T* gp = g + plane * Ho * Wo;
    T* out = gi + plane * H * W;
    std::fill(out, out + H * W, T(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_h;
      const int64_t h1 = std::min(h0 + (p.R - 1) * p.dilation_h + 1, H);
      const int64_t hs = first_inside(h0, p.dilation_h);
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_w;
        const int64_t w1 = std::min(w0 + (p.S - 1) * p.dilation_w + 1, W);
        const int64_t ws = first_inside(w0, p.dilation_w);
        // As PyTorch: strictly greater replaces (ties keep the first), a NaN always does.
        // Selects, not branches: which tap wins is data, and a mispredicted branch per
        // tap cost 3x the forward's time.
        int64_t best = hs * W + ws;
        T mx = -INFINITY;
        for (int64_t ih = hs; ih < h1; ih += p.dilation_h)
          for (int64_t iw = ws; iw < w1; iw += p.dilation_w) {
            const T v = xp[ih * W + iw];
            const bool take = (v > mx) | (v != v);
            mx = take ? v : mx;
            best = take ? ih * W + iw : best;
          }
        out[best] += gp[oh * Wo + ow];
      }
    }
  });
}

template <class T>
void avg_grad(const Pool2dParams& p, const T* g, T* gi) {
  p.validate();
  if (p.dilation_h != 1 || p.dilation_w != 1)
    throw value_error("avg_pool2d_backward: dilation must be 1");
  if (p.N == 0 || p.C == 0) return;
  if (g == nullptr || gi == nullptr)
    throw value_error("avg_pool2d_backward: arrays must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w(), H = p.H, W = p.W;
  std::vector<T> col_count(static_cast<size_t>(Wo));
  for (int64_t j = 0; j < Wo; ++j)
    col_count[j] = static_cast<T>(
        detail::window_count(j, W, p.S, p.pad_w, p.stride_w, p.count_include_pad));
  detail::parallel_for(p.N * p.C, [&](int64_t plane) {
    const T* gp = g + plane * Ho * Wo;
    T* out = gi + plane * H * W;
    std::fill(out, out + H * W, T(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const T rows = static_cast<T>(
          detail::window_count(oh, H, p.R, p.pad_h, p.stride_h, p.count_include_pad));
      const int64_t h0 = std::max<int64_t>(oh * p.stride_h - p.pad_h, 0);
      const int64_t h1 = std::min(oh * p.stride_h - p.pad_h + p.R, H);
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const T delta = gp[oh * Wo + ow] / (rows * col_count[ow]);
        const int64_t w0 = std::max<int64_t>(ow * p.stride_w - p.pad_w, 0);
        const int64_t w1 = std::min(ow * p.stride_w - p.pad_w + p.S, W);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) out[ih * W + iw] += delta;
      }
    }
  });
}

}  // namespace

void max_pool2d_backward(const Pool2dParams& p, const float* g, const float* x, float* gi) {
  max_grad(p, g, x, gi);
}
void max_pool2d_backward(const Pool2dParams& p, const double* g, const double* x, double* gi) {
  max_grad(p, g, x, gi);
}
void avg_pool2d_backward(const Pool2dParams& p, const float* g, float* gi) { avg_grad(p, g, gi); }
void avg_pool2d_backward(const Pool2dParams& p, const double* g, double* gi) {
  avg_grad(p, g, gi);
}

}  // namespace convcore
