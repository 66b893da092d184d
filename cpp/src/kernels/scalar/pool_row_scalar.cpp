// pool_row_scalar.cpp — max_pool_row_*_scalar, avg_pool_row_*_scalar: one output row of
// 2D max / average pooling over one plane (contract in table.hpp). Two passes, the same
// as the SIMD twins: reduce the R input rows into tmp (padding columns hold the
// identity), then reduce S taps of tmp per output. Max lets NaN through: a NaN tap
// replaces the running maximum and nothing replaces a NaN maximum (v > NaN is false).
#include <algorithm>
#include <limits>

#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T>
T max_nan(T m, T v) {
  return (v > m || v != v) ? v : m;
}

// tmp[t] = reduce over the valid rows r of x[ih(r), t - pad_left] (identity outside).
template <class T, bool Max>
void reduce_rows(const PoolRowArgs& p, const T* x, T* tmp) {
  const int64_t tw = (p.wo - 1) * p.stride_w + (p.S - 1) * p.dilation_w + 1;
  const T identity = Max ? -std::numeric_limits<T>::infinity() : T(0);
  for (int64_t t = 0; t < tw; ++t) tmp[t] = identity;
  const int64_t c0 = std::min(p.pad_left, tw), c1 = std::min(p.pad_left + p.W, tw);
  for (int64_t r = 0; r < p.R; ++r) {
    const int64_t ih = p.oh * p.stride_h + r * p.dilation_h - p.pad_top;
    if (ih < 0 || ih >= p.H) continue;
    const T* row = x + ih * p.W;  // tmp[t] meets row[t - pad_left]
    for (int64_t t = c0; t < c1; ++t) {
      const T v = row[t - p.pad_left];
      tmp[t] = Max ? max_nan(tmp[t], v) : tmp[t] + v;
    }
  }
}

template <class T>
void max_pool_row(const PoolRowArgs& p, const T* x, T* y, T* tmp) {
  reduce_rows<T, true>(p, x, tmp);
  for (int64_t j = 0; j < p.wo; ++j) {
    T m = -std::numeric_limits<T>::infinity();
    for (int64_t s = 0; s < p.S; ++s) m = max_nan(m, tmp[j * p.stride_w + s * p.dilation_w]);
    y[j] = m;
  }
}

template <class T>
void avg_pool_row(const PoolRowArgs& p, const T* x, T* y, T* tmp, T row_count,
                  const T* col_count) {
  reduce_rows<T, false>(p, x, tmp);
  for (int64_t j = 0; j < p.wo; ++j) {
    T sum = T(0);
    for (int64_t s = 0; s < p.S; ++s) sum += tmp[j * p.stride_w + s * p.dilation_w];
    y[j] = sum / (row_count * col_count[j]);
  }
}

}  // namespace

void max_pool_row_f32_scalar(const PoolRowArgs& p, const float* x, float* y, float* tmp) {
  max_pool_row<float>(p, x, y, tmp);
}
void max_pool_row_f64_scalar(const PoolRowArgs& p, const double* x, double* y, double* tmp) {
  max_pool_row<double>(p, x, y, tmp);
}
void avg_pool_row_f32_scalar(const PoolRowArgs& p, const float* x, float* y, float* tmp,
                      float row_count, const float* col_count) {
  avg_pool_row<float>(p, x, y, tmp, row_count, col_count);
}
void avg_pool_row_f64_scalar(const PoolRowArgs& p, const double* x, double* y, double* tmp,
                      double row_count, const double* col_count) {
  avg_pool_row<double>(p, x, y, tmp, row_count, col_count);
}

}  // namespace convcore::kernels::scalar
