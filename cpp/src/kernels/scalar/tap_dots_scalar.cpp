// tap_dots_scalar.cpp — tap_dots_*_scalar: conv2d's weight gradient by row dot products,
// the twin of the SIMD kernels (contract in table.hpp): L = 64/sizeof(T) lane sums, one
// std::fma per product in order, lanes added in order.
#include <cmath>

#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T>
void tap_dots(const T* g, int64_t g_ld, int64_t kn, const T* x, const int64_t* off,
              int64_t taps, int64_t n, T* out, int64_t out_ld) {
  constexpr int L = 64 / sizeof(T);
  for (int64_t k = 0; k < kn; ++k)
    for (int64_t t = 0; t < taps; ++t) {
      const T* gk = g + k * g_ld;
      const T* xt = x + off[t];
      T acc[L] = {};
      for (int64_t i = 0; i < n; ++i) acc[i % L] = std::fma(gk[i], xt[i], acc[i % L]);
      T s = T(0);
      for (int l = 0; l < L; ++l) s += acc[l];
      out[k * out_ld + t] += s;
    }
}

}  // namespace

void tap_dots_f32_scalar(const float* g, int64_t g_ld, int64_t kn, const float* x,
                         const int64_t* off, int64_t taps, int64_t n, float* out, int64_t out_ld) {
  tap_dots(g, g_ld, kn, x, off, taps, n, out, out_ld);
}
void tap_dots_f64_scalar(const double* g, int64_t g_ld, int64_t kn, const double* x,
                         const int64_t* off, int64_t taps, int64_t n, double* out,
                         int64_t out_ld) {
  tap_dots(g, g_ld, kn, x, off, taps, n, out, out_ld);
}

}  // namespace convcore::kernels::scalar
