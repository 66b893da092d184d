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
  struct Epilogue {
    const Activation& act;
    explicit Epilogue(const Activation& a) : act(a) {}
    void store(T* p, V v, int64_t) const { *p = act_one(v, act); }
  };
};

}  // namespace

void winograd_input_f32_scalar(const WinogradInputArgs& a, const float* band, float* v) {
  winograd_input_any<Ops<float>>(a, band, v);
}
void winograd_input_f64_scalar(const WinogradInputArgs& a, const double* band, double* v) {
  winograd_input_any<Ops<double>>(a, band, v);
}
void winograd_output_f32_scalar(const WinogradOutputArgs& a, const float* mm, const float* bias,
                                float* out, const Activation& act) {
  winograd_output_any<Ops<float>>(a, mm, bias, out, act);
}
void winograd_output_f64_scalar(const WinogradOutputArgs& a, const double* mm,
                                const double* bias, double* out, const Activation& act) {
  winograd_output_any<Ops<double>>(a, mm, bias, out, act);
}

void winograd_weights_f32_scalar(const WinogradWeightsArgs& a, const float* g, float* u) {
  winograd_weights_any<Ops<float>>(a, g, u);
}
void winograd_weights_f64_scalar(const WinogradWeightsArgs& a, const double* g, double* u) {
  winograd_weights_any<Ops<double>>(a, g, u);
}

}  // namespace convcore::kernels::scalar
