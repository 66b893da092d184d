// pack_avx2.cpp — B-panel packing kernels, AVX2: pack_16_avx2 (float, the 16 columns of
// gemm_6x16_avx2), pack_8_avx2 (double, gemm_6x8_avx2). Contract: table.hpp, PackFn. A full panel
// goes through 8x8 (float) / 4x4 (double) register transposes: 8 row loads, 8 shuffles
// deep, 8 contiguous stores; partial panels and the kc tail through the scalar loop.
#include <immintrin.h>

#include "kernels/avx2/avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

// Columns kb..kb+7 of rows r[0..7] -> out[(kb + j)*16 + i] for j, i < 8.
inline void transpose_8x8(const float* s, int64_t ld, float* out) {
  const __m256 r0 = _mm256_loadu_ps(s), r1 = _mm256_loadu_ps(s + ld);
  const __m256 r2 = _mm256_loadu_ps(s + 2 * ld), r3 = _mm256_loadu_ps(s + 3 * ld);
  const __m256 r4 = _mm256_loadu_ps(s + 4 * ld), r5 = _mm256_loadu_ps(s + 5 * ld);
  const __m256 r6 = _mm256_loadu_ps(s + 6 * ld), r7 = _mm256_loadu_ps(s + 7 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  _mm256_storeu_ps(out + 0 * 16, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(out + 1 * 16, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(out + 2 * 16, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(out + 3 * 16, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(out + 4 * 16, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(out + 5 * 16, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(out + 6 * 16, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(out + 7 * 16, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Columns kb..kb+3 of rows r[0..3] -> out[(kb + j)*8 + i] for j, i < 4.
inline void transpose_4x4(const double* s, int64_t ld, double* out) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ld);
  const __m256d r2 = _mm256_loadu_pd(s + 2 * ld), r3 = _mm256_loadu_pd(s + 3 * ld);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(out + 0 * 8, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(out + 1 * 8, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(out + 2 * 8, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(out + 3 * 8, _mm256_permute2f128_pd(t1, t3, 0x31));
}

template <class T, int NR>
void pack_tail(const T* src, int64_t ld, int64_t rows, int64_t kb, int64_t kc, T* out) {
  for (; kb < kc; ++kb) {
    for (int64_t i = 0; i < rows; ++i) out[kb * NR + i] = src[i * ld + kb];
    for (int64_t i = rows; i < NR; ++i) out[kb * NR + i] = T(0);
  }
}

}  // namespace

void pack_16_avx2(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
             float* out) {
  int64_t kb = 0;
  if (rows == 16) {
    for (; kb + 8 <= kc; kb += 8) {
      if (prefetch > 0 && kb % 16 == 0)
        for (int i = 0; i < 16; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(src + i * ld + kb + prefetch), _MM_HINT_T0);
      transpose_8x8(src + kb, ld, out + kb * 16);
      transpose_8x8(src + 8 * ld + kb, ld, out + kb * 16 + 8);
    }
  }
  pack_tail<float, 16>(src, ld, rows, kb, kc, out);
}

void pack_8_avx2(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
            double* out) {
  int64_t kb = 0;
  if (rows == 8) {
    for (; kb + 4 <= kc; kb += 4) {
      if (prefetch > 0 && kb % 8 == 0)
        for (int i = 0; i < 8; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(src + i * ld + kb + prefetch), _MM_HINT_T0);
      transpose_4x4(src + kb, ld, out + kb * 8);
      transpose_4x4(src + 4 * ld + kb, ld, out + kb * 8 + 4);
    }
  }
  pack_tail<double, 8>(src, ld, rows, kb, kc, out);
}

}  // namespace convcore::kernels::avx2
