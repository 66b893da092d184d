// direct_scalar.cpp — direct_tile_scalar (KB = 4), direct_plane_scalar (KB = 1) and
// direct_nchwc_scalar (KB = 32 / 16): the scalar twins of the direct kernels (contract: kernels/README.md).
// Each output is accumulated with std::fma in the order c, then tap, as the SIMD kernels
// do, so the twins agree bitwise before the activation. col_step is 1 except for
// direct_nchwc reading unpadded input in place (DirectTileArgs).
#include <cmath>

#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T, int KB>
void direct(const DirectTileArgs& a, const T* x, const T* w, const T* bias, T* y,
            const Activation& act) {
  for (int64_t k = 0; k < a.kn; ++k) {
    const T b = bias != nullptr ? bias[k] : T(0);
    for (int64_t i = 0; i < a.rows; ++i) {
      T* yr = y + k * a.y_kstride + i * a.y_rstride;
      for (int64_t j = 0; j < a.n; ++j) yr[j] = T(0);
      for (int64_t c = 0; c < a.C; ++c) {
        for (int64_t t = 0; t < a.taps; ++t) {
          const T wv = w[(c * a.taps + t) * KB + k];
          const T* xr = x + c * a.x_cstride + i * a.x_rstride + a.tap[t];
          for (int64_t j = 0; j < a.n; ++j) yr[j] = std::fma(wv, xr[j * a.col_step], yr[j]);
        }
      }
      for (int64_t j = 0; j < a.n; ++j) yr[j] = act_one<T>(yr[j] + b, act);
    }
  }
}

}  // namespace

void direct_tile_f32_scalar(const DirectTileArgs& a, const float* x, const float* w,
                     const float* bias, float* y, const Activation& act) {
  direct<float, 4>(a, x, w, bias, y, act);
}
void direct_tile_f64_scalar(const DirectTileArgs& a, const double* x, const double* w,
                     const double* bias, double* y, const Activation& act) {
  direct<double, 4>(a, x, w, bias, y, act);
}
void direct_plane_f32_scalar(const DirectTileArgs& a, const float* x, const float* w,
                      const float* bias, float* y, const Activation& act) {
  direct<float, 1>(a, x, w, bias, y, act);
}
void direct_plane_f64_scalar(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act) {
  direct<double, 1>(a, x, w, bias, y, act);
}

void direct_nchwc_f32_scalar(const DirectTileArgs& a, const float* x, const float* w,
                      const float* bias, float* y, const Activation& act) {
  direct<float, 32>(a, x, w, bias, y, act);
}
void direct_nchwc_f64_scalar(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act) {
  direct<double, 16>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::scalar
