// depthwise_nchwc_avx2.cpp — depthwise convolution with 16 float / 8 double channels in the
// lanes (two ymm per pixel, the block of pack_16 / pack_8), tiles of up to 8 pixels of a
// row; the body is depthwise_nchwc.hpp's (bitwise the scalar twin's before a non-exact
// activation).
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"
#include "kernels/depthwise_nchwc.hpp"

namespace convcore::kernels::avx2 {
namespace {

template <class Type>
struct Ops {
  using T = Type;
  using W = Vec<Type>;
  using V = typename W::V;
  static constexpr int L = W::L;
  static V zero() { return W::zero(); }
  static V load(const T* p) { return W::load(p); }
  static V fmadd(V a, V b, V c) { return W::fmadd(a, b, c); }
  static V add(V a, V b) { return W::add(a, b); }
  using Epilogue = typename W::Epilogue;
};

}  // namespace

void depthwise_nchwc_f32_avx2(const DepthwiseArgs& a, const float* x, const float* w,
                              const float* bias, float* y, const Activation& act) {
  depthwise_nchwc_body<Ops<float>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}
void depthwise_nchwc_f64_avx2(const DepthwiseArgs& a, const double* x, const double* w,
                              const double* bias, double* y, const Activation& act) {
  depthwise_nchwc_body<Ops<double>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx2
