// depthwise_nchwc_avx2.cpp — depthwise convolution with 16 float / 8 double channels in the
// lanes (two ymm per pixel, the block of pack_16 / pack_8), tiles of up to 8 pixels of a
// row; the body is depthwise_nchwc.hpp's (bitwise the scalar twin's before a non-exact
// activation).
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"
#include "kernels/depthwise_nchwc.hpp"

namespace convcore::kernels::avx2 {

void depthwise_nchwc_f32_avx2(const DepthwiseArgs& a, const float* x, const float* w,
                              const float* bias, float* y, const Activation& act) {
  depthwise_nchwc_body<BodyOps<float>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}
void depthwise_nchwc_f64_avx2(const DepthwiseArgs& a, const double* x, const double* w,
                              const double* bias, double* y, const Activation& act) {
  depthwise_nchwc_body<BodyOps<double>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx2
