// tap_dots_avx2.cpp — tap_dots_f32_avx2 / tap_dots_f64_avx2: conv2d's weight gradient by
// row dot products (contract in table.hpp). A dot's L lane sums (16 floats, 8 doubles) are
// two ymm, so element i lands in lane i % L as the contract orders. A block is up to 2
// gradient rows x 3 taps (12 accumulators of the 16 registers). The last partial step
// reads zero-padded copies (an FMA of 0*0 leaves a lane's sum as the twin's, whose final
// in-order sum cannot tell +0 from -0).
#include <immintrin.h>

#include <algorithm>

#include "kernels/avx2/avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

template <class T>
struct Y;
template <>
struct Y<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
template <>
struct Y<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
};

constexpr int KB = 2, TB = 3;

template <class T, int KN, int NT>
void block(const T* g, int64_t g_ld, const T* x, const int64_t* off, int64_t n, T* out,
           int64_t out_ld) {
  using Yv = Y<T>;
  constexpr int W = Yv::W, L = 2 * W;
  typename Yv::V acc[KN][NT][2];
  for (int k = 0; k < KN; ++k)
    for (int t = 0; t < NT; ++t) acc[k][t][0] = acc[k][t][1] = Yv::zero();
  const T* xt[NT];
  for (int t = 0; t < NT; ++t) xt[t] = x + off[t];
  auto step = [&](const T* const* gk, int64_t gi, const T* const* xs, int64_t xi) {
    for (int h = 0; h < 2; ++h) {
      typename Yv::V gv[KN];
      for (int k = 0; k < KN; ++k) gv[k] = Yv::load(gk[k] + gi + h * W);
      for (int t = 0; t < NT; ++t) {
        const typename Yv::V xv = Yv::load(xs[t] + xi + h * W);
        for (int k = 0; k < KN; ++k) acc[k][t][h] = Yv::fma(gv[k], xv, acc[k][t][h]);
      }
    }
  };
  const T* gk[KN];
  for (int k = 0; k < KN; ++k) gk[k] = g + k * g_ld;
  int64_t i = 0;
  for (; i + L <= n; i += L) step(gk, i, xt, i);
  if (i < n) {
    T gpad[KN][L] = {}, xpad[NT][L] = {};
    const T* gp[KN];
    const T* xp[NT];
    for (int k = 0; k < KN; ++k) {
      std::copy(gk[k] + i, gk[k] + n, gpad[k]);
      gp[k] = gpad[k];
    }
    for (int t = 0; t < NT; ++t) {
      std::copy(xt[t] + i, xt[t] + n, xpad[t]);
      xp[t] = xpad[t];
    }
    step(gp, 0, xp, 0);
  }
  alignas(32) T lanes[L];
  for (int k = 0; k < KN; ++k)
    for (int t = 0; t < NT; ++t) {
      Yv::store(lanes, acc[k][t][0]);
      Yv::store(lanes + W, acc[k][t][1]);
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
    default: return;
  }
}

template <class T>
void tap_dots(const T* g, int64_t g_ld, int64_t kn, const T* x, const int64_t* off,
              int64_t taps, int64_t n, T* out, int64_t out_ld) {
  if (kn == 1) return rows<T, 1>(g, g_ld, x, off, taps, n, out, out_ld);
  if (kn == KB) return rows<T, KB>(g, g_ld, x, off, taps, n, out, out_ld);
}

}  // namespace

void tap_dots_f32_avx2(const float* g, int64_t g_ld, int64_t kn, const float* x,
                       const int64_t* off, int64_t taps, int64_t n, float* out, int64_t out_ld) {
  tap_dots(g, g_ld, kn, x, off, taps, n, out, out_ld);
}
void tap_dots_f64_avx2(const double* g, int64_t g_ld, int64_t kn, const double* x,
                       const int64_t* off, int64_t taps, int64_t n, double* out,
                       int64_t out_ld) {
  tap_dots(g, g_ld, kn, x, off, taps, n, out, out_ld);
}

}  // namespace convcore::kernels::avx2
