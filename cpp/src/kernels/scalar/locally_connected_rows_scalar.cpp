// locally_connected_rows_scalar.cpp — locally_connected_rows_{12x8_f32,6x8_f64}_scalar:
// one output position of a locally connected layer for a block of up to 8 images read
// from padded input rows with the images innermost (contract in table.hpp). Twins of
// the AVX2 kernels: the same tiles (12 or 6 filters x 8 image lanes), each output
// summed in order t = q*S + s.
#include <algorithm>

#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T, int MK>
void locally_connected_rows(const LocallyConnectedRowsArgs& a, const T* w, const T* x,
                            const T* bias, T* y, const Activation& act) {
  const int64_t kd = a.Q * a.S;
  for (int64_t k0 = 0; k0 < a.K; k0 += MK) {
    const int64_t mk = std::min<int64_t>(MK, a.K - k0);
    T acc[MK][8] = {};
    for (int64_t q = 0; q < a.Q; ++q)
      for (int64_t s = 0; s < a.S; ++s) {
        const T* xv = x + q * a.ldq + s * a.lds;
        for (int64_t i = 0; i < mk; ++i) {
          const T wv = w[(k0 + i) * kd + q * a.S + s];
          for (int n = 0; n < 8; ++n) acc[i][n] += wv * xv[n];
        }
      }
    for (int64_t i = 0; i < mk; ++i) {
      const T b = bias != nullptr ? bias[(k0 + i) * a.bias_stride] : T(0);
      for (int64_t n = 0; n < a.N; ++n)
        y[n * a.y_n_stride + (k0 + i) * a.y_k_stride] = act_one<T>(acc[i][n] + b, act);
    }
  }
}

}  // namespace

void locally_connected_rows_12x8_f32_scalar(const LocallyConnectedRowsArgs& a, const float* w,
                                const float* x, const float* bias, float* y,
                                const Activation& act) {
  locally_connected_rows<float, 12>(a, w, x, bias, y, act);
}
void locally_connected_rows_6x8_f64_scalar(const LocallyConnectedRowsArgs& a, const double* w,
                                const double* x, const double* bias, double* y,
                                const Activation& act) {
  locally_connected_rows<double, 6>(a, w, x, bias, y, act);
}

}  // namespace convcore::kernels::scalar
