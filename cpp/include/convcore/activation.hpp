// convcore/activation.hpp — element-wise activations over contiguous arrays.
//   y[i] = act(x[i]) for i < n; x and y may be the same array (in place), else must
//   not overlap. Same code as the fused epilogues of conv2d and linear.
//
//   act  the function and its parameters (types.hpp: none, relu, sigmoid(alpha, beta),
//        tanh, abs, square, leaky_relu(alpha))
//   x    n elements read; y  n elements written (either may be nullptr when n == 0)
//   n    element count, >= 0
//
// NaN propagates through every activation; infinities follow IEEE arithmetic
// (relu(+inf) = +inf, sigmoid(-inf) = 0, tanh(+inf) = 1). Results are within a few
// ulp of the exact function (exact for none, relu, abs; one rounding for square and
// leaky_relu) and the same bits for any thread count; large arrays are split over the
// threads.
// Throws value_error when n < 0; convcore::interrupted when the interrupt handler
// (runtime.hpp) stops the call (y is then partly written).
#pragma once

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore {

void activate(const Activation& act, const float* x, float* y, int64_t n);
void activate(const Activation& act, const double* x, double* y, int64_t n);

}  // namespace convcore
