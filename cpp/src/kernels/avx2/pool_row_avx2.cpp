// pool_row_avx2.cpp — max_pool_row_*_avx2, avg_pool_row_*_avx2: one output row of 2D max /
// average pooling over one plane (contract in table.hpp), AVX2, 8 floats / 4 doubles a
// step. Pass 1 reduces the R input rows into tmp along contiguous columns; pass 2
// reduces S taps of tmp per output: contiguous loads for stride 1, a gather otherwise.
// Tails go through lane masks, so the body and the tails share one code path. Max lets
// NaN through exactly as the scalar twin: the running maximum keeps a NaN (max returns
// its second operand when either is NaN) and a NaN tap is blended in.
#include <immintrin.h>

#include <algorithm>
#include <limits>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

constexpr int64_t kMaxGatherStride = 1 << 24;  // 7 * stride fits an int32 index

// Lanes i*stride of p for i < n (the other lanes read nothing): a gather while the lane
// offsets fit its 32-bit indices, else element by element.
inline __m256 strided(const float* p, int64_t stride, int64_t n) {
  if (stride <= kMaxGatherStride) {
    const __m256i idx = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                           _mm256_set1_epi32(static_cast<int>(stride)));
    return _mm256_mask_i32gather_ps(_mm256_setzero_ps(), p, idx,
                                    _mm256_castsi256_ps(mask_ps(n)), 4);
  }
  alignas(32) float v[8] = {};
  for (int64_t i = 0; i < n; ++i) v[i] = p[i * stride];
  return _mm256_load_ps(v);
}
inline __m256d strided(const double* p, int64_t stride, int64_t n) {
  if (stride <= kMaxGatherStride) {
    const __m128i idx = _mm_mullo_epi32(_mm_setr_epi32(0, 1, 2, 3),
                                        _mm_set1_epi32(static_cast<int>(stride)));
    return _mm256_mask_i32gather_pd(_mm256_setzero_pd(), p, idx,
                                    _mm256_castsi256_pd(mask_pd(n)), 8);
  }
  alignas(32) double v[4] = {};
  for (int64_t i = 0; i < n; ++i) v[i] = p[i * stride];
  return _mm256_load_pd(v);
}

template <class O, bool Max>
typename O::V combine(typename O::V acc, typename O::V v) {
  if constexpr (Max)
    return O::max_nan(acc, v);
  else
    return O::add(acc, v);
}

// Pass 1: tmp[t] = reduce over the valid rows r of x[ih(r), t - pad_left].
template <class O, bool Max>
void reduce_rows(const PoolRowArgs& p, const typename O::T* x, typename O::T* tmp) {
  using T = typename O::T;
  const int64_t tw = (p.wo - 1) * p.stride_w + (p.S - 1) * p.dilation_w + 1;
  const T identity = Max ? -std::numeric_limits<T>::infinity() : T(0);
  const int64_t c0 = std::min(p.pad_left, tw), c1 = std::min(p.pad_left + p.W, tw);
  for (int64_t t = 0; t < tw; ++t) tmp[t] = identity;
  for (int64_t r = 0; r < p.R; ++r) {
    const int64_t ih = p.oh * p.stride_h + r * p.dilation_h - p.pad_top;
    if (ih < 0 || ih >= p.H) continue;
    const T* row = x + ih * p.W;  // tmp[t] meets row[t - pad_left]
    for (int64_t t = c0; t < c1; t += O::L) {
      const bool full = t + O::L <= c1;
      const __m256i m = O::mask(full ? O::L : c1 - t);
      const typename O::V v = O::load(row + (t - p.pad_left), m, full);
      O::store(tmp + t, combine<O, Max>(O::load(tmp + t, m, full), v), m, full);
    }
  }
}

// Pass 2: y[j] = reduce_s tmp[j*stride_w + s*dilation_w], then finish(vector, j).
template <class O, bool Max, class Finish>
void reduce_cols(const PoolRowArgs& p, const typename O::T* tmp, typename O::T* y,
                 Finish finish) {
  using T = typename O::T;
  const T identity = Max ? -std::numeric_limits<T>::infinity() : T(0);
  for (int64_t j = 0; j < p.wo; j += O::L) {
    const bool full = j + O::L <= p.wo;
    const __m256i m = O::mask(full ? O::L : p.wo - j);
    typename O::V acc = O::set1(identity);
    for (int64_t s = 0; s < p.S; ++s) {
      const T* src = tmp + j * p.stride_w + s * p.dilation_w;
      acc = combine<O, Max>(acc, p.stride_w == 1 ? O::load(src, m, full)
                                                 : strided(src, p.stride_w, full ? O::L : p.wo - j));
    }
    O::store(y + j, finish(acc, j, m, full), m, full);
  }
}

template <class O>
void max_pool_row(const PoolRowArgs& p, const typename O::T* x, typename O::T* y,
                  typename O::T* tmp) {
  reduce_rows<O, true>(p, x, tmp);
  reduce_cols<O, true>(p, tmp, y, [](typename O::V v, int64_t, __m256i, bool) { return v; });
}

template <class O>
void avg_pool_row(const PoolRowArgs& p, const typename O::T* x, typename O::T* y,
                  typename O::T* tmp, typename O::T row_count,
                  const typename O::T* col_count) {
  reduce_rows<O, false>(p, x, tmp);
  const typename O::V rc = O::set1(row_count);
  reduce_cols<O, false>(p, tmp, y, [&](typename O::V v, int64_t j, __m256i m, bool full) {
    // Masked-off lanes divide by 0 (loaded as 0) and are never stored.
    return O::div(v, O::mul(rc, O::load(col_count + j, m, full)));
  });
}

}  // namespace

void max_pool_row_f32_avx2(const PoolRowArgs& p, const float* x, float* y, float* tmp) {
  max_pool_row<Vec<float>>(p, x, y, tmp);
}
void max_pool_row_f64_avx2(const PoolRowArgs& p, const double* x, double* y, double* tmp) {
  max_pool_row<Vec<double>>(p, x, y, tmp);
}
void avg_pool_row_f32_avx2(const PoolRowArgs& p, const float* x, float* y, float* tmp,
                      float row_count, const float* col_count) {
  avg_pool_row<Vec<float>>(p, x, y, tmp, row_count, col_count);
}
void avg_pool_row_f64_avx2(const PoolRowArgs& p, const double* x, double* y, double* tmp,
                      double row_count, const double* col_count) {
  avg_pool_row<Vec<double>>(p, x, y, tmp, row_count, col_count);
}

}  // namespace convcore::kernels::avx2
