// vec_avx2.hpp — AVX2+FMA vector exp/tanh/activations (8 x float, 4 x double).
// Included only by files compiled with -mavx2 -mfma; internal linkage (ODR-safe).
//
// exp: Cephes expf — n = round(x*log2 e), r = x - n*ln2 (two-part ln2, exact product),
// degree-6 polynomial, then scaling by 2^n in two steps so that results down to the
// subnormal range round once. Max error ~1 ulp; x > 88.7228 gives +inf, x < -103.98
// gives 0, NaN stays NaN. tanh: odd polynomial below |x| = 0.625 (Cephes tanhf), else
// 1 - 2/(exp(2|x|)+1) with the sign restored; max error a few ulp.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore::kernels::avx2 {
namespace {

inline __m256 exp_ps(__m256 x) {
  const __m256 hi = _mm256_set1_ps(88.72283905206835f);
  const __m256 lo = _mm256_set1_ps(-103.97208404541015625f);
  const __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), _mm256_set1_ps(88.8f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500E-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073E-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894E-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459E-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201E-1f));
  const __m256 r2 = _mm256_mul_ps(r, r);
  __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, r2, r), _mm256_set1_ps(1.0f));
  // 2^n as 2^n1 * 2^n2, each a normal number, n1 = floor(n/2).
  const __m256i ni = _mm256_cvtps_epi32(n);
  const __m256i n1 = _mm256_srai_epi32(ni, 1);
  const __m256i n2 = _mm256_sub_epi32(ni, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23)));
  y = _mm256_mul_ps(y, _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23)));
  y = _mm256_blendv_ps(y, _mm256_set1_ps(__builtin_inff()), _mm256_cmp_ps(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_ps(y, _mm256_setzero_ps(), _mm256_cmp_ps(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_ps(y, x, _mm256_cmp_ps(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

inline __m256 tanh_ps(__m256 x) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256 ax = _mm256_andnot_ps(sign, x);
  // |x| < 0.625: x + x*s*P(s), s = x*x
  const __m256 s = _mm256_mul_ps(x, x);
  __m256 p = _mm256_set1_ps(-5.70498872745E-3f);
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(2.06390887954E-2f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-5.37397155531E-2f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(1.33314422036E-1f));
  p = _mm256_fmadd_ps(p, s, _mm256_set1_ps(-3.33332819422E-1f));
  // computed on |x| with the sign put back, so that tanh(-0) = -0
  const __m256 small = _mm256_or_ps(_mm256_fmadd_ps(_mm256_mul_ps(p, s), ax, ax),
                                    _mm256_and_ps(sign, x));
  // otherwise: 1 - 2/(exp(2|x|) + 1), sign of x
  const __m256 e = exp_ps(_mm256_add_ps(ax, ax));
  const __m256 one = _mm256_set1_ps(1.0f);
  __m256 large = _mm256_sub_ps(one, _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, one)));
  large = _mm256_or_ps(large, _mm256_and_ps(sign, x));
  return _mm256_blendv_ps(large, small, _mm256_cmp_ps(ax, _mm256_set1_ps(0.625f), _CMP_LT_OQ));
}

// Activation parameters broadcast once per kernel call.
struct ActF32 {
  Activation::Kind kind;
  __m256 alpha, beta;
  explicit ActF32(const Activation& a)
      : kind(a.kind),
        alpha(_mm256_set1_ps(static_cast<float>(a.alpha))),
        beta(_mm256_set1_ps(static_cast<float>(a.beta))) {}
};

inline __m256 activate_ps(__m256 v, const ActF32& a) {
  switch (a.kind) {
    case Activation::none: return v;
    case Activation::relu: return _mm256_max_ps(_mm256_setzero_ps(), v);  // NaN: 2nd operand
    case Activation::sigmoid: {
      // e = exp(-|t|) never overflows; sigmoid = 1/(1+e) for t >= 0 and e/(1+e) for
      // t < 0, so the tail below t = -88.7 keeps its (subnormal) value instead of 0.
      const __m256 t = _mm256_mul_ps(a.alpha, _mm256_sub_ps(v, a.beta));
      const __m256 e = exp_ps(_mm256_or_ps(t, _mm256_set1_ps(-0.0f)));
      const __m256 one = _mm256_set1_ps(1.0f);
      const __m256 q = _mm256_div_ps(one, _mm256_add_ps(one, e));
      return _mm256_blendv_ps(q, _mm256_mul_ps(e, q),
                              _mm256_cmp_ps(t, _mm256_setzero_ps(), _CMP_LT_OQ));
    }
    case Activation::tanh: return tanh_ps(v);
    case Activation::abs: return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), v);
    case Activation::square: return _mm256_mul_ps(v, v);
    case Activation::leaky_relu:
      return _mm256_blendv_ps(v, _mm256_mul_ps(a.alpha, v),
                              _mm256_cmp_ps(v, _mm256_setzero_ps(), _CMP_LT_OQ));
  }
  return v;
}

// exp for 4 doubles: Cephes exp — n = round(x*log2 e), r = x - n*ln2 (two-part ln2),
// Pade form 1 + 2*r*P(r^2)/(Q(r^2) - r*P(r^2)), then 2^n in two steps (subnormal results
// round once). Max error ~1 ulp; x > 709.78 gives +inf, x < -745.14 gives 0, NaN kept.
inline __m256d exp_pd(__m256d x) {
  const __m256d hi = _mm256_set1_pd(709.782712893383973096);
  const __m256d lo = _mm256_set1_pd(-745.1332191019412076235);
  const __m256d xc = _mm256_min_pd(_mm256_max_pd(x, lo), _mm256_set1_pd(710.0));
  const __m256d n = _mm256_round_pd(_mm256_mul_pd(xc, _mm256_set1_pd(1.4426950408889634073599)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256d r = _mm256_fnmadd_pd(n, _mm256_set1_pd(6.93145751953125E-1), xc);
  r = _mm256_fnmadd_pd(n, _mm256_set1_pd(1.42860682030941723212E-6), r);
  const __m256d r2 = _mm256_mul_pd(r, r);
  __m256d p = _mm256_set1_pd(1.26177193074810590878E-4);
  p = _mm256_fmadd_pd(p, r2, _mm256_set1_pd(3.02994407707441961300E-2));
  p = _mm256_fmadd_pd(p, r2, _mm256_set1_pd(9.99999999999999999910E-1));
  p = _mm256_mul_pd(p, r);
  __m256d q = _mm256_set1_pd(3.00198505138664455042E-6);
  q = _mm256_fmadd_pd(q, r2, _mm256_set1_pd(2.52448340349684104192E-3));
  q = _mm256_fmadd_pd(q, r2, _mm256_set1_pd(2.27265548208155028766E-1));
  q = _mm256_fmadd_pd(q, r2, _mm256_set1_pd(2.00000000000000000009E0));
  const __m256d e = _mm256_div_pd(p, _mm256_sub_pd(q, p));
  __m256d y = _mm256_fmadd_pd(_mm256_set1_pd(2.0), e, _mm256_set1_pd(1.0));
  // 2^n as 2^n1 * 2^n2, each a normal number, n1 = floor(n/2) (|n| < 1100: int32).
  const __m256d n1 = _mm256_floor_pd(_mm256_mul_pd(n, _mm256_set1_pd(0.5)));
  const __m256i n1l = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(n1));
  const __m256i n2l = _mm256_cvtepi32_epi64(_mm256_cvtpd_epi32(_mm256_sub_pd(n, n1)));
  const __m256i bias = _mm256_set1_epi64x(1023);
  y = _mm256_mul_pd(y, _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n1l, bias), 52)));
  y = _mm256_mul_pd(y, _mm256_castsi256_pd(_mm256_slli_epi64(_mm256_add_epi64(n2l, bias), 52)));
  y = _mm256_blendv_pd(y, _mm256_set1_pd(__builtin_inf()), _mm256_cmp_pd(x, hi, _CMP_GT_OQ));
  y = _mm256_blendv_pd(y, _mm256_setzero_pd(), _mm256_cmp_pd(x, lo, _CMP_LT_OQ));
  return _mm256_blendv_pd(y, x, _mm256_cmp_pd(x, x, _CMP_UNORD_Q));  // NaN in, NaN out
}

// tanh for 4 doubles: Cephes tanh — |x| < 0.625: x + x*z*P(z)/Q(z), z = x*x (on |x|,
// sign put back); otherwise 1 - 2/(exp(2|x|)+1) with the sign of x. A few ulp.
inline __m256d tanh_pd(__m256d x) {
  const __m256d sign = _mm256_set1_pd(-0.0);
  const __m256d ax = _mm256_andnot_pd(sign, x);
  const __m256d z = _mm256_mul_pd(x, x);
  __m256d p = _mm256_set1_pd(-9.64399179425052238628E-1);
  p = _mm256_fmadd_pd(p, z, _mm256_set1_pd(-9.92877231001918586564E1));
  p = _mm256_fmadd_pd(p, z, _mm256_set1_pd(-1.61468768441708447952E3));
  __m256d q = _mm256_add_pd(z, _mm256_set1_pd(1.12811678491632931402E2));
  q = _mm256_fmadd_pd(q, z, _mm256_set1_pd(2.23548839060100448583E3));
  q = _mm256_fmadd_pd(q, z, _mm256_set1_pd(4.84406305325125486048E3));
  const __m256d rz = _mm256_div_pd(_mm256_mul_pd(z, p), q);
  const __m256d small = _mm256_or_pd(_mm256_fmadd_pd(rz, ax, ax), _mm256_and_pd(sign, x));
  const __m256d e = exp_pd(_mm256_add_pd(ax, ax));
  const __m256d one = _mm256_set1_pd(1.0);
  __m256d large = _mm256_sub_pd(one, _mm256_div_pd(_mm256_set1_pd(2.0), _mm256_add_pd(e, one)));
  large = _mm256_or_pd(large, _mm256_and_pd(sign, x));
  return _mm256_blendv_pd(large, small, _mm256_cmp_pd(ax, _mm256_set1_pd(0.625), _CMP_LT_OQ));
}

// float64 activations, all in vectors (sigmoid as in activate_ps).
inline __m256d activate_pd(__m256d v, const Activation& a) {
  switch (a.kind) {
    case Activation::none: return v;
    case Activation::relu: return _mm256_max_pd(_mm256_setzero_pd(), v);
    case Activation::sigmoid: {
      const __m256d t = _mm256_mul_pd(_mm256_set1_pd(a.alpha),
                                      _mm256_sub_pd(v, _mm256_set1_pd(a.beta)));
      const __m256d e = exp_pd(_mm256_or_pd(t, _mm256_set1_pd(-0.0)));
      const __m256d one = _mm256_set1_pd(1.0);
      const __m256d q = _mm256_div_pd(one, _mm256_add_pd(one, e));
      return _mm256_blendv_pd(q, _mm256_mul_pd(e, q),
                              _mm256_cmp_pd(t, _mm256_setzero_pd(), _CMP_LT_OQ));
    }
    case Activation::tanh: return tanh_pd(v);
    case Activation::abs: return _mm256_andnot_pd(_mm256_set1_pd(-0.0), v);
    case Activation::square: return _mm256_mul_pd(v, v);
    case Activation::leaky_relu:
      return _mm256_blendv_pd(v, _mm256_mul_pd(_mm256_set1_pd(a.alpha), v),
                              _mm256_cmp_pd(v, _mm256_setzero_pd(), _CMP_LT_OQ));
  }
  return v;
}

// Lane mask with the first n (0..8) lanes set.
inline __m256i mask_ps(int64_t n) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(n)), idx);
}
inline __m256i mask_pd(int64_t n) {
  const __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
  return _mm256_cmpgt_epi64(_mm256_set1_epi64x(n), idx);
}

// Vector operations by element type (8 floats or 4 doubles a ymm), for the kernels'
// templates. Epilogue: act(v) then the store of a row's first `lanes` lanes.
template <class T>
struct Vec;

template <>
struct Vec<float> {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V mul(V a, V b) { return _mm256_mul_ps(a, b); }
  static V div(V a, V b) { return _mm256_div_ps(a, b); }
  static V set1(T v) { return _mm256_set1_ps(v); }
  // max(m, v), NaN in v kept (a NaN in m is kept by max itself).
  static V max_nan(V m, V v) {
    return _mm256_blendv_ps(_mm256_max_ps(v, m), v, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
  }
  static __m256i mask(int64_t n) { return mask_ps(n); }
  static V load(const T* p, __m256i m, bool full) {
    return full ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, m);
  }
  static void store(T* p, V v, __m256i m, bool full) {
    if (full)
      _mm256_storeu_ps(p, v);
    else
      _mm256_maskstore_ps(p, m, v);
  }
  struct Epilogue {
    ActF32 av;
    explicit Epilogue(const Activation& act) : av(act) {}
    void store(T* y, V v, int64_t lanes) const {
      v = activate_ps(v, av);
      if (lanes == L)
        _mm256_storeu_ps(y, v);
      else
        _mm256_maskstore_ps(y, mask_ps(lanes), v);
    }
  };
};

template <>
struct Vec<double> {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V mul(V a, V b) { return _mm256_mul_pd(a, b); }
  static V div(V a, V b) { return _mm256_div_pd(a, b); }
  static V set1(T v) { return _mm256_set1_pd(v); }
  static V max_nan(V m, V v) {
    return _mm256_blendv_pd(_mm256_max_pd(v, m), v, _mm256_cmp_pd(v, v, _CMP_UNORD_Q));
  }
  static __m256i mask(int64_t n) { return mask_pd(n); }
  static V load(const T* p, __m256i m, bool full) {
    return full ? _mm256_loadu_pd(p) : _mm256_maskload_pd(p, m);
  }
  static void store(T* p, V v, __m256i m, bool full) {
    if (full)
      _mm256_storeu_pd(p, v);
    else
      _mm256_maskstore_pd(p, m, v);
  }
  struct Epilogue {
    const Activation& act;
    explicit Epilogue(const Activation& a) : act(a) {}
    void store(T* y, V v, int64_t lanes) const {
      v = activate_pd(v, act);
      if (lanes == L)
        _mm256_storeu_pd(y, v);
      else
        _mm256_maskstore_pd(y, mask_pd(lanes), v);
    }
  };
};

// The operations the ISA-generic kernel bodies (winograd_transform.hpp,
// depthwise_nchwc.hpp) call, on whole ymm vectors of T; loads and stores of the first
// `lanes` lanes go through a mask only when the vector is not whole.
template <class Type>
struct BodyOps {
  using T = Type;
  using W = Vec<Type>;
  using V = typename W::V;
  static constexpr int L = W::L;
  static V zero() { return W::zero(); }
  static V set1(T v) { return W::set1(v); }
  static V mul(V a, V b) { return W::mul(a, b); }
  static V fmadd(V a, V b, V c) { return W::fmadd(a, b, c); }
  static V add(V a, V b) { return W::add(a, b); }
  static V load(const T* p) { return W::load(p); }
  static V load(const T* p, int64_t lanes) { return W::load(p, W::mask(lanes), lanes == L); }
  static void store(T* p, V v, int64_t lanes) { W::store(p, v, W::mask(lanes), lanes == L); }
  // a and b interleaved (a0 b0 a1 b1 ...): the first L elements in lo, the rest in hi
  // (winograd_unpack; unzip's inverse): within each 128-bit half, then the halves.
  static void zip(V a, V b, V& lo, V& hi) {
    if constexpr (L == 8) {
      const __m256 u0 = _mm256_unpacklo_ps(a, b), u1 = _mm256_unpackhi_ps(a, b);
      lo = _mm256_permute2f128_ps(u0, u1, 0x20);
      hi = _mm256_permute2f128_ps(u0, u1, 0x31);
    } else {
      const __m256d u0 = _mm256_unpacklo_pd(a, b), u1 = _mm256_unpackhi_pd(a, b);
      lo = _mm256_permute2f128_pd(u0, u1, 0x20);
      hi = _mm256_permute2f128_pd(u0, u1, 0x31);
    }
  }
  // The even and the odd elements of the 2L-element sequence a, b (winograd_pack): within
  // each 128-bit half, then the halves' 64-bit pieces in order.
  static void unzip(V a, V b, V& even, V& odd) {
    if constexpr (L == 8) {
      even = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0))), 0xD8));
      odd = _mm256_castpd_ps(_mm256_permute4x64_pd(
          _mm256_castps_pd(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1))), 0xD8));
    } else {
      even = _mm256_permute4x64_pd(_mm256_shuffle_pd(a, b, 0x0), 0xD8);
      odd = _mm256_permute4x64_pd(_mm256_shuffle_pd(a, b, 0xF), 0xD8);
    }
  }
  using Epilogue = typename W::Epilogue;
};

}  // namespace
}  // namespace convcore::kernels::avx2
