// pack_avx512.cpp — panel packing kernels for the AVX-512 GEMM: B panels pack_NR_avx512
// for float (NR = kGemmNrF32 columns) and double (kGemmNrF64); A panels pack_14_avx512
// (MR = kGemmMrF32 = kGemmMrF64 rows) for both. Contract: table.hpp, PackFn.
// A full panel goes through 8x8 (float) / 4x4 (double) register transposes, the panel's
// NR rows of W taken 8 (4) at a time: 8 row loads, 8 shuffles deep, 8 contiguous stores
// of a row piece, two such transposes per cache line of the rows; partial panels and the
// kc tail through the scalar loop. The transposes
// are 256-bit: a 512-bit one needs twice the shuffle depth for the same stores.
#include <immintrin.h>

#include "kernels/avx512/avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

// Columns kb..kb+7 of ROWS <= 8 rows (ld apart) -> out[j*NR + i] for j < 8, i < ROWS
// (rows past ROWS read as zero and are not stored: lane masks).
template <int NR, int ROWS = 8>
void transpose_8x8(const float* s, int64_t ld, float* out) {
  auto row = [&](int i) { return i < ROWS ? _mm256_loadu_ps(s + i * ld) : _mm256_setzero_ps(); };
  const __m256 r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3);
  const __m256 r4 = row(4), r5 = row(5), r6 = row(6), r7 = row(7);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
  const __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  auto store = [&](int j, __m256 v) {
    if constexpr (ROWS == 8)
      _mm256_storeu_ps(out + j * NR, v);
    else
      _mm256_mask_storeu_ps(out + j * NR, static_cast<__mmask8>((1u << ROWS) - 1), v);
  };
  store(0, _mm256_permute2f128_ps(u0, u4, 0x20));
  store(1, _mm256_permute2f128_ps(u1, u5, 0x20));
  store(2, _mm256_permute2f128_ps(u2, u6, 0x20));
  store(3, _mm256_permute2f128_ps(u3, u7, 0x20));
  store(4, _mm256_permute2f128_ps(u0, u4, 0x31));
  store(5, _mm256_permute2f128_ps(u1, u5, 0x31));
  store(6, _mm256_permute2f128_ps(u2, u6, 0x31));
  store(7, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// Columns kb..kb+3 of ROWS <= 4 rows -> out[j*NR + i] for j < 4, i < ROWS (as above).
template <int NR, int ROWS = 4>
void transpose_4x4(const double* s, int64_t ld, double* out) {
  auto row = [&](int i) { return i < ROWS ? _mm256_loadu_pd(s + i * ld) : _mm256_setzero_pd(); };
  const __m256d r0 = row(0), r1 = row(1), r2 = row(2), r3 = row(3);
  const __m256d t0 = _mm256_unpacklo_pd(r0, r1), t1 = _mm256_unpackhi_pd(r0, r1);
  const __m256d t2 = _mm256_unpacklo_pd(r2, r3), t3 = _mm256_unpackhi_pd(r2, r3);
  auto store = [&](int j, __m256d v) {
    if constexpr (ROWS == 4)
      _mm256_storeu_pd(out + j * NR, v);
    else
      _mm256_mask_storeu_pd(out + j * NR, static_cast<__mmask8>((1u << ROWS) - 1), v);
  };
  store(0, _mm256_permute2f128_pd(t0, t2, 0x20));
  store(1, _mm256_permute2f128_pd(t1, t3, 0x20));
  store(2, _mm256_permute2f128_pd(t0, t2, 0x31));
  store(3, _mm256_permute2f128_pd(t1, t3, 0x31));
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

// A panels (MR rows, not a multiple of B): for each B columns, the rows B at a time
// through Full, the last MR % B rows through Part. Consecutive column chunks read the
// same MR lines, which stay in L1 between them.
template <class T, int MR, int B, void (*Full)(const T*, int64_t, T*),
          void (*Part)(const T*, int64_t, T*)>
void pack_a(const T* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch, T* out) {
  constexpr int line = 64 / sizeof(T);
  int64_t kb = 0;
  if (rows == MR) {
    const int64_t full = kc / B * B;
    for (int64_t k = 0; k < full; k += B) {
      if (prefetch > 0 && k % line == 0)
        for (int i = 0; i < MR; ++i)
          _mm_prefetch(reinterpret_cast<const char*>(src + i * ld + k + prefetch), _MM_HINT_T0);
      int g = 0;
#pragma GCC unroll 4
      for (; g + B <= MR; g += B) Full(src + g * ld + k, ld, out + k * MR + g);
      if constexpr (MR % B != 0) Part(src + g * ld + k, ld, out + k * MR + g);
    }
    kb = full;
  }
  for (; kb < kc; ++kb) {
    for (int64_t i = 0; i < rows; ++i) out[kb * MR + i] = src[i * ld + kb];
    for (int64_t i = rows; i < MR; ++i) out[kb * MR + i] = T(0);
  }
}

}  // namespace

void pack_14_avx512(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                    float* out) {
  constexpr int MR = kGemmMrF32;
  pack_a<float, MR, 8, transpose_8x8<MR>, transpose_8x8<MR, MR % 8>>(src, ld, rows, kc,
                                                                     prefetch, out);
}

void pack_14_avx512(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                    double* out) {
  constexpr int MR = kGemmMrF64;
  pack_a<double, MR, 4, transpose_4x4<MR>, transpose_4x4<MR, MR % 4>>(src, ld, rows, kc,
                                                                      prefetch, out);
}

void pack_32_avx512(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
              float* out) {
  pack<float, kGemmNrF32, 8, transpose_8x8<kGemmNrF32>>(src, ld, rows, kc, prefetch, out);
}

void pack_16_avx512(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
              double* out) {
  pack<double, kGemmNrF64, 4, transpose_4x4<kGemmNrF64>>(src, ld, rows, kc, prefetch, out);
}

}  // namespace convcore::kernels::avx512
