// gemm_avx2.cpp — GEMM micro-kernels, AVX2+FMA.
//   gemm_6x16_avx2 (float):  6 rows x 16 columns = 12 ymm accumulators, 2 loads of B and
//                            6 broadcasts of A per k step.
//   gemm_6x8_avx2  (double): 6 rows x 8 columns (2 ymm of 4 doubles per row).
// Packing and epilogue as in kernels/README.md; partial tiles (m < 6, n < NR) are stored
// with lane masks, so callers never pad C.
#include <immintrin.h>

#include "kernels/act_scalar.hpp"
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vmath_avx2.hpp"

namespace convcore::kernels::avx2 {

void gemm_6x16(int64_t k, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
               int64_t n, bool accumulate, const float* bias, const Activation& act) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += 6;
    b += 16;
  }
  const ActF32 av(act);
  const __m256i m0 = mask_ps(n < 8 ? n : 8);
  const __m256i m1 = mask_ps(n > 8 ? n - 8 : 0);
  const bool full = n == 16;
  for (int64_t i = 0; i < m && i < 6; ++i) {
    float* ci = c + i * ldc;
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm256_add_ps(v0, full ? _mm256_loadu_ps(ci) : _mm256_maskload_ps(ci, m0));
      v1 = _mm256_add_ps(v1, full ? _mm256_loadu_ps(ci + 8) : _mm256_maskload_ps(ci + 8, m1));
    }
    if (bias != nullptr) {
      const __m256 bi = _mm256_broadcast_ss(bias + i);
      v0 = _mm256_add_ps(v0, bi);
      v1 = _mm256_add_ps(v1, bi);
    }
    v0 = activate_ps(v0, av);
    v1 = activate_ps(v1, av);
    if (full) {
      _mm256_storeu_ps(ci, v0);
      _mm256_storeu_ps(ci + 8, v1);
    } else {
      _mm256_maskstore_ps(ci, m0, v0);
      _mm256_maskstore_ps(ci + 8, m1, v1);
    }
  }
}

void gemm_6x8(int64_t k, const double* a, const double* b, double* c, int64_t ldc, int64_t m,
              int64_t n, bool accumulate, const double* bias, const Activation& act) {
  __m256d acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256d b0 = _mm256_loadu_pd(b);
    const __m256d b1 = _mm256_loadu_pd(b + 4);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m256d ai = _mm256_broadcast_sd(a + i);
      acc[i][0] = _mm256_fmadd_pd(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_pd(ai, b1, acc[i][1]);
    }
    a += 6;
    b += 8;
  }
  const __m256i m0 = mask_pd(n < 4 ? n : 4);
  const __m256i m1 = mask_pd(n > 4 ? n - 4 : 0);
  const bool full = n == 8;
  for (int64_t i = 0; i < m && i < 6; ++i) {
    double* ci = c + i * ldc;
    __m256d v0 = acc[i][0], v1 = acc[i][1];
    if (accumulate) {
      v0 = _mm256_add_pd(v0, full ? _mm256_loadu_pd(ci) : _mm256_maskload_pd(ci, m0));
      v1 = _mm256_add_pd(v1, full ? _mm256_loadu_pd(ci + 4) : _mm256_maskload_pd(ci + 4, m1));
    }
    if (bias != nullptr) {
      const __m256d bi = _mm256_broadcast_sd(bias + i);
      v0 = _mm256_add_pd(v0, bi);
      v1 = _mm256_add_pd(v1, bi);
    }
    const bool vector_act = activate_pd(v0, act) && activate_pd(v1, act);
    if (full) {
      _mm256_storeu_pd(ci, v0);
      _mm256_storeu_pd(ci + 4, v1);
    } else {
      _mm256_maskstore_pd(ci, m0, v0);
      _mm256_maskstore_pd(ci + 4, m1, v1);
    }
    if (!vector_act)
      for (int64_t j = 0; j < n; ++j) ci[j] = act_one<double>(ci[j], act);
  }
}

}  // namespace convcore::kernels::avx2
