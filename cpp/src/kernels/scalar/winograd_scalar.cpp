// winograd_scalar.cpp — the Winograd F(4x4 / 2x2, 3x3) input, output and weight transforms, one
// tile at a time in plain C++ (std::fma): the twins of the SIMD kernels, bit for bit
// (winograd_transform.hpp holds the one body and the matrices).
#include <cmath>

#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"
#include "kernels/winograd_transform.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class Type>
struct Ops {
  using T = Type;
  using V = Type;
  static constexpr int L = 1;
  static V set1(T v) { return v; }
  static V mul(V a, V b) { return a * b; }
  static V fmadd(V a, V b, V c) { return std::fma(a, b, c); }
  static V add(V a, V b) { return a + b; }
  static V load(const T* p, int64_t) { return *p; }
  static void store(T* p, V v, int64_t) { *p = v; }
  static V zero() { return T(0); }
  static void zip(V a, V b, V& lo, V& hi) {
    lo = a;
    hi = b;
  }
  static void unzip(V a, V b, V& even, V& odd) {
    even = a;
    odd = b;
  }
  struct Epilogue {
    const Activation& act;
    explicit Epilogue(const Activation& a) : act(a) {}
    void store(T* p, V v, int64_t) const { *p = act_one(v, act); }
  };
};

}  // namespace

CONVCORE_WINOGRAD_KERNELS(scalar, Ops)

}  // namespace convcore::kernels::scalar
