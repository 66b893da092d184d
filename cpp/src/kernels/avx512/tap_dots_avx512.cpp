// tap_dots_avx512.cpp — tap_dots_f32_avx512 / tap_dots_f64_avx512: conv2d's weight gradient
// by row dot products (contract in table.hpp). One zmm holds a dot's L lane sums (16
// floats, 8 doubles), so element i lands in lane i % L as the contract orders. A block is
// up to 4 gradient rows x 6 taps (24 accumulators): each step loads kn gradient vectors
// and tb shifted input vectors for kn*tb FMAs. The last partial vector is read through a
// lane mask (zeros: an FMA of 0*0 leaves a lane's sum as the twin's, whose final in-order
// sum cannot tell +0 from -0).
#include <immintrin.h>

#include "kernels/avx512/avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

template <class T>
struct Z;
template <>
struct Z<float> {
  using V = __m512;
  using M = __mmask16;
  static constexpr int L = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(M m, const float* p) { return _mm512_maskz_loadu_ps(m, p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
  static M mask(int64_t n) { return static_cast<M>((1u << n) - 1); }
};
template <>
struct Z<double> {
  using V = __m512d;
  using M = __mmask8;
  static constexpr int L = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V load(M m, const double* p) { return _mm512_maskz_loadu_pd(m, p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
  static M mask(int64_t n) { return static_cast<M>((1u << n) - 1); }
};

constexpr int KB = 4, TB = 6;

template <class T, int KN, int NT>
void block(const T* g, int64_t g_ld, const T* x, const int64_t* off, int64_t n, T* out,
           int64_t out_ld) {
  using Zv = Z<T>;
  constexpr int L = Zv::L;
  typename Zv::V acc[KN][NT];
  for (int k = 0; k < KN; ++k)
    for (int t = 0; t < NT; ++t) acc[k][t] = Zv::zero();
  const T* xt[NT];
  for (int t = 0; t < NT; ++t) xt[t] = x + off[t];
  int64_t i = 0;
  for (; i + L <= n; i += L) {
    typename Zv::V gv[KN];
    for (int k = 0; k < KN; ++k) gv[k] = Zv::load(g + k * g_ld + i);
    for (int t = 0; t < NT; ++t) {
      const typename Zv::V xv = Zv::load(xt[t] + i);
      for (int k = 0; k < KN; ++k) acc[k][t] = Zv::fma(gv[k], xv, acc[k][t]);
    }
  }
  if (i < n) {
    const typename Zv::M m = Zv::mask(n - i);
    typename Zv::V gv[KN];
    for (int k = 0; k < KN; ++k) gv[k] = Zv::load(m, g + k * g_ld + i);
    for (int t = 0; t < NT; ++t) {
      const typename Zv::V xv = Zv::load(m, xt[t] + i);
      for (int k = 0; k < KN; ++k) acc[k][t] = Zv::fma(gv[k], xv, acc[k][t]);
    }
  }
  alignas(64) T lanes[L];
  for (int k = 0; k < KN; ++k)
    for (int t = 0; t < NT; ++t) {
      Zv::store(lanes, acc[k][t]);
      T s = T(0);
      for (int l = 0; l < L; ++l) s += lanes[l];
      out[k * out_ld + t] += s;
    }
}

template <class T, int KN>
void rows(const T* g, int64_t g_ld, const T* x, const int64_t* off, int64_t taps, int64_t n,
          T* out, int64_t out_ld) {
  int64_t t = 0;
  for (; t + TB <= taps; t += TB) block<T, KN, TB>(g, g_ld, x, off + t, n, out + t, out_ld);
  switch (taps - t) {
    case 1: return block<T, KN, 1>(g, g_ld, x, off + t, n, out + t, out_ld);
    case 2: return block<T, KN, 2>(g, g_ld, x, off + t, n, out + t, out_ld);
    case 3: return block<T, KN, 3>(g, g_ld, x, off + t, n, out + t, out_ld);
    case 4: return block<T, KN, 4>(g, g_ld, x, off + t, n, out + t, out_ld);
    case 5: return block<T, KN, 5>(g, g_ld, x, off + t, n, out + t, out_ld);
    default: return;
  }
}

template <class T>
void tap_dots(const T* g, int64_t g_ld, int64_t kn, const T* x, const int64_t* off,
              int64_t taps, int64_t n, T* out, int64_t out_ld) {
  switch (kn) {
    case 1: return rows<T, 1>(g, g_ld, x, off, taps, n, out, out_ld);
    case 2: return rows<T, 2>(g, g_ld, x, off, taps, n, out, out_ld);
    case 3: return rows<T, 3>(g, g_ld, x, off, taps, n, out, out_ld);
    case 4: return rows<T, KB>(g, g_ld, x, off, taps, n, out, out_ld);
    default: return;
  }
}

}  // namespace

void tap_dots_f32_avx512(const float* g, int64_t g_ld, int64_t kn, const float* x,
                         const int64_t* off, int64_t taps, int64_t n, float* out,
                         int64_t out_ld) {
  tap_dots(g, g_ld, kn, x, off, taps, n, out, out_ld);
}
void tap_dots_f64_avx512(const double* g, int64_t g_ld, int64_t kn, const double* x,
                         const int64_t* off, int64_t taps, int64_t n, double* out,
                         int64_t out_ld) {
  tap_dots(g, g_ld, kn, x, off, taps, n, out, out_ld);
}

}  // namespace convcore::kernels::avx512
