// depthwise_nchwc_scalar.cpp — the scalar twin of depthwise_nchwc (16 float / 8 double
// channels a block, as pack_16 / pack_8): each output one std::fma chain over the taps in
// order from 0, the bias added last, as the SIMD kernels and direct_plane.
#include <cmath>

#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T, int L>
void depthwise(const DepthwiseArgs& a, const T* x, const T* w, const T* bias, T* y,
               const Activation& act) {
  for (int64_t k = 0; k < a.kn; ++k) {
    const T b = bias != nullptr ? bias[k] : T(0);
    for (int64_t i = 0; i < a.rows; ++i) {
      T* yr = y + k * a.y_kstride + i * a.y_rstride;
      const T* xr = x + i * a.row_step + k;
      for (int64_t j = 0; j < a.n; ++j) {
        T acc = T(0);
        for (int64_t t = 0; t < a.taps; ++t)
          acc = std::fma(w[t * L + k], xr[j * a.col_step + a.tap[t]], acc);
        yr[j] = act_one<T>(acc + b, act);
      }
    }
  }
}

}  // namespace

void depthwise_nchwc_f32_scalar(const DepthwiseArgs& a, const float* x, const float* w,
                                const float* bias, float* y, const Activation& act) {
  depthwise<float, 16>(a, x, w, bias, y, act);
}
void depthwise_nchwc_f64_scalar(const DepthwiseArgs& a, const double* x, const double* w,
                                const double* bias, double* y, const Activation& act) {
  depthwise<double, 8>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::scalar
