// peak_fma_avx2.cpp — the FMA-throughput probe, AVX2+FMA: peak_fma_12x8_avx2 (float).
// 12 independent chains of 8 lanes (12 ymm accumulators), acc = acc * m + c per step,
// so 2 FMAs issue every cycle with a 4–5 cycle latency hidden: the machine's FMA peak.
// Contract in table.hpp (PeakFmaFn); the scalar twin is peak_fma_scalar.cpp.
#include <immintrin.h>

#include "kernels/avx2/avx2.hpp"

namespace convcore::kernels::avx2 {

float peak_fma_12x8_avx2(int64_t steps, float m, float c) {
  __m256 acc[12];
  const __m256 lane = _mm256_setr_ps(0, 1, 2, 3, 4, 5, 6, 7);
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) acc[i] = _mm256_add_ps(lane, _mm256_set1_ps(8.0f * i));
  const __m256 vm = _mm256_set1_ps(m), vc = _mm256_set1_ps(c);
  for (int64_t t = 0; t < steps; ++t) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; ++i) acc[i] = _mm256_fmadd_ps(acc[i], vm, vc);
  }
  // Sum the lanes so no chain is dead code; the order matches the scalar twin.
  alignas(32) float v[12][8];
#pragma GCC unroll 12
  for (int i = 0; i < 12; ++i) _mm256_store_ps(v[i], acc[i]);
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 8; ++j) sum += v[i][j];
  return sum;
}

}  // namespace convcore::kernels::avx2
