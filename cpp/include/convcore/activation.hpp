// convcore/activation.hpp — element-wise activations over contiguous arrays.
//   y[i] = act(x[i]) for i < n; x and y may be the same array (in place), else must
//   not overlap. Same code as the fused epilogues of conv2d and linear.
#pragma once

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore {

void activate(const Activation& act, const float* x, float* y, int64_t n);
void activate(const Activation& act, const double* x, double* y, int64_t n);

}  // namespace convcore
