// activate_avx2.cpp — activate_*_avx2: y[i] = act(x[i]), 8 floats / 4 doubles a step,
// the tail through a lane mask (float) or element by element (double).
#include <immintrin.h>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx2 {

void activate_f32_avx2(const float* x, float* y, int64_t n, const Activation& act) {
  const ActF32 av(act);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, activate_ps(_mm256_loadu_ps(x + i), av));
  if (i < n) {
    const __m256i m = mask_ps(n - i);
    _mm256_maskstore_ps(y + i, m, activate_ps(_mm256_maskload_ps(x + i, m), av));
  }
}

void activate_f64_avx2(const double* x, double* y, int64_t n, const Activation& act) {
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) _mm256_storeu_pd(y + i, activate_pd(_mm256_loadu_pd(x + i), act));
  if (i < n) {
    const __m256i m = mask_pd(n - i);
    _mm256_maskstore_pd(y + i, m, activate_pd(_mm256_maskload_pd(x + i, m), act));
  }
}

}  // namespace convcore::kernels::avx2
