// direct_tile_avx512.cpp — the width-vectorised direct convolution kernel for groups with
// several output channels (direct_tile, KB = 8), AVX-512 F/VL/BW/DQ.
//   Tile: 8 output channels x 3 vectors = 24 accumulators (of 32 registers), 3 input
//   loads + 8 weight broadcasts per 24 FMAs. With its data in L1 the AVX2 tile (4 x 3)
//   runs as fast; the gain is one pass over the L2-resident input band per 8 channels
//   instead of 4 (measured on one band of the 64-channel 3x3 layer: 4% faster, 8% with
//   the tap unrolling below).
//   Vectors are zmm (16 floats / 8 doubles) when a row's ymm vectors pair up (112 floats
//   = 14 ymm = 7 zmm), otherwise ymm (56 = 7 ymm, not 3.5 zmm): a zmm half-filled at
//   each row end would waste up to a quarter of the FMAs on rows of 24 to 56 (the
//   anchors' LeNet, ResNet and AlexNet layers); with 16-float rows pairing up no zmm load
//   reaches past round_up(n, 8), the band's readable end. zmm runs ~2% faster than ymm.
//   The vectors of a tile come from one row, or — when rows would split into short
//   tiles — from the rows' vectors taken as one sequence (as the AVX2 kernel), whose
//   last 4 vectors run as 2 + 2.
// Contract (packed band, tap offsets, weight panels): kernels/README.md. The last vector
// of a row is stored through a lane mask, so any width works. Accumulation order per
// output: c, then tap, one FMA each — as the scalar twin (scalar/direct_scalar.cpp), so
// results are bitwise equal across tables. Epilogue: the AVX2 vector activations
// (avx2/vec_avx2.hpp, internal linkage), on each ymm half of a zmm.
#include <immintrin.h>

#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

// KB output channels x NV vectors; vector v of the tile is at x + xo[v], y + yo[v] and
// stores lanes[v] lanes. With ROW the offsets are v * L (one row, known at compile time).
// U > 0: the taps run in unrolled groups of U (a.taps a multiple of U): each load
// instruction then strides by one channel or tap row, which the hardware prefetcher
// follows — all of 3x3 (U = 9: 4% faster on the 64-channel layer), a tap row of 11x11
// (U = 11: 2% on AlexNet's first layer); no gain measured on 7x7.
template <class Tr, int KB, int NV, bool ROW, int U>
void tile(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
          const typename Tr::V* bias, typename Tr::T* y, const int64_t* xo, const int64_t* yo,
          const int64_t* lanes, const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  V acc[KB][NV];
  int64_t off[NV];
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v) off[v] = ROW ? v * Tr::L : xo[v];
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[k][v] = Tr::zero();
  for (int64_t c = 0; c < a.C; ++c) {
    const auto* xc = x + c * a.x_cstride;
    const auto* wc = w + c * a.taps * KB;
    const auto step = [&](int64_t t) __attribute__((always_inline)) {
      const auto* p = xc + a.tap[t];
      const auto* wt = wc + t * KB;
      // Registers: KB*NV accumulators + NV inputs + 1 broadcast <= 32.
      V xv[NV];
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) xv[v] = Tr::load(p + off[v]);
#pragma GCC unroll 8
      for (int k = 0; k < KB; ++k) {
        const V b = Tr::bcast(wt + k);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) acc[k][v] = Tr::fmadd(b, xv[v], acc[k][v]);
      }
    };
    if constexpr (U > 0) {
      for (int64_t t0 = 0; t0 < a.taps; t0 += U) {
#pragma GCC unroll 16
        for (int t = 0; t < U; ++t) {
          step(t0 + t);
          // Keeps GCC from interleaving the taps, which runs out of registers and spills
          // the accumulators.
          __asm__ volatile("" ::: "memory");
        }
      }
    } else {
      for (int64_t t = 0; t < a.taps; ++t) step(t);
    }
  }
  // Fully unrolled with a test inside: a runtime trip count would index acc with a
  // variable and push the accumulators to memory.
#pragma GCC unroll 8
  for (int k = 0; k < KB; ++k) {
    if (k >= a.kn) break;
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v)
      epi.store(y + k * a.y_kstride + (ROW ? v * Tr::L : yo[v]), Tr::add(acc[k][v], bias[k]),
                ROW && v < NV - 1 ? Tr::L : lanes[v]);
  }
}

// One row cut into tiles of nearly equal vector counts <= NV.
template <class Tr, int KB, int NV, int U>
void row(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
         const typename Tr::V* bias, typename Tr::T* y, const typename Tr::Epilogue& epi) {
  const int64_t nvec = (a.n + Tr::L - 1) / Tr::L;
  const int64_t ntile = (nvec + NV - 1) / NV;
  const int64_t base = nvec / ntile, extra = nvec % ntile;
  int64_t v0 = 0;
  for (int64_t tix = 0; tix < ntile; ++tix) {
    const int64_t nv = base + (tix < extra ? 1 : 0);
    int64_t lanes[NV];
    for (int v = 0; v < NV; ++v) lanes[v] = Tr::L;
    lanes[nv - 1] = v0 + nv == nvec ? a.n - (nvec - 1) * Tr::L : Tr::L;
    const auto* xt = x + v0 * Tr::L;
    auto* yt = y + v0 * Tr::L;
    if (nv == NV)
      tile<Tr, KB, NV, true, U>(a, xt, w, bias, yt, nullptr, nullptr, lanes, epi);
    else if (nv == 2)
      tile<Tr, KB, 2, true, U>(a, xt, w, bias, yt, nullptr, nullptr, lanes, epi);
    else
      tile<Tr, KB, 1, true, U>(a, xt, w, bias, yt, nullptr, nullptr, lanes, epi);
    v0 += nv;
  }
}

template <class Tr, int KB, int NV, int U>
void direct(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
            const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  static_assert(NV == 3, "row() cuts rows into tiles of 1 to 3 vectors");
  const typename Tr::Epilogue epi(act);
  typename Tr::V bv[KB];
  for (int k = 0; k < KB; ++k)
    bv[k] = Tr::set1(bias != nullptr && k < a.kn ? bias[k] : typename Tr::T(0));
  const int64_t nvec = (a.n + Tr::L - 1) / Tr::L, total = a.rows * nvec;
  const int64_t last = a.n - (nvec - 1) * Tr::L;
  // Row by row (offsets known at compile time: faster per tile) unless more than a
  // quarter of the vectors would sit in short tiles (7 vectors: 3 + 2 + 2).
  const int64_t short_tiles = (nvec + NV - 1) / NV * NV - nvec;
  if (4 * short_tiles * (NV - 1) <= nvec) {
    for (int64_t i = 0; i < a.rows; ++i)
      row<Tr, KB, NV, U>(a, x + i * a.x_rstride, w, bv, y + i * a.y_rstride, epi);
    return;
  }
  int64_t xo[NV], yo[NV], lanes[NV];
  int64_t i = 0, j = 0;  // row and vector of the next vector in the sequence
  for (int64_t q = 0, nv = 0; q < total; q += nv) {
    // NV at a time; 4 left go as 2 + 2 (the 1-vector tile hides the FMA latency badly)
    const int64_t left = total - q;
    nv = left == NV + 1 ? 2 : left < NV ? left : NV;
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
      tile<Tr, KB, NV, false, U>(a, x, w, bv, y, xo, yo, lanes, epi);
    else if (nv == 2)
      tile<Tr, KB, 2, false, U>(a, x, w, bv, y, xo, yo, lanes, epi);
    else
      tile<Tr, KB, 1, false, U>(a, x, w, bv, y, xo, yo, lanes, epi);
  }
}

// zmm when the row's ymm vectors pair up (an even count: 112 floats = 14 ymm = 7 zmm),
// so that the zmm tile computes no more lanes than the ymm one; ymm otherwise. For float
// this also keeps every zmm load below round_up(n, 8), the band's readable end.
template <class Z, class Y>
void dispatch(const DirectTileArgs& a, const typename Z::T* x, const typename Z::T* w,
              const typename Z::T* bias, typename Z::T* y, const Activation& act) {
  static_assert(Z::L == 2 * Y::L);
  if (a.n <= 0 || a.rows <= 0) return;
  const bool wide = (a.n + Y::L - 1) / Y::L % 2 == 0;
  if (a.taps == 9)
    wide ? direct<Z, 8, 3, 9>(a, x, w, bias, y, act) : direct<Y, 8, 3, 9>(a, x, w, bias, y, act);
  else if (a.S == 11)
    wide ? direct<Z, 8, 3, 11>(a, x, w, bias, y, act) : direct<Y, 8, 3, 11>(a, x, w, bias, y, act);
  else
    wide ? direct<Z, 8, 3, 0>(a, x, w, bias, y, act) : direct<Y, 8, 3, 0>(a, x, w, bias, y, act);
}

}  // namespace

void direct_tile_f32_avx512(const DirectTileArgs& a, const float* x, const float* w,
                     const float* bias, float* y, const Activation& act) {
  dispatch<Vec<float, 512>, Vec<float, 256>>(a, x, w, bias, y, act);
}
void direct_tile_f64_avx512(const DirectTileArgs& a, const double* x, const double* w,
                     const double* bias, double* y, const Activation& act) {
  dispatch<Vec<double, 512>, Vec<double, 256>>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx512
