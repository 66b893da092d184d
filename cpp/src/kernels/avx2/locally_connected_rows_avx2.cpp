// locally_connected_rows_avx2.cpp — locally_connected_rows_{12x8_f32,6x8_f64}_avx2: one
// output position of a locally connected layer for a block of up to 8 images, read
// straight from padded input rows laid out with the images innermost (contract in
// table.hpp), AVX2+FMA.
//
// One tap of 8 images is one vector (two for double), so there is no patch gather and
// no horizontal sum: per tap, 1 (2) input loads and MK weight broadcasts feed MK (2*MK)
// FMAs into 12 accumulators, MK = 12 filters (float) or 6 (double); the filters past a
// multiple of MK run in one tile of 8 (float) and tiles of 4 (2) with the last row
// repeated and dropped. The weights are a stream read once (megabytes), so while a tile
// runs, the next tile's rows are prefetched into L1 and the next position's weights into
// L2, one cache line each per tap (the two prefetches took N=8, C=16, 32x32, K=32 from
// 4.8 to 2.4 ms).
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

// Prefetch the line `bytes` past p. Integer arithmetic: the address may lie past the
// array (the last tile's look-ahead), which a prefetch ignores but a pointer may not reach.
template <int Hint>
inline void prefetch(const void* p, int64_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + bytes),
               static_cast<_mm_hint>(Hint));
}

// Filters [k0, k0 + MK); row(i) is the weight row of filter k0 + i.
template <int MK, class Row>
void tile_f32(const LocallyConnectedRowsArgs& a, const float* x, const float* bias, float* y,
              const Activation& act, int64_t k0, const float* next, Row row) {
  __m256 acc[MK];
  #pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) acc[i] = _mm256_setzero_ps();
  const int64_t Q = a.Q, S = a.S, ldq = a.ldq, lds = a.lds;
  const int64_t far = a.K * Q * S * static_cast<int64_t>(sizeof(float));  // next position
  int64_t t = 0;
  for (int64_t q = 0; q < Q; ++q) {
    const float* xq = x + q * ldq;
    for (int64_t s = 0; s < S; ++s, ++t) {
      prefetch<_MM_HINT_T0>(next, 64 * t);
      prefetch<_MM_HINT_T1>(row(0), far + 64 * t);
      const __m256 xv = _mm256_loadu_ps(xq + s * lds);
      #pragma GCC unroll 12
      for (int i = 0; i < MK; ++i)
        acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(row(i) + t), xv, acc[i]);
    }
  }
  const ActF32 av(act);  // built after the loop: its two vectors would take registers
  // A constant trip count (the test inside) keeps acc[] out of memory.
#pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) {
    if (k0 + i >= a.K) break;
    __m256 v = acc[i];
    if (bias != nullptr) v = _mm256_add_ps(v, _mm256_set1_ps(bias[(k0 + i) * a.bias_stride]));
    alignas(32) float out[8];
    _mm256_store_ps(out, activate_ps(v, av));
    float* yk = y + (k0 + i) * a.y_k_stride;
    for (int64_t n = 0; n < a.N; ++n) yk[n * a.y_n_stride] = out[n];
  }
}

template <int MK>
void tile_f64(const LocallyConnectedRowsArgs& a, const double* w, const double* x,
              const double* bias, double* y, const Activation& act, int64_t k0) {
  const int64_t kd = a.Q * a.S;
  const double* wr[MK];
  #pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) wr[i] = w + std::min<int64_t>(k0 + i, a.K - 1) * kd;
  const double* next = w + std::min<int64_t>(k0 + MK, a.K) * kd;
  const int64_t far = a.K * kd * static_cast<int64_t>(sizeof(double));  // next position
  __m256d acc[MK][2];
  #pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  const int64_t Q = a.Q, S = a.S, ldq = a.ldq, lds = a.lds;
  int64_t t = 0;
  for (int64_t q = 0; q < Q; ++q) {
    const double* xq = x + q * ldq;
    for (int64_t s = 0; s < S; ++s, ++t) {
      prefetch<_MM_HINT_T0>(next, 128 * t);
      prefetch<_MM_HINT_T0>(next, 128 * t + 64);
      prefetch<_MM_HINT_T1>(wr[0], far + 128 * t);
      prefetch<_MM_HINT_T1>(wr[0], far + 128 * t + 64);
      const __m256d x0 = _mm256_loadu_pd(xq + s * lds);
      const __m256d x1 = _mm256_loadu_pd(xq + s * lds + 4);
      #pragma GCC unroll 12
      for (int i = 0; i < MK; ++i) {
        const __m256d wv = _mm256_broadcast_sd(wr[i] + t);
        acc[i][0] = _mm256_fmadd_pd(wv, x0, acc[i][0]);
        acc[i][1] = _mm256_fmadd_pd(wv, x1, acc[i][1]);
      }
    }
  }
#pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) {
    if (k0 + i >= a.K) break;
    alignas(32) double out[8];
    for (int h = 0; h < 2; ++h) {
      __m256d v = acc[i][h];
      if (bias != nullptr) v = _mm256_add_pd(v, _mm256_set1_pd(bias[(k0 + i) * a.bias_stride]));
      _mm256_store_pd(out + 4 * h, activate_pd(v, act));
    }
    double* yk = y + (k0 + i) * a.y_k_stride;
    for (int64_t n = 0; n < a.N; ++n) yk[n * a.y_n_stride] = out[n];
  }
}

}  // namespace

void locally_connected_rows_12x8_f32_avx2(const LocallyConnectedRowsArgs& a, const float* w,
                                const float* x, const float* bias, float* y,
                                const Activation& act) {
  const int64_t kd = a.Q * a.S;
  int64_t k0 = 0;
  for (; k0 + 12 <= a.K; k0 += 12) {
    // Row i at base[i / 3] + (i % 3) * kd: four pointers and one stride address 12 rows,
    // leaving registers for the loop (12 separate pointers spill).
    const float* base[4];
    #pragma GCC unroll 12
    for (int b = 0; b < 4; ++b) base[b] = w + (k0 + 3 * b) * kd;
    tile_f32<12>(a, x, bias, y, act, k0, w + std::min(k0 + 12, a.K) * kd,
                 [&](int i) { return base[i / 3] + (i % 3) * kd; });
  }
  for (; k0 < a.K; k0 += 4) {
    const float* rows[4];  // past the last filter: the last row again, results dropped
    #pragma GCC unroll 12
    for (int i = 0; i < 4; ++i) rows[i] = w + std::min<int64_t>(k0 + i, a.K - 1) * kd;
    tile_f32<4>(a, x, bias, y, act, k0, w + std::min(k0 + 4, a.K) * kd,
                [&](int i) { return rows[i]; });
  }
}

void locally_connected_rows_6x8_f64_avx2(const LocallyConnectedRowsArgs& a, const double* w,
                                const double* x, const double* bias, double* y,
                                const Activation& act) {
  int64_t k0 = 0;
  for (; k0 + 6 <= a.K; k0 += 6) tile_f64<6>(a, w, x, bias, y, act, k0);
  for (; k0 < a.K; k0 += 2) tile_f64<2>(a, w, x, bias, y, act, k0);
}

}  // namespace convcore::kernels::avx2
