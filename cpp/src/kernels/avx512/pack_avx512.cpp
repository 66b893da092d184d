// pack_avx512.cpp — B-panel packing kernels for the AVX-512 GEMM: pack_NR_avx512 for
// float (NR = kGemmNrF32 columns) and double (kGemmNrF64). Contract: table.hpp, PackFn.
// A full panel goes through 8x8 (float) / 4x4 (double) register transposes, the panel's
// NR rows of W taken 8 (4) at a time: 8 row loads, 8 shuffles deep, 8 contiguous stores
// of a row piece, two such transposes per cache line of the rows; partial panels and the
// kc tail through the scalar loop. The transposes
// are 256-bit: a 512-bit one needs twice the shuffle depth for the same stores.
#include <immintrin.h>

#include "kernels/avx512/avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

// Columns kb..kb+7 of 8 rows (ld apart) -> out[j*NR + i] for j, i < 8.
template <int NR>
void transpose_8x8(const float* s, int64_t ld, float* out) {
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
  _mm256_storeu_ps(out + 0 * NR, _mm256_permute2f128_ps(u0, u4, 0x20));
  _mm256_storeu_ps(out + 1 * NR, _mm256_permute2f128_ps(u1, u5, 0x20));
  _mm256_storeu_ps(out + 2 * NR, _mm256_permute2f128_ps(u2, u6, 0x20));
  _mm256_storeu_ps(out + 3 * NR, _mm256_permute2f128_ps(u3, u7, 0x20));
  _mm256_storeu_ps(out + 4 * NR, _mm256_permute2f128_ps(u0, u4, 0x31));
  _mm256_storeu_ps(out + 5 * NR, _mm256_permute2f128_ps(u1, u5, 0x31));
  _mm256_storeu_ps(out + 6 * NR, _mm256_permute2f128_ps(u2, u6, 0x31));
  _mm256_storeu_ps(out + 7 * NR, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Columns kb..kb+3 of 4 rows -> out[j*NR + i] for j, i < 4.
template <int NR>
void transpose_4x4(const double* s, int64_t ld, double* out) {
  const __m256d r0 = _mm256_loadu_pd(s), r1 = _mm256_loadu_pd(s + ld);
  const __m256d r2 = _mm256_loadu_pd(s + 2 * ld), r3 = _mm256_loadu_pd(s + 3 * ld);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  _mm256_storeu_pd(out + 0 * NR, _mm256_permute2f128_pd(t0, t2, 0x20));
  _mm256_storeu_pd(out + 1 * NR, _mm256_permute2f128_pd(t1, t3, 0x20));
  _mm256_storeu_pd(out + 2 * NR, _mm256_permute2f128_pd(t0, t2, 0x31));
  _mm256_storeu_pd(out + 3 * NR, _mm256_permute2f128_pd(t1, t3, 0x31));
}

// B = 8 (float) or 4 (double): the transpose's size.
template <class T, int NR, int B, void (*Transpose)(const T*, int64_t, T*)>
void pack(const T* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch, T* out) {
  // Rows are taken a group at a time (16 floats / 8 doubles: one cache line of the
  // panel row per kk), so that a pass reads as many rows at once as the 16-column AVX2
  // pack (more concurrent streams and the hardware prefetcher falls behind), and a line
  // of each row (two transposes) is used up at once: rows whose length is a multiple of
  // 4 KiB all map to one L1 set, so a line left for later would be evicted by then.
  constexpr int line = 64 / sizeof(T);
  int64_t kb = 0;
  if (rows == NR) {
    const int64_t full = kc / B * B;
    for (int g = 0; g < NR; g += line) {
      const T* sg = src + g * ld;
      T* og = out + g;
      int64_t k = 0;
      for (; k + line <= full; k += line) {
        if (prefetch > 0)
          for (int i = 0; i < line; ++i)
            _mm_prefetch(reinterpret_cast<const char*>(sg + i * ld + k + prefetch), _MM_HINT_T0);
#pragma GCC unroll 2
        for (int i = 0; i < line; i += B)
#pragma GCC unroll 2
          for (int h = 0; h < line; h += B)
            Transpose(sg + i * ld + k + h, ld, og + (k + h) * NR + i);
      }
      for (; k < full; k += B)
#pragma GCC unroll 2
        for (int i = 0; i < line; i += B) Transpose(sg + i * ld + k, ld, og + k * NR + i);
    }
    kb = full;
  }
  for (; kb < kc; ++kb) {
    for (int64_t i = 0; i < rows; ++i) out[kb * NR + i] = src[i * ld + kb];
    for (int64_t i = rows; i < NR; ++i) out[kb * NR + i] = T(0);
  }
}

}  // namespace

void pack_32_avx512(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
              float* out) {
  pack<float, kGemmNrF32, 8, transpose_8x8<kGemmNrF32>>(src, ld, rows, kc, prefetch, out);
}

void pack_16_avx512(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
              double* out) {
  pack<double, kGemmNrF64, 4, transpose_4x4<kGemmNrF64>>(src, ld, rows, kc, prefetch, out);
}

}  // namespace convcore::kernels::avx512
