// act_scalar.hpp — one element through an activation, in plain C++.
// Internal linkage (anonymous namespace): each ISA's files compile their own copy with
// their own flags, so no inline function is shared across ISA flags (ODR).
#pragma once

#include <cmath>

#include "convcore/types.hpp"

namespace convcore::kernels {
namespace {

template <class T>
inline T act_one(T x, const Activation& act) {
  switch (act.kind) {
    case Activation::none: return x;
    case Activation::relu: return x < T(0) ? T(0) : x;  // NaN compares false: stays NaN
    case Activation::sigmoid: {
      // exp(-|t|) never overflows: 1/(1+e) for t >= 0, e/(1+e) for t < 0 (keeps the
      // subnormal tail instead of rounding it to 0).
      const T t = static_cast<T>(act.alpha) * (x - static_cast<T>(act.beta));
      const T e = std::exp(-std::fabs(t));
      const T q = T(1) / (T(1) + e);
      return t < T(0) ? e * q : q;
    }
    case Activation::tanh: return std::tanh(x);
    case Activation::abs: return std::fabs(x);
    case Activation::square: return x * x;
    case Activation::leaky_relu: return x < T(0) ? static_cast<T>(act.alpha) * x : x;
  }
  return x;
}

}  // namespace
}  // namespace convcore::kernels
