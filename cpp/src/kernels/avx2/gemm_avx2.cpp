// gemm_avx2.cpp — GEMM micro-kernels, AVX2+FMA (contract: kernels/table.hpp, GemmFn).
//   gemm_6x16_avx2 (float):  6 rows x 16 columns = 12 ymm accumulators; per k step 2 loads
//                            of B, 6 broadcasts of A, 12 FMAs (2 FMA pipes: 6 cycles, the
//                            loads fit in the 3 load ports).
//   gemm_6x8_avx2  (double): 6 rows x 8 columns (2 ymm of 4 doubles per row), same shape.
// A is a packed panel (a[kk*6 + i]); B is a packed panel (ldb == NR) or read in place
// (ldb > NR: a gathered row-major block, a 1x1 convolution's input rows): the kernel
// prefetches B 8 rows ahead and one line to the right, and the C tile before the
// epilogue. Partial tiles (m < 6, n < NR) are stored with lane masks, so callers never
// pad C. Every output is one FMA chain over k in order: the result does not depend on the
// tile's position, so any blocking or threading gives bitwise the same C.
#include <immintrin.h>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx2 {

void gemm_6x16_avx2(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, const GemmEpilogue<float>& ep) {
  // Twelve named accumulators (an array indexed by the epilogue's runtime row count would
  // live on the stack); spilled once to `acc` for the epilogue.
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  // B 8 rows ahead: a panel read in place (ldb a multiple of many cache lines) maps to
  // few L1 sets and is evicted between uses, so its rows are fetched again just in time;
  // and b + 16, the line of this row the next panel starts with (read in place, nothing
  // else brings it in early; packed, it is the next row, already there).
  const int64_t pf = 8 * ldb;
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256 b0 = _mm256_loadu_ps(b);
    const __m256 b1 = _mm256_loadu_ps(b + 8);
    _mm_prefetch(reinterpret_cast<const char*>(b + pf), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 16), _MM_HINT_T0);
    __m256 ai = _mm256_broadcast_ss(a + 0);
    c00 = _mm256_fmadd_ps(ai, b0, c00);
    c01 = _mm256_fmadd_ps(ai, b1, c01);
    ai = _mm256_broadcast_ss(a + 1);
    c10 = _mm256_fmadd_ps(ai, b0, c10);
    c11 = _mm256_fmadd_ps(ai, b1, c11);
    ai = _mm256_broadcast_ss(a + 2);
    c20 = _mm256_fmadd_ps(ai, b0, c20);
    c21 = _mm256_fmadd_ps(ai, b1, c21);
    ai = _mm256_broadcast_ss(a + 3);
    c30 = _mm256_fmadd_ps(ai, b0, c30);
    c31 = _mm256_fmadd_ps(ai, b1, c31);
    ai = _mm256_broadcast_ss(a + 4);
    c40 = _mm256_fmadd_ps(ai, b0, c40);
    c41 = _mm256_fmadd_ps(ai, b1, c41);
    ai = _mm256_broadcast_ss(a + 5);
    c50 = _mm256_fmadd_ps(ai, b0, c50);
    c51 = _mm256_fmadd_ps(ai, b1, c51);
    a += 6;
    b += ldb;
  }
  const __m256 acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                            {c30, c31}, {c40, c41}, {c50, c51}};
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

void gemm_6x8_avx2(int64_t k, const double* a, const double* b, int64_t ldb, double* c,
              int64_t ldc, int64_t m, int64_t n, const GemmEpilogue<double>& ep) {
  __m256d c00 = _mm256_setzero_pd(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256d c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
#pragma GCC unroll 6
  for (int i = 0; i < 6; ++i) _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc), _MM_HINT_T0);
  const int64_t pf = 8 * ldb;
#pragma GCC unroll 4
  for (int64_t kk = 0; kk < k; ++kk) {
    const __m256d b0 = _mm256_loadu_pd(b);
    const __m256d b1 = _mm256_loadu_pd(b + 4);
    _mm_prefetch(reinterpret_cast<const char*>(b + pf), _MM_HINT_T0);
    _mm_prefetch(reinterpret_cast<const char*>(b + 8), _MM_HINT_T0);
    __m256d ai = _mm256_broadcast_sd(a + 0);
    c00 = _mm256_fmadd_pd(ai, b0, c00);
    c01 = _mm256_fmadd_pd(ai, b1, c01);
    ai = _mm256_broadcast_sd(a + 1);
    c10 = _mm256_fmadd_pd(ai, b0, c10);
    c11 = _mm256_fmadd_pd(ai, b1, c11);
    ai = _mm256_broadcast_sd(a + 2);
    c20 = _mm256_fmadd_pd(ai, b0, c20);
    c21 = _mm256_fmadd_pd(ai, b1, c21);
    ai = _mm256_broadcast_sd(a + 3);
    c30 = _mm256_fmadd_pd(ai, b0, c30);
    c31 = _mm256_fmadd_pd(ai, b1, c31);
    ai = _mm256_broadcast_sd(a + 4);
    c40 = _mm256_fmadd_pd(ai, b0, c40);
    c41 = _mm256_fmadd_pd(ai, b1, c41);
    ai = _mm256_broadcast_sd(a + 5);
    c50 = _mm256_fmadd_pd(ai, b0, c50);
    c51 = _mm256_fmadd_pd(ai, b1, c51);
    a += 6;
    b += ldb;
  }
  const __m256d acc[6][2] = {{c00, c01}, {c10, c11}, {c20, c21},
                             {c30, c31}, {c40, c41}, {c50, c51}};
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
    v0 = activate_pd(v0, ep.act);
    v1 = activate_pd(v1, ep.act);
    if (full) {
      _mm256_storeu_pd(ci, v0);
      _mm256_storeu_pd(ci + 4, v1);
    } else {
      _mm256_maskstore_pd(ci, m0, v0);
      _mm256_maskstore_pd(ci + 4, m1, v1);
    }
  }
}

}  // namespace convcore::kernels::avx2
