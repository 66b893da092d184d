// gemm_avx2.cpp — GEMM micro-kernels, AVX2+FMA (contract: kernels/table.hpp, GemmFn).
//   gemm_6x16_avx2 (float):  6 rows x 16 columns = 12 ymm accumulators; per k step 2 loads
//                            of B, 6 broadcasts of A, 12 FMAs (2 FMA pipes: 6 cycles, the
//                            loads fit in the 3 load ports).
//   gemm_6x8_avx2  (double): 6 rows x 8 columns (2 ymm of 4 doubles per row), same shape.
// A is a packed panel (a[kk*6 + i]); B is a packed panel (ldb == NR) or read in place
// (ldb > NR, a 1x1 convolution's input rows): the kernel prefetches the next panel's line
// of each B row (b + NR), which the driver's next column step reads, and the C tile before
// the epilogue. Partial tiles (m < 6, n < NR) are stored with lane masks, so callers never
// pad C. Every output is one FMA chain over k in order: the result does not depend on the
// tile's position, so any blocking or threading gives bitwise the same C.
#include <immintrin.h>

#include "kernels/act_scalar.hpp"
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vmath_avx2.hpp"

namespace convcore::kernels::avx2 {

void gemm_6x16(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, const GemmEpilogue<float>& ep) {
  __m256 acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  // Packed B: 8 rows ahead in the panel; in place: this row's line of the next panel.
  const int64_t pf = ldb == 16 ? 8 * 16 : 16;
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    _mm_prefetch(reinterpret_cast<const char*>(b + pf), _MM_HINT_T0);
#pragma GCC unroll 6
    for (int i = 0; i < 6; ++i) {
      const __m256 ai = _mm256_broadcast_ss(a + i);
      acc[i][0] = _mm256_fmadd_ps(ai, b0, acc[i][0]);
      acc[i][1] = _mm256_fmadd_ps(ai, b1, acc[i][1]);
    }
    a += 6;
    b += ldb;
  }
  const ActF32 av(ep.act);
  const __m256i m0 = mask_ps(n < 8 ? n : 8);
  const __m256i m1 = mask_ps(n > 8 ? n - 8 : 0);
  const bool full = n == 16;
  __m256 bc0 = _mm256_setzero_ps(), bc1 = _mm256_setzero_ps();
  if (ep.bias != nullptr && ep.bias_per_column) {
    bc0 = full ? _mm256_loadu_ps(ep.bias) : _mm256_maskload_ps(ep.bias, m0);
    bc1 = full ? _mm256_loadu_ps(ep.bias + 8) : _mm256_maskload_ps(ep.bias + 8, m1);
  }
  for (int64_t i = 0; i < m && i < 6; ++i) {
    float* ci = c + i * ldc;
    __m256 v0 = acc[i][0], v1 = acc[i][1];
    if (ep.accumulate) {
      v0 = _mm256_add_ps(v0, full ? _mm256_loadu_ps(ci) : _mm256_maskload_ps(ci, m0));
      v1 = _mm256_add_ps(v1, full ? _mm256_loadu_ps(ci + 8) : _mm256_maskload_ps(ci + 8, m1));
    }
    if (ep.bias != nullptr) {
      const __m256 bi0 = ep.bias_per_column ? bc0 : _mm256_broadcast_ss(ep.bias + i);
      const __m256 bi1 = ep.bias_per_column ? bc1 : bi0;
      v0 = _mm256_add_ps(v0, bi0);
      v1 = _mm256_add_ps(v1, bi1);
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

void gemm_6x8(int64_t k, const double* a, const double* b, int64_t ldb, double* c,
              int64_t ldc, int64_t m, int64_t n, const GemmEpilogue<double>& ep) {
  __m256d acc[6][2];
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) acc[i][0] = acc[i][1] = _mm256_setzero_pd();
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
#pragma GCC unroll 4
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
    b += ldb;
  }
  const __m256i m0 = mask_pd(n < 4 ? n : 4);
  const __m256i m1 = mask_pd(n > 4 ? n - 4 : 0);
  const bool full = n == 8;
  __m256d bc0 = _mm256_setzero_pd(), bc1 = _mm256_setzero_pd();
  if (ep.bias != nullptr && ep.bias_per_column) {
    bc0 = full ? _mm256_loadu_pd(ep.bias) : _mm256_maskload_pd(ep.bias, m0);
    bc1 = full ? _mm256_loadu_pd(ep.bias + 4) : _mm256_maskload_pd(ep.bias + 4, m1);
  }
  for (int64_t i = 0; i < m && i < 6; ++i) {
    double* ci = c + i * ldc;
    __m256d v0 = acc[i][0], v1 = acc[i][1];
    if (ep.accumulate) {
      v0 = _mm256_add_pd(v0, full ? _mm256_loadu_pd(ci) : _mm256_maskload_pd(ci, m0));
      v1 = _mm256_add_pd(v1, full ? _mm256_loadu_pd(ci + 4) : _mm256_maskload_pd(ci + 4, m1));
    }
    if (ep.bias != nullptr) {
      const __m256d bi0 = ep.bias_per_column ? bc0 : _mm256_broadcast_sd(ep.bias + i);
      const __m256d bi1 = ep.bias_per_column ? bc1 : bi0;
      v0 = _mm256_add_pd(v0, bi0);
      v1 = _mm256_add_pd(v1, bi1);
    }
    const bool vector_act = activate_pd(v0, ep.act) && activate_pd(v1, ep.act);
    if (full) {
      _mm256_storeu_pd(ci, v0);
      _mm256_storeu_pd(ci + 4, v1);
    } else {
      _mm256_maskstore_pd(ci, m0, v0);
      _mm256_maskstore_pd(ci + 4, m1, v1);
    }
    if (!vector_act)
      for (int64_t j = 0; j < n; ++j) ci[j] = act_one<double>(ci[j], ep.act);
  }
}

}  // namespace convcore::kernels::avx2
