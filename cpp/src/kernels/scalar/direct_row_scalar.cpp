// direct_row_scalar.cpp — direct_row_scalar: one output row of a direct convolution
// (NCHW, zero padding), plain loops. The per-tap valid column range is computed once so
// the inner loop has no bounds test.
#include <algorithm>

#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T>
void direct_row(const DirectRowArgs& p, const T* x, const T* w, T bias, T* y,
                const Activation& act) {
  for (int64_t j = 0; j < p.wo; ++j) y[j] = T(0);
  for (int64_t c = 0; c < p.C; ++c) {
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t ih = p.oh * p.stride_h + r * p.dilation_h - p.pad_top;
      if (ih < 0 || ih >= p.H) continue;
      const T* xrow = x + (c * p.H + ih) * p.W;
      for (int64_t s = 0; s < p.S; ++s) {
        const T wv = w[(c * p.R + r) * p.S + s];
        const int64_t off = s * p.dilation_w - p.pad_left;  // iw = j*sw + off
        // valid j: 0 <= j*sw + off < W
        const int64_t j0 = off >= 0 ? 0 : (-off + p.stride_w - 1) / p.stride_w;
        const int64_t j1 = off >= p.W ? 0 : std::min(p.wo, (p.W - off - 1) / p.stride_w + 1);
        for (int64_t j = j0; j < j1; ++j) y[j] += wv * xrow[j * p.stride_w + off];
      }
    }
  }
  for (int64_t j = 0; j < p.wo; ++j) y[j] = act_one<T>(y[j] + bias, act);
}

}  // namespace

void direct_row_f32(const DirectRowArgs& p, const float* x, const float* w, float bias,
                    float* y, const Activation& act) {
  direct_row<float>(p, x, w, bias, y, act);
}
void direct_row_f64(const DirectRowArgs& p, const double* x, const double* w, double bias,
                    double* y, const Activation& act) {
  direct_row<double>(p, x, w, bias, y, act);
}

}  // namespace convcore::kernels::scalar
