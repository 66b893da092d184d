// vec_avx512.hpp — the AVX-512 kernels' vector helpers, one header for every AVX-512 kernel
// file: Vec<T, W>, the operations on zmm (W = 512) and on ymm with AVX-512VL lane masks
// (W = 256) the kernels share, and their epilogues (activations on the two 256-bit halves
// through the AVX2 functions, hence bitwise the AVX2 values, sigmoid and tanh included).
// Included only by files compiled with the AVX-512 flags; internal linkage (ODR-safe, as
// avx2/vec_avx2.hpp).
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx512 {
namespace {

// First n lanes (0 <= n <= 16) of a mask.
inline __mmask16 lanes16(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }

template <class T, int W>
struct Vec;

template <>
struct Vec<float, 512> {
  using T = float;
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const T* p) { return _mm512_loadu_ps(p); }
  static V load(M m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
  static void store_aligned(T* p, V v) { _mm512_store_ps(p, v); }
  static V maskz_load(__mmask16 m, const T* p) { return _mm512_maskz_loadu_ps(m, p); }
  static V bcast(const T* p) { return _mm512_set1_ps(*p); }
  static V set1(T v) { return _mm512_set1_ps(v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static V mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static V relu(V v) { return _mm512_max_ps(_mm512_setzero_ps(), v); }  // NaN: 2nd operand
  static V abs(V v) { return _mm512_abs_ps(v); }
  static V leaky(V v, V alpha) {
    return _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, _mm512_setzero_ps(), _CMP_LT_OQ), alpha, v);
  }
  // Masked stores are slow on Zen 4: only partial vectors take one.
  static void store(T* y, V v, M m) {
    if (m == M(0xFFFF))
      _mm512_storeu_ps(y, v);
    else
      _mm512_mask_storeu_ps(y, m, v);
  }
  static void mask_store(T* p, __mmask16 m, V v) { _mm512_mask_storeu_ps(p, m, v); }
  // Lanes K.. of lo followed by the first K lanes of hi.
  template <int K>
  static V shift(V hi, V lo) {
    return _mm512_castsi512_ps(
        _mm512_alignr_epi32(_mm512_castps_si512(hi), _mm512_castps_si512(lo), K));
  }
  static __m512 widen(V v) { return v; }
  // The activation, its parameters broadcast once per kernel call.
  struct Epilogue {
    Activation::Kind kind;
    avx2::ActF32 av;  // sigmoid/tanh, per ymm half
    V alpha;
    explicit Epilogue(const Activation& act)
        : kind(act.kind), av(act), alpha(_mm512_set1_ps(static_cast<float>(act.alpha))) {}
    // sigmoid or tanh: the AVX2 functions on each half (accuracy as AVX2's).
    [[gnu::noinline]] V transcendental(V v) const {
      const __m256 lo = avx2::activate_ps(_mm512_castps512_ps256(v), av);
      const __m256 hi = avx2::activate_ps(_mm512_extractf32x8_ps(v, 1), av);
      return _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1);
    }
    // Stores the first `lanes` lanes of act(v), activated per ymm half.
    void store(T* y, V v, int64_t lanes) const {
      const __mmask16 m = lanes16(lanes);
      if (kind == Activation::none) {
        _mm512_mask_storeu_ps(y, m, v);
        return;
      }
      // maskz extracts and stores per half: GCC 12 warns on the casts, plain extracts and
      // inserts (their undefined parts).
      _mm256_mask_storeu_ps(y, static_cast<__mmask8>(m),
                            avx2::activate_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 0), av));
      _mm256_mask_storeu_ps(y + 8, static_cast<__mmask8>(m >> 8),
                            avx2::activate_ps(_mm512_maskz_extractf32x8_ps(0xff, v, 1), av));
    }
  };
};

template <>
struct Vec<float, 256> {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V maskz_load(__mmask16 m, const T* p) {
    return _mm256_maskz_loadu_ps(static_cast<__mmask8>(m), p);
  }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V set1(T v) { return _mm256_set1_ps(v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void mask_store(T* p, __mmask16 m, V v) {
    _mm256_mask_storeu_ps(p, static_cast<__mmask8>(m), v);
  }
  static __m512 widen(V v) { return _mm512_insertf32x8(_mm512_setzero_ps(), v, 0); }
  struct Epilogue {
    avx2::ActF32 av;
    explicit Epilogue(const Activation& act) : av(act) {}
    void store(T* y, V v, int64_t lanes) const {
      v = avx2::activate_ps(v, av);
      if (lanes == L)
        _mm256_storeu_ps(y, v);
      else
        _mm256_mask_storeu_ps(y, static_cast<__mmask8>(lanes16(lanes)), v);
    }
  };
};

template <>
struct Vec<double, 512> {
  using T = double;
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const T* p) { return _mm512_loadu_pd(p); }
  static V load(M m, const T* p) { return _mm512_maskz_loadu_pd(m, p); }
  static void store_aligned(T* p, V v) { _mm512_store_pd(p, v); }
  static V maskz_load(__mmask16 m, const T* p) {
    return _mm512_maskz_loadu_pd(static_cast<__mmask8>(m), p);
  }
  static V bcast(const T* p) { return _mm512_set1_pd(*p); }
  static V set1(T v) { return _mm512_set1_pd(v); }
  static V fmadd(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static V mul(V a, V b) { return _mm512_mul_pd(a, b); }
  static V relu(V v) { return _mm512_max_pd(_mm512_setzero_pd(), v); }
  static V abs(V v) { return _mm512_abs_pd(v); }
  static V leaky(V v, V alpha) {
    return _mm512_mask_mul_pd(v, _mm512_cmp_pd_mask(v, _mm512_setzero_pd(), _CMP_LT_OQ), alpha, v);
  }
  static void store(T* y, V v, M m) {
    if (m == M(0xFF))
      _mm512_storeu_pd(y, v);
    else
      _mm512_mask_storeu_pd(y, m, v);
  }
  static void mask_store(T* p, __mmask16 m, V v) {
    _mm512_mask_storeu_pd(p, static_cast<__mmask8>(m), v);
  }
  template <int K>
  static V shift(V hi, V lo) {
    return _mm512_castsi512_pd(
        _mm512_alignr_epi64(_mm512_castpd_si512(hi), _mm512_castpd_si512(lo), K));
  }
  static __m512d widen(V v) { return v; }
  struct Epilogue {
    Activation::Kind kind;
    const Activation& act;
    V alpha;
    explicit Epilogue(const Activation& a)
        : kind(a.kind), act(a), alpha(_mm512_set1_pd(a.alpha)) {}
    [[gnu::noinline]] V transcendental(V v) const {
      const __m256d lo = avx2::activate_pd(_mm512_castpd512_pd256(v), act);
      const __m256d hi = avx2::activate_pd(_mm512_extractf64x4_pd(v, 1), act);
      return _mm512_insertf64x4(_mm512_castpd256_pd512(lo), hi, 1);
    }
    void store(T* y, V v, int64_t lanes) const {
      const auto m = static_cast<__mmask8>(lanes16(lanes));
      if (kind == Activation::none) {
        _mm512_mask_storeu_pd(y, m, v);
        return;
      }
      _mm256_mask_storeu_pd(y, m & 0xf,
                            avx2::activate_pd(_mm512_maskz_extractf64x4_pd(0xf, v, 0), act));
      _mm256_mask_storeu_pd(y + 4, m >> 4,
                            avx2::activate_pd(_mm512_maskz_extractf64x4_pd(0xf, v, 1), act));
    }
  };
};

template <>
struct Vec<double, 256> {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V maskz_load(__mmask16 m, const T* p) {
    return _mm256_maskz_loadu_pd(static_cast<__mmask8>(m), p);
  }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V set1(T v) { return _mm256_set1_pd(v); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static void mask_store(T* p, __mmask16 m, V v) {
    _mm256_mask_storeu_pd(p, static_cast<__mmask8>(m), v);
  }
  static __m512d widen(V v) {
    return _mm512_castps_pd(_mm512_insertf32x8(_mm512_setzero_ps(), _mm256_castpd_ps(v), 0));
  }
  struct Epilogue {
    const Activation& act;
    explicit Epilogue(const Activation& a) : act(a) {}
    void store(T* y, V v, int64_t lanes) const {
      v = avx2::activate_pd(v, act);
      if (lanes == L)
        _mm256_storeu_pd(y, v);
      else
        _mm256_mask_storeu_pd(y, static_cast<__mmask8>(lanes16(lanes)), v);
    }
  };
};

// The operations the ISA-generic kernel bodies (winograd_transform.hpp,
// depthwise_nchwc.hpp) call, on whole zmm vectors of T; loads and stores of the first
// `lanes` lanes go through a mask only when the vector is not whole.
template <class Type>
struct BodyOps {
  using T = Type;
  using W = Vec<Type, 512>;
  using V = typename W::V;
  static constexpr int L = W::L;
  static V zero() { return W::zero(); }
  static V set1(T v) { return W::set1(v); }
  static V mul(V a, V b) { return W::mul(a, b); }
  static V fmadd(V a, V b, V c) { return W::fmadd(a, b, c); }
  static V add(V a, V b) { return W::add(a, b); }
  static V load(const T* p) { return W::load(p); }
  static V load(const T* p, int64_t lanes) {
    return lanes == L ? W::load(p) : W::maskz_load(lanes16(lanes), p);
  }
  static void store(T* p, V v, int64_t lanes) {
    if (lanes == L)
      W::store(p, v, typename W::M(-1));
    else
      W::mask_store(p, lanes16(lanes), v);
  }
  // a and b interleaved (a0 b0 a1 b1 ...): the first L elements in lo, the rest in hi
  // (winograd_unpack; unzip's inverse).
  static void zip(V a, V b, V& lo, V& hi) {
    if constexpr (L == 16) {
      const __m512i l = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
      lo = _mm512_permutex2var_ps(a, l, b);
      hi = _mm512_permutex2var_ps(a, _mm512_add_epi32(l, _mm512_set1_epi32(8)), b);
    } else {
      const __m512i l = _mm512_setr_epi64(0, 8, 1, 9, 2, 10, 3, 11);
      lo = _mm512_permutex2var_pd(a, l, b);
      hi = _mm512_permutex2var_pd(a, _mm512_add_epi64(l, _mm512_set1_epi64(4)), b);
    }
  }
  // The even and the odd elements of the 2L-element sequence a, b (winograd_pack).
  static void unzip(V a, V b, V& even, V& odd) {
    if constexpr (L == 16) {
      const __m512i e = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
      even = _mm512_permutex2var_ps(a, e, b);
      odd = _mm512_permutex2var_ps(a, _mm512_add_epi32(e, _mm512_set1_epi32(1)), b);
    } else {
      const __m512i e = _mm512_setr_epi64(0, 2, 4, 6, 8, 10, 12, 14);
      even = _mm512_permutex2var_pd(a, e, b);
      odd = _mm512_permutex2var_pd(a, _mm512_add_epi64(e, _mm512_set1_epi64(1)), b);
    }
  }
  // W's epilogue stores through a mask even for whole vectors: slow on Zen 4.
  struct Epilogue {
    typename W::Epilogue act;
    bool none;
    explicit Epilogue(const Activation& a) : act(a), none(a.kind == Activation::none) {}
    void store(T* p, V v, int64_t lanes) const {
      if (none)
        BodyOps::store(p, v, lanes);
      else
        act.store(p, v, lanes);
    }
  };
};

}  // namespace
}  // namespace convcore::kernels::avx512
