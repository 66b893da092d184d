// depthwise_nchwc_avx512.cpp — depthwise convolution with 32 float / 16 double channels in
// the lanes (two zmm per pixel, the block of pack_32 / pack_16), tiles of up to 8 pixels of
// a row; the body is depthwise_nchwc.hpp's (bitwise the scalar twin's before a non-exact
// activation; activations per ymm half, as the AVX2 kernels).
#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"
#include "kernels/depthwise_nchwc.hpp"

namespace convcore::kernels::avx512 {
namespace {

template <class Type>
struct Ops {
  using T = Type;
  using W = Vec<Type, 512>;
  using V = typename W::V;
  static constexpr int L = W::L;
  static V zero() { return W::zero(); }
  static V load(const T* p) { return W::load(p); }
  static V fmadd(V a, V b, V c) { return W::fmadd(a, b, c); }
  static V add(V a, V b) { return W::add(a, b); }
  // W's epilogue stores through a mask even for whole vectors: slow on Zen 4.
  struct Epilogue {
    typename W::Epilogue act;
    bool none;
    explicit Epilogue(const Activation& a) : act(a), none(a.kind == Activation::none) {}
    void store(T* p, V v, int64_t lanes) const {
      if (none)
        W::store(p, v, typename W::M(-1));
      else
        act.store(p, v, lanes);
    }
  };
};

}  // namespace

void depthwise_nchwc_f32_avx512(const DepthwiseArgs& a, const float* x, const float* w,
                                const float* bias, float* y, const Activation& act) {
  depthwise_nchwc_body<Ops<float>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}
void depthwise_nchwc_f64_avx512(const DepthwiseArgs& a, const double* x, const double* w,
                                const double* bias, double* y, const Activation& act) {
  depthwise_nchwc_body<Ops<double>, 2, kDepthwisePixels>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx512
