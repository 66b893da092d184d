// activate_avx2.cpp — activate_*_avx2: y[i] = act(x[i]), 8 floats / 4 doubles a step,
// the tail through a lane mask (float) or element by element (double).
#include <immintrin.h>

#include "kernels/act_scalar.hpp"
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vmath_avx2.hpp"

namespace convcore::kernels::avx2 {

void activate_f32(const float* x, float* y, int64_t n, const Activation& act) {
  const ActF32 av(act);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, activate_ps(_mm256_loadu_ps(x + i), av));
  if (i < n) {
    const __m256i m = mask_ps(n - i);
    _mm256_maskstore_ps(y + i, m, activate_ps(_mm256_maskload_ps(x + i, m), av));
  }
}

void activate_f64(const double* x, double* y, int64_t n, const Activation& act) {
  int64_t i = 0;
  __m256d probe = _mm256_setzero_pd();
  if (activate_pd(probe, act)) {
    for (; i + 4 <= n; i += 4) {
      __m256d v = _mm256_loadu_pd(x + i);
      activate_pd(v, act);
      _mm256_storeu_pd(y + i, v);
    }
  }
  for (; i < n; ++i) y[i] = act_one<double>(x[i], act);
}

}  // namespace convcore::kernels::avx2
