// winograd_avx512.cpp — the Winograd F(4x4 / 2x2, 3x3) input, output and weight transforms on
// AVX-512: 16 tiles (float) / 8 tiles (double) of one channel per zmm, the tail through a
// lane mask; the body and the matrices are winograd_transform.hpp's (bitwise the scalar
// twin's before a non-exact activation; activations per ymm half, as the AVX2 kernels).
#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"
#include "kernels/winograd_transform.hpp"

namespace convcore::kernels::avx512 {
namespace {

template <class Type>
struct Ops {
  using T = Type;
  using W = Vec<Type, 512>;
  using V = typename W::V;
  static constexpr int L = W::L;
  static V set1(T v) { return W::set1(v); }
  static V mul(V a, V b) { return W::mul(a, b); }
  static V fmadd(V a, V b, V c) { return W::fmadd(a, b, c); }
  static V add(V a, V b) { return W::add(a, b); }
  static V load(const T* p, int64_t lanes) {
    return lanes == L ? W::load(p) : W::maskz_load(lanes16(lanes), p);
  }
  static void store(T* p, V v, int64_t lanes) {
    if (lanes == L)
      W::store(p, v, typename W::M(-1));
    else
      W::mask_store(p, lanes16(lanes), v);
  }
  // W's epilogue stores through a mask even for whole vectors: slow on Zen 4.
  struct Epilogue {
    typename W::Epilogue act;
    bool none;
    explicit Epilogue(const Activation& a) : act(a), none(a.kind == Activation::none) {}
    void store(T* p, V v, int64_t lanes) const {
      if (none)
        Ops::store(p, v, lanes);
      else
        act.store(p, v, lanes);
    }
  };
};

}  // namespace

CONVCORE_WINOGRAD_KERNELS(avx512, Ops)

}  // namespace convcore::kernels::avx512
