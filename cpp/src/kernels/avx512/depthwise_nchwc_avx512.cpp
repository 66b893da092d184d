// depthwise_nchwc_avx512.cpp — depthwise convolution with 32 float / 16 double channels in
// the lanes (two zmm per pixel, the block of pack_32 / pack_16), tiles of up to 8 pixels of
// a row; the body is depthwise_nchwc.hpp's (bitwise the scalar twin's before a non-exact
// activation; activations per ymm half, as the AVX2 kernels).
#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"
#include "kernels/depthwise_nchwc.hpp"

namespace convcore::kernels::avx512 {

void depthwise_nchwc_f32_avx512(const DepthwiseArgs& a, const float* x, const float* w,
                                const float* bias, float* y, const Activation& act) {
  depthwise_nchwc_body<BodyOps<float>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}
void depthwise_nchwc_f64_avx512(const DepthwiseArgs& a, const double* x, const double* w,
                                const double* bias, double* y, const Activation& act) {
  depthwise_nchwc_body<BodyOps<double>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx512
