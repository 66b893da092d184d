// direct_avx2.cpp — width-vectorised direct convolution kernels, AVX2+FMA.
//   direct_tile  (KB = 4): 4 output channels x 3 vectors (float 4x24 = 12 ymm
//                accumulators; double 4x12), 3 input loads + 4 weight broadcasts per 12
//                FMAs. The vectors of a tile come from one row, or — when rows would
//                split into short tiles — from the rows' vectors taken as one sequence.
//   direct_plane (KB = 1): depthwise convolution and one-channel filtering. 3x3 taps with
//                stride_h == dilation_h: 4 rows x 3 vectors, each input row loaded once
//                for the 3 output rows that read it; otherwise 2 rows x up to 7 vectors.
// Contract (packed band, tap offsets, weight panels): kernels/README.md. The last vector
// of a row is stored through a lane mask, so any width works. Accumulation order per
// output: c, then tap, one FMA each — as the scalar twins (scalar/direct_scalar.cpp).
#include <immintrin.h>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

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

// Bias of each of the KB channels (0 past kn or without bias), broadcast.
template <class Tr, int KB>
void bias_vectors(const typename Tr::T* bias, int64_t kn, typename Tr::V* bv) {
  for (int k = 0; k < KB; ++k)
    bv[k] = Tr::set1(bias != nullptr && k < kn ? bias[k] : typename Tr::T(0));
}

// direct_plane: 3x3 taps whose rows are one output-row stride apart (stride_h ==
// dilation_h) in groups of 4 rows with row reuse (4 x 3-vector tiles); other rows in
// pairs (tiles up to 7 vectors), an odd last row alone (up to 8).
template <class Tr>
void plane(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
           const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  if (a.n <= 0) return;
  const typename Tr::Epilogue epi(act);
  typename Tr::V bv[1];
  bias_vectors<Tr, 1>(bias, a.kn, bv);
  bool reuse = a.taps == 9 && a.S == 3;
  for (int64_t t = 0; t < a.taps && reuse; ++t)
    reuse = a.tap[t] == a.tap[t % a.S] + (t / a.S) * a.x_rstride;
  int64_t i = 0;
  if (reuse)
    for (; i + 4 <= a.rows; i += 4)
      rows<Tr, 1, 4, 3, true>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
  for (; i + 2 <= a.rows; i += 2)
    rows<Tr, 1, 2, 7>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
  for (; i < a.rows; ++i)
    rows<Tr, 1, 1, 8>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
}

// direct_tile: the rows' vectors taken as one sequence, NV at a time, so every tile but
// the last holds NV vectors whatever the width (a row of 7 vectors would otherwise split
// into 3 + 2 + 2, and the 2-vector tiles have too few accumulators to hide the FMA
// latency). Vector v of the tile is at x + xo[v], y + yo[v] and stores lanes[v] lanes.
template <class Tr, int KB, int NV>
void flat_tile(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
               const typename Tr::V* bias, typename Tr::T* y, const int64_t* xo,
               const int64_t* yo, const int64_t* lanes, const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  V acc[KB][NV];
  int64_t off[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) off[v] = xo[v];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[k][v] = Tr::zero();
  for (int64_t c = 0; c < a.C; ++c) {
    const auto* xc = x + c * a.x_cstride;
    const auto* wc = w + c * a.taps * KB;
#pragma GCC unroll 3  // the tap loop is short: measured +7% on 3x3, 64 channels
    for (int64_t t = 0; t < a.taps; ++t) {
      const auto* p = xc + a.tap[t];
      const auto* wt = wc + t * KB;
      V xv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) xv[v] = Tr::load(p + off[v]);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) {
        const V b = Tr::bcast(wt + k);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[k][v] = Tr::fmadd(b, xv[v], acc[k][v]);
      }
    }
  }
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    if (k >= a.kn) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      epi.store(y + k * a.y_kstride + yo[v], Tr::add(acc[k][v], bias[k]), lanes[v]);
  }
}

template <class Tr, int KB, int NV>
void direct_flat(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
                 const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  if (a.n <= 0 || a.rows <= 0) return;
  const typename Tr::Epilogue epi(act);
  typename Tr::V bv[KB];
  bias_vectors<Tr, KB>(bias, a.kn, bv);
  const int64_t nvec = (a.n + Tr::L - 1) / Tr::L, total = a.rows * nvec;
  const int64_t last = a.n - (nvec - 1) * Tr::L;
  // Row by row (offsets known at compile time: faster per tile) unless more than a
  // quarter of the vectors would sit in short tiles (7 vectors: 3 + 2 + 2).
  const int64_t short_tiles = (nvec + NV - 1) / NV * NV - nvec;
  if (4 * short_tiles * (NV - 1) <= nvec) {
    for (int64_t i = 0; i < a.rows; ++i)
      rows<Tr, KB, 1, NV>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
    return;
  }
  int64_t xo[NV], yo[NV], lanes[NV];
  int64_t i = 0, j = 0;  // row and vector of the next vector in the sequence
  for (int64_t q = 0; q < total; q += NV) {
    const int64_t nv = total - q < NV ? total - q : NV;
    for (int64_t v = 0; v < nv; ++v) {
      xo[v] = i * a.x_rstride + j * Tr::L;
      yo[v] = i * a.y_rstride + j * Tr::L;
      lanes[v] = j == nvec - 1 ? last : Tr::L;
      if (++j == nvec) {
        j = 0;
        ++i;
      }
    }
    if (nv == NV)
      flat_tile<Tr, KB, NV>(a, x, w, bv, y, xo, yo, lanes, epi);
    else if (nv == 2)
      flat_tile<Tr, KB, 2>(a, x, w, bv, y, xo, yo, lanes, epi);
    else
      flat_tile<Tr, KB, 1>(a, x, w, bv, y, xo, yo, lanes, epi);
  }
}

}  // namespace

void direct_tile_f32_avx2(const DirectTileArgs& a, const float* x, const float* w,
                     const float* bias, float* y, const Activation& act) {
  direct_flat<Vec<float>, 4, 3>(a, x, w, bias, y, act);
}
void direct_tile_f64_avx2(const DirectTileArgs& a, const double* x, const double* w,
                     const double* bias, double* y, const Activation& act) {
  direct_flat<Vec<double>, 4, 3>(a, x, w, bias, y, act);
}
void direct_plane_f32_avx2(const DirectTileArgs& a, const float* x, const float* w,
                      const float* bias, float* y, const Activation& act) {
  plane<Vec<float>>(a, x, w, bias, y, act);
}
void direct_plane_f64_avx2(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act) {
  plane<Vec<double>>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx2
