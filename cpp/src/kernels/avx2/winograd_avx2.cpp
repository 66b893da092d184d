// winograd_avx2.cpp — the Winograd F(4x4 / 2x2, 3x3) input, output and weight transforms on AVX2 +
// FMA: 8 tiles (float) / 4 tiles (double) of one channel per ymm, the tail through lane
// masks; the body and the matrices are winograd_transform.hpp's (bitwise the scalar twin's
// before a non-exact activation).
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"
#include "kernels/winograd_transform.hpp"

namespace convcore::kernels::avx2 {
namespace {

template <class Type>
struct Ops {
  using T = Type;
  using W = Vec<Type>;
  using V = typename W::V;
  static constexpr int L = W::L;
  static V set1(T v) { return W::set1(v); }
  static V mul(V a, V b) { return W::mul(a, b); }
  static V fmadd(V a, V b, V c) { return W::fmadd(a, b, c); }
  static V add(V a, V b) { return W::add(a, b); }
  static V load(const T* p, int64_t lanes) { return W::load(p, W::mask(lanes), lanes == L); }
  static void store(T* p, V v, int64_t lanes) { W::store(p, v, W::mask(lanes), lanes == L); }
  using Epilogue = typename W::Epilogue;
};

}  // namespace

CONVCORE_WINOGRAD_KERNELS(avx2, Ops)

}  // namespace convcore::kernels::avx2
