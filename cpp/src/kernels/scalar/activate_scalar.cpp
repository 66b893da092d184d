// activate_scalar.cpp — activate_scalar: y[i] = act(x[i]), one element at a time.
#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {

void activate_f32_scalar(const float* x, float* y, int64_t n, const Activation& act) {
  for (int64_t i = 0; i < n; ++i) y[i] = act_one<float>(x[i], act);
}

void activate_f64_scalar(const double* x, double* y, int64_t n, const Activation& act) {
  for (int64_t i = 0; i < n; ++i) y[i] = act_one<double>(x[i], act);
}

}  // namespace convcore::kernels::scalar
