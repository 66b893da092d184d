// direct_nchwc_avx512.cpp — direct convolution with the output channels in the zmm lanes
// (direct_nchwc: NCHW16c for float, NCHW8c for double), AVX-512 F/VL/BW/DQ.
//   Tile: up to 14 output pixels of one row x 2 channel blocks of one zmm = 28
//   accumulators, 2 weight loads + 14 broadcasts (folded into the FMAs as {1toN}
//   memory operands) per 28 FMAs: 31 of the 32 registers. Every FMA is a full zmm
//   whatever the row width (56 = 4 x 14 pixels), which is what a full-width AVX-512
//   machine (Zen 5, server Xeons) needs; the width-vectorised direct_tile can only use
//   zmm on rows whose ymm vectors pair up.
//   A block of at most 16 channels (kn <= L) runs one zmm block (14 accumulators).
// Contract: kernels/README.md (the band and tap offsets of direct_tile, or unpadded input
// read in place, pixels col_step apart; weight panels of KB = 2 x L channels).
// Accumulation order per output: c, then tap, one FMA each — as the scalar twin
// (scalar/direct_scalar.cpp), so results are bitwise equal across tables.
// Epilogue: bias added in the lanes (one vector per block), the tile transposed to
// channel rows through a stack buffer, and each row's activation and masked store done
// on pixel vectors by the shared epilogue (vec_avx512.hpp: the AVX2 functions per ymm half).
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics pass _mm*_undefined_*() as the merge source of unmasked
// operations (shuffles, abs, extract), which -Wmaybe-uninitialized reports; a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

constexpr int kPixels = kDirectNchwcPixels;

// r[k] = lane k of every r[q] (q = lane), a 16 x 16 (float) or 8 x 8 (double) transpose.
void transpose(__m512 r[16]) {
  __m512 t[16];
#pragma GCC unroll 8
  for (int i = 0; i < 8; ++i) {
    t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
  }
  // r[4i + j], 128-bit lane l: element 4l + j of rows 4i..4i+3
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    r[4 * i] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0x44);
    r[4 * i + 1] = _mm512_shuffle_ps(t[4 * i], t[4 * i + 2], 0xEE);
    r[4 * i + 2] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0x44);
    r[4 * i + 3] = _mm512_shuffle_ps(t[4 * i + 1], t[4 * i + 3], 0xEE);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    t[j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0x88);
    t[4 + j] = _mm512_shuffle_f32x4(r[j], r[4 + j], 0xDD);
    t[8 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0x88);
    t[12 + j] = _mm512_shuffle_f32x4(r[8 + j], r[12 + j], 0xDD);
  }
#pragma GCC unroll 4
  for (int j = 0; j < 4; ++j) {
    r[j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0x88);
    r[8 + j] = _mm512_shuffle_f32x4(t[j], t[8 + j], 0xDD);
    r[4 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0x88);
    r[12 + j] = _mm512_shuffle_f32x4(t[4 + j], t[12 + j], 0xDD);
  }
}
void transpose(__m512d r[8]) {
  __m512d t[8], u[8];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    t[2 * i] = _mm512_unpacklo_pd(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_pd(r[2 * i], r[2 * i + 1]);
  }
  // u[4i + m]: elements (0, 4), (2, 6), (1, 5), (3, 7) for m = 0..3 of rows 4i..4i+3
#pragma GCC unroll 2
  for (int i = 0; i < 2; ++i) {
    u[4 * i] = _mm512_shuffle_f64x2(t[4 * i], t[4 * i + 2], 0x88);
    u[4 * i + 1] = _mm512_shuffle_f64x2(t[4 * i], t[4 * i + 2], 0xDD);
    u[4 * i + 2] = _mm512_shuffle_f64x2(t[4 * i + 1], t[4 * i + 3], 0x88);
    u[4 * i + 3] = _mm512_shuffle_f64x2(t[4 * i + 1], t[4 * i + 3], 0xDD);
  }
  constexpr int first[4] = {0, 2, 1, 3};
#pragma GCC unroll 4
  for (int m = 0; m < 4; ++m) {
    r[first[m]] = _mm512_shuffle_f64x2(u[m], u[4 + m], 0x88);
    r[first[m] + 4] = _mm512_shuffle_f64x2(u[m], u[4 + m], 0xDD);
  }
}

template <class Tr>
typename Tr::V activate(const typename Tr::Epilogue& epi, typename Tr::V v) {
  switch (epi.kind) {
    case Activation::none: return v;
    case Activation::relu: return Tr::relu(v);
    case Activation::abs: return Tr::abs(v);
    case Activation::square: return Tr::mul(v, v);
    case Activation::leaky_relu: return Tr::leaky(v, epi.alpha);
    case Activation::sigmoid:
    case Activation::tanh: return epi.transcendental(v);
  }
  return v;
}

// Where a tile's channel chunk starts and ends: c in [c0, c1); partial sums of the
// chunks before in part[q*KB + lane] (first: none), of this one stored there unless last.
template <class T>
struct Chunk {
  int64_t c0, c1;
  bool first, last;
  T* part;
};

// P pixels (consecutive output columns of one row, x and y at the first) x NB blocks.
// bv: the blocks' bias vectors; pixels below full_to are in the row (see the epilogue).
// Pixel q reads x at q*CS (CS = 0: a.col_step, known at run time only).
template <class Tr, int NB, int P, int U, int CS>
void tile(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
          const typename Tr::V* bv, typename Tr::T* y, int64_t full_to,
          const Chunk<typename Tr::T>& ch, const typename Tr::Epilogue& epi) {
  using T = typename Tr::T;
  using V = typename Tr::V;
  constexpr int L = Tr::L, KB = 2 * L;
  V acc[P][NB];
#pragma GCC unroll 16
  for (int q = 0; q < P; ++q)
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b)
      acc[q][b] = ch.first ? Tr::zero() : Tr::load(ch.part + q * KB + b * L);
  const auto step = [&](const T* p, const T* wp) __attribute__((always_inline)) {
    V wv[NB];
#pragma GCC unroll 2
    for (int b = 0; b < NB; ++b) wv[b] = Tr::load(wp + b * L);
#pragma GCC unroll 16
    for (int q = 0; q < P; ++q) {
      const V xv = Tr::bcast(p + q * (CS > 0 ? CS : a.col_step));
#pragma GCC unroll 2
      for (int b = 0; b < NB; ++b) acc[q][b] = Tr::fmadd(wv[b], xv, acc[q][b]);
    }
  };
  for (int64_t c = ch.c0; c < ch.c1; ++c) {
    const T* xc = x + c * a.x_cstride;
    const T* wc = w + c * a.taps * KB;
    if constexpr (U > 0) {
      for (int64_t t0 = 0; t0 < a.taps; t0 += U) {
#pragma GCC unroll 16
        for (int t = 0; t < U; ++t) {
          step(xc + a.tap[t0 + t], wc + (t0 + t) * KB);
          // Keeps GCC from interleaving the taps (it runs out of registers and spills).
          __asm__ volatile("" ::: "memory");
        }
      }
    } else {
      for (int64_t t = 0; t < a.taps; ++t) step(xc + a.tap[t], wc + t * KB);
    }
  }
  if (!ch.last) {
#pragma GCC unroll 16
    for (int q = 0; q < P; ++q)
#pragma GCC unroll 2
      for (int b = 0; b < NB; ++b) Tr::store_aligned(ch.part + q * KB + b * L, acc[q][b]);
    return;
  }
  // Bias in the channel lanes, then each block transposed in registers to pixel vectors
  // (channel k's P pixels), activated and stored.
  const int64_t kn = a.kn;
#pragma GCC unroll 2
  for (int b = 0; b < NB; ++b) {
#pragma GCC unroll 16
    for (int q0 = 0; q0 < P; q0 += L) {
      V r[L];
#pragma GCC unroll 16
      for (int q = 0; q < L; ++q) r[q] = q0 + q < P ? Tr::add(acc[q0 + q][b], bv[b]) : Tr::zero();
      transpose(r);
      // Lanes past the tile that stay inside the row belong to the row's later tiles,
      // which overwrite them: whole-vector stores there (masked ones are slow on Zen 4).
      const int64_t lanes = full_to >= q0 + L ? L : (P - q0 < L ? P - q0 : L);
#pragma GCC unroll 16
      for (int k = 0; k < L; ++k) {
        if (b * L + k >= kn) break;
        Tr::store(y + (b * L + k) * a.y_kstride + q0, activate<Tr>(epi, r[k]),
                  static_cast<typename Tr::M>(lanes16(lanes)));
      }
    }
  }
}

// Tile tix of a row cut into tiles of nearly equal pixel counts <= kPixels.
template <class Tr, int NB, int U, int CS>
void tile_of_row(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
                 const typename Tr::V* bv, typename Tr::T* y, int64_t tix,
                 const Chunk<typename Tr::T>& ch, const typename Tr::Epilogue& epi) {
  const int64_t ntile = (a.n + kPixels - 1) / kPixels;
  const int64_t base = a.n / ntile, extra = a.n % ntile;
  const int64_t np = base + (tix < extra ? 1 : 0);
  const int64_t j = tix * base + (tix < extra ? tix : extra);
  const auto* xt = x + j * (CS > 0 ? CS : a.col_step);
  auto* yt = y + j;
  switch (np) {
#define CONVCORE_NCHWC_CASE(P) \
  case P: tile<Tr, NB, P, U, CS>(a, xt, w, bv, yt, a.n - j, ch, epi); break;
    CONVCORE_NCHWC_CASE(1)
    CONVCORE_NCHWC_CASE(2)
    CONVCORE_NCHWC_CASE(3)
    CONVCORE_NCHWC_CASE(4)
    CONVCORE_NCHWC_CASE(5)
    CONVCORE_NCHWC_CASE(6)
    CONVCORE_NCHWC_CASE(7)
    CONVCORE_NCHWC_CASE(8)
    CONVCORE_NCHWC_CASE(9)
    CONVCORE_NCHWC_CASE(10)
    CONVCORE_NCHWC_CASE(11)
    CONVCORE_NCHWC_CASE(12)
    CONVCORE_NCHWC_CASE(13)
    default: tile<Tr, NB, kPixels, U, CS>(a, xt, w, bv, yt, a.n - j, ch, epi); break;
#undef CONVCORE_NCHWC_CASE
  }
}

// Weights of a chunk of input channels stay in L1 while the tiles of a group run over
// it: about 16 KiB of weights a chunk (14 channels of 3x3), groups of up to kGroup tiles
// whose partial sums (kGroup x 14 x 32 floats, 14 KiB) wait on the stack between chunks.
// Without chunks each tile streamed all its weights from L2 (73 KiB per tile on the
// 64-channel 3x3 layer, 295 KiB on the 256-channel one). The order of accumulation per
// output is unchanged (c, then tap; partial sums are stored exactly).
constexpr int kGroup = 8;
constexpr int64_t kChunkWeightBytes = 16384;

template <class Tr, int U, int CS>
void direct(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
            const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  using T = typename Tr::T;
  using V = typename Tr::V;
  constexpr int L = Tr::L, KB = 2 * L;
  if (a.n <= 0 || a.rows <= 0 || a.kn <= 0) return;
  const typename Tr::Epilogue epi(act);
  // The blocks' bias lanes; channels past kn read nothing (masked) and are never stored.
  V bv[2];
  for (int b = 0; b < 2; ++b) {
    const int64_t lanes = a.kn - b * L;
    bv[b] = bias == nullptr || lanes <= 0
                ? Tr::zero()
                : Tr::load(static_cast<typename Tr::M>(lanes16(lanes < L ? lanes : L)),
                           bias + b * L);
  }
  const int64_t per_channel = a.taps * KB * static_cast<int64_t>(sizeof(T));
  const int64_t cc = per_channel >= kChunkWeightBytes ? 1 : kChunkWeightBytes / per_channel;
  const int64_t ntile = (a.n + kPixels - 1) / kPixels, tiles = a.rows * ntile;
  alignas(64) T part[kGroup][kPixels * KB];
  for (int64_t g0 = 0; g0 < tiles; g0 += kGroup) {
    const int64_t g1 = g0 + kGroup < tiles ? g0 + kGroup : tiles;
    for (int64_t c0 = 0; c0 < a.C; c0 += cc) {
      const int64_t c1 = c0 + cc < a.C ? c0 + cc : a.C;
      for (int64_t q = g0; q < g1; ++q) {
        const int64_t i = q / ntile, tix = q % ntile;
        const Chunk<T> ch{c0, c1, c0 == 0, c1 == a.C, part[q - g0]};
        const auto* xr = x + i * a.x_rstride;
        auto* yr = y + i * a.y_rstride;
        if (a.kn > L)
          tile_of_row<Tr, 2, U, CS>(a, xr, w, bv, yr, tix, ch, epi);
        else
          tile_of_row<Tr, 1, U, CS>(a, xr, w, bv, yr, tix, ch, epi);
      }
    }
  }
}

// The taps of a 3x3 kernel, or of an 11-wide row (AlexNet's first layer), unrolled: each
// broadcast instruction then strides by one channel or tap row, which the hardware
// prefetcher follows (as direct_tile_avx512.cpp). Pixels one apart (a band) or, read in
// place, AlexNet's stride 4 as constants (the broadcasts' addresses are then
// displacements); other strides at run time.
template <class Tr>
void dispatch(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
              const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  if (a.col_step == 1) {
    if (a.taps == 9)
      direct<Tr, 9, 1>(a, x, w, bias, y, act);
    else if (a.S == 11)
      direct<Tr, 11, 1>(a, x, w, bias, y, act);
    else
      direct<Tr, 0, 1>(a, x, w, bias, y, act);
  } else if (a.col_step == 4 && a.S == 11) {
    direct<Tr, 11, 4>(a, x, w, bias, y, act);
  } else {
    direct<Tr, 0, 0>(a, x, w, bias, y, act);
  }
}

}  // namespace

void direct_nchwc_f32_avx512(const DirectTileArgs& a, const float* x, const float* w,
                             const float* bias, float* y, const Activation& act) {
  dispatch<Vec<float, 512>>(a, x, w, bias, y, act);
}
void direct_nchwc_f64_avx512(const DirectTileArgs& a, const double* x, const double* w,
                             const double* bias, double* y, const Activation& act) {
  dispatch<Vec<double, 512>>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx512
