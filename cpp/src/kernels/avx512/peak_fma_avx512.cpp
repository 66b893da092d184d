// peak_fma_avx512.cpp — the FMA-throughput probe, AVX-512: peak_fma_12x16_avx512 (float).
// 12 independent chains of 16 lanes (12 zmm accumulators), acc = acc * m + c per step.
// Where 512-bit FMAs run on two 256-bit pipes (Zen 4) this measures the same peak as the
// AVX2 probe; where the core has 512-bit FMA units it measures the higher one, which is
// the peak the AVX-512 kernels are judged against. Contract in table.hpp (PeakFmaFn).
#include <immintrin.h>

#include "kernels/avx512/avx512.hpp"

namespace convcore::kernels::avx512 {

float peak_fma_12x16_avx512(int64_t steps, float m, float c) {
  __m512 acc[12];
  const __m512 lane = _mm512_setr_ps(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm512_add_ps(lane, _mm512_set1_ps(16.0f * i));
  const __m512 vm = _mm512_set1_ps(m), vc = _mm512_set1_ps(c);
  for (int64_t t = 0; t < steps; ++t) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm512_fmadd_ps(acc[i], vm, vc);
  }
  // Sum the lanes so no chain is dead code; the same order as the AVX2 probe.
  alignas(64) float v[12][16];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) _mm512_store_ps(v[i], acc[i]);
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 16; ++j) sum += v[i][j];
  return sum;
}

}  // namespace convcore::kernels::avx512
