// locally_connected_scalar.cpp — locally_connected_*_scalar: one output position of a
// locally connected layer (untied weights) for a block of images, one dot product of
// length kd per output, summed in order t = 0..kd-1. Layouts as in table.hpp.
#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T>
void locally_connected(const LocallyConnectedArgs& a, const T* w, const T* x, const T* bias,
                       T* y, const Activation& act) {
  for (int64_t n = 0; n < a.N; ++n) {
    const T* xn = x + n * a.kd;
    for (int64_t k = 0; k < a.K; ++k) {
      const T* wk = w + k * a.kd;
      T acc = T(0);
      for (int64_t t = 0; t < a.kd; ++t) acc += wk[t] * xn[t];
      if (bias != nullptr) acc += bias[k * a.bias_stride];
      y[n * a.y_n_stride + k * a.y_k_stride] = act_one<T>(acc, act);
    }
  }
}

}  // namespace

void locally_connected_f32_scalar(const LocallyConnectedArgs& a, const float* w, const float* x,
                           const float* bias, float* y, const Activation& act) {
  locally_connected<float>(a, w, x, bias, y, act);
}
void locally_connected_f64_scalar(const LocallyConnectedArgs& a, const double* w, const double* x,
                           const double* bias, double* y, const Activation& act) {
  locally_connected<double>(a, w, x, bias, y, act);
}

}  // namespace convcore::kernels::scalar
