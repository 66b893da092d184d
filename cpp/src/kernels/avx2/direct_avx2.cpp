// direct_avx2.cpp — width-vectorised direct convolution kernels, AVX2+FMA.
//   direct_tile  (KB = 4): 4 output channels x up to 3 vectors of one output row
//                (float 4x24 = 12 ymm accumulators; double 4x12), 4 weight broadcasts and
//                3 input loads per 12 FMAs.
//   direct_plane (KB = 1): 1 output channel x up to 8 vectors (float 64 pixels, double
//                32): depthwise convolution and one-channel filtering.
// Contract (packed band, tap offsets, weight panels): kernels/README.md. A row is cut into
// tiles of nearly equal vector counts; the last vector of a row is stored through a lane
// mask, so any width works. Accumulation order per output: c, then tap, one FMA each —
// the scalar twins (kernels/scalar/direct_scalar.cpp) use the same order.
#include <immintrin.h>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vmath_avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

struct F32 {
  using T = float;
  using V = __m256;
  static constexpr int L = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const T* p) { return _mm256_loadu_ps(p); }
  static V bcast(const T* p) { return _mm256_broadcast_ss(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static V set1(T v) { return _mm256_set1_ps(v); }
  // Stores the first `lanes` lanes of act(v).
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

struct F64 {
  using T = double;
  using V = __m256d;
  static constexpr int L = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const T* p) { return _mm256_loadu_pd(p); }
  static V bcast(const T* p) { return _mm256_broadcast_sd(p); }
  static V fmadd(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static V set1(T v) { return _mm256_set1_pd(v); }
  struct Epilogue {
    const Activation& act;
    explicit Epilogue(const Activation& a) : act(a) {}
    void store(T* y, V v, int64_t lanes) const {
      activate_pd(v, act);
      if (lanes == L)
        _mm256_storeu_pd(y, v);
      else
        _mm256_maskstore_pd(y, mask_pd(lanes), v);
    }
  };
};

// KB output channels x RB rows x NV vectors starting at x / y; the last vector of each
// row holds `last` valid lanes.
template <class Tr, int KB, int RB, int NV, bool REUSE>
void tile(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
          const typename Tr::V* bias, typename Tr::T* y, int64_t last,
          const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  V acc[KB][RB][NV];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) acc[k][r][v] = Tr::zero();
  if constexpr (REUSE) {
    // 3x3 taps, tap rows one output-row stride apart: output row i, tap row r reads input
    // row u = i + r. Each input row is loaded once and feeds every output row that reads
    // it; per output the order is still r, then s (as the scalar twin).
    static_assert(KB == 1, "row reuse: one output channel");
    const int64_t t0 = a.tap[0], t1 = a.tap[1], t2 = a.tap[2];
    for (int64_t c = 0; c < a.C; ++c) {
      const auto* xc = x + c * a.x_cstride;
      const auto* wc = w + c * 9;
#pragma GCC unroll 8
      for (int u = 0; u < RB + 2; ++u) {
#pragma GCC unroll 3
        for (int s = 0; s < 3; ++s) {
          const auto* p = xc + u * a.x_rstride + (s == 0 ? t0 : s == 1 ? t1 : t2);
          V xv[NV];
#pragma GCC unroll 8
          for (int v = 0; v < NV; ++v) xv[v] = Tr::load(p + v * Tr::L);
#pragma GCC unroll 8
          for (int i = 0; i < RB; ++i) {
            const int r = u - i;
            if (r < 0 || r > 2) continue;
            const V b = Tr::bcast(wc + r * 3 + s);
#pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) acc[0][i][v] = Tr::fmadd(b, xv[v], acc[0][i][v]);
          }
          // Keeps GCC from hoisting all nine weight broadcasts out of the loop, which
          // runs out of registers and spills the accumulators.
          __asm__ volatile("" ::: "memory");
        }
      }
    }
  } else {
    for (int64_t c = 0; c < a.C; ++c) {
      const auto* xc = x + c * a.x_cstride;
      const auto* wc = w + c * a.taps * KB;
      for (int64_t t = 0; t < a.taps; ++t) {
        const auto* p = xc + a.tap[t];
        const auto* wt = wc + t * KB;
        // Registers: KB*RB*NV accumulators + NV inputs + 1 broadcast <= 16 (KB = 1 reads
        // the inputs as memory operands instead).
        if constexpr (KB == 1) {
          const V b = Tr::bcast(wt);
  #pragma GCC unroll 8
          for (int r = 0; r < RB; ++r)
  #pragma GCC unroll 8
            for (int v = 0; v < NV; ++v)
              acc[0][r][v] = Tr::fmadd(b, Tr::load(p + r * a.x_rstride + v * Tr::L), acc[0][r][v]);
        } else {
  #pragma GCC unroll 8
          for (int r = 0; r < RB; ++r) {
            V xv[NV];
  #pragma GCC unroll 8
            for (int v = 0; v < NV; ++v) xv[v] = Tr::load(p + r * a.x_rstride + v * Tr::L);
  #pragma GCC unroll 8
            for (int k = 0; k < KB; ++k) {
              const V b = Tr::bcast(wt + k);
  #pragma GCC unroll 8
              for (int v = 0; v < NV; ++v) acc[k][r][v] = Tr::fmadd(b, xv[v], acc[k][r][v]);
            }
          }
        }
      }
    }
  }
  // Fully unrolled with a test inside: a runtime trip count would index acc with a
  // variable and push the accumulators to memory.
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    if (k >= a.kn) break;
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        epi.store(y + k * a.y_kstride + r * a.y_rstride + v * Tr::L,
                  Tr::add(acc[k][r][v], bias[k]), v == NV - 1 ? last : Tr::L);
  }
}

// RB rows starting at x / y, cut into tiles of nearly equal vector counts <= NVMAX.
template <class Tr, int KB, int RB, int NVMAX, bool REUSE = false>
void rows(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
          const typename Tr::V* bias, typename Tr::T* y, const typename Tr::Epilogue& epi) {
  const int64_t nvec = (a.n + Tr::L - 1) / Tr::L;
  const int64_t ntile = (nvec + NVMAX - 1) / NVMAX;
  const int64_t base = nvec / ntile, extra = nvec % ntile;
  int64_t v0 = 0;
  for (int64_t tix = 0; tix < ntile; ++tix) {
    const int64_t nv = base + (tix < extra ? 1 : 0);
    const int64_t last = v0 + nv == nvec ? a.n - (nvec - 1) * Tr::L : Tr::L;
    const auto* xt = x + v0 * Tr::L;
    auto* yt = y + v0 * Tr::L;
    switch (nv) {
#define CONVCORE_TILE(N)                                                          \
  case N:                                                                         \
    if constexpr (N <= NVMAX) tile<Tr, KB, RB, N, REUSE>(a, xt, w, bias, yt, last, epi); \
    break;
      CONVCORE_TILE(1)
      CONVCORE_TILE(2)
      CONVCORE_TILE(3)
      CONVCORE_TILE(4)
      CONVCORE_TILE(5)
      CONVCORE_TILE(6)
      CONVCORE_TILE(7)
      CONVCORE_TILE(8)
#undef CONVCORE_TILE
      default: break;
    }
    v0 += nv;
  }
}

// Rows in groups of RB (tiles up to NVMAX vectors), the remaining rows one at a time
// (tiles up to NVMAX1).
template <class Tr, int KB, int RB, int NVMAX, int NVMAX1>
void direct(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
            const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  using V = typename Tr::V;
  if (a.n <= 0) return;
  const typename Tr::Epilogue epi(act);
  V bv[KB];
  for (int k = 0; k < KB; ++k)
    bv[k] = Tr::set1(bias != nullptr && k < a.kn ? bias[k] : typename Tr::T(0));
  int64_t i = 0;
  if constexpr (KB == 1) {
    // Row reuse: 3x3 taps whose rows are one output-row stride apart (stride_h ==
    // dilation_h).
    bool reuse = a.taps == 9 && a.S == 3;
    for (int64_t t = 0; t < a.taps && reuse; ++t)
      reuse = a.tap[t] == a.tap[t % a.S] + (t / a.S) * a.x_rstride;
    if (reuse)
      for (; i + 4 <= a.rows; i += 4)
        rows<Tr, 1, 4, 3, true>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
  }
  for (; i + RB <= a.rows; i += RB)
    rows<Tr, KB, RB, NVMAX>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
  for (; i < a.rows; ++i)
    rows<Tr, KB, 1, NVMAX1>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
}

}  // namespace

void direct_tile_f32(const DirectTileArgs& a, const float* x, const float* w,
                     const float* bias, float* y, const Activation& act) {
  direct<F32, 4, 1, 3, 3>(a, x, w, bias, y, act);
}
void direct_tile_f64(const DirectTileArgs& a, const double* x, const double* w,
                     const double* bias, double* y, const Activation& act) {
  direct<F64, 4, 1, 3, 3>(a, x, w, bias, y, act);
}
void direct_plane_f32(const DirectTileArgs& a, const float* x, const float* w,
                      const float* bias, float* y, const Activation& act) {
  direct<F32, 1, 2, 7, 8>(a, x, w, bias, y, act);
}
void direct_plane_f64(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act) {
  direct<F64, 1, 2, 7, 8>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx2
