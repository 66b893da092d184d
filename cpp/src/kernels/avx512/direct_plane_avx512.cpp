// direct_plane_avx512.cpp — direct_plane (KB = 1: depthwise convolution, one-channel
// filtering), AVX-512 F/VL/BW/DQ, float (16 lanes) and double (8 lanes), reading the
// unpadded NCHW plane in place (DirectTileArgs::in_w > 0; the driver does so for
// stride_w == 1), so no band is copied.
//   3x3 taps, stride_h == dilation_h, dilation_w == 1: 4 rows x up to 4 vectors (16 zmm
//   accumulators) with the 9 weights held in registers (9 more). Each input row is
//   loaded once, as 5 vectors at the leftmost tap, for the 3 output rows that read it;
//   taps 1 and 2 are those vectors shifted by valignd. AVX2's 16 registers cannot hold
//   the weights beside the accumulators (it re-broadcasts them), and three unaligned
//   64-byte loads per vector split cache lines: both were the bottleneck.
//   5x5 and 7x7 taps, same geometry: the same row reuse, weights broadcast at each use.
//   Other taps: 4 rows x up to 4 vectors (narrow rows) or 2 rows x up to 8, a single
//   last row up to 8; one weight broadcast and one load per FMA.
// Padding columns are lanes masked off the loads (masked loads neither fault nor read;
// the address of such a load may lie before the plane), padding rows read a zero row;
// tiles that read no padding use plain loads. Masked-off lanes load 0 and still take
// their FMA, so each output is accumulated exactly as in the scalar twin (c, then
// t = r*S + s, one FMA each, from 0): results are bitwise equal to it before
// sigmoid/tanh (0 * inf stays NaN at the border). The last vector of a row is stored
// through a lane mask. A packed band (stride_w > 1) goes to the AVX2 kernel.
// Epilogue: bias, then relu/abs/square/leaky_relu in zmm; sigmoid/tanh apply the AVX2
// ymm functions (avx2/vec_avx2.hpp, internal linkage) to each half, so their accuracy
// is AVX2's.
#include <immintrin.h>

// GCC 12's AVX-512 intrinsics pass _mm*_undefined_*() as the merge source of unmasked
// operations (max, abs, extract), which -Wmaybe-uninitialized reports; a false positive.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"

#include <algorithm>
#include <cstdint>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

// Lanes lo <= l < hi of an L-lane vector, as a mask.
template <int L>
inline uint32_t lane_range(int64_t lo, int64_t hi) {
  lo = std::max<int64_t>(lo, 0);
  hi = std::min<int64_t>(hi, L);
  return hi > lo ? ((uint32_t(1) << hi) - 1) ^ ((uint32_t(1) << lo) - 1) : 0;
}

// A row of zeros, read in place of padding rows by a tile of up to 4 vectors (+1).
template <class T>
alignas(64) constexpr T kZeroRow[5 * 64 / sizeof(T)] = {};

// The plane read in place: rows and columns checked against the image, lane masks for
// the padding columns (DirectTileArgs, in-place reading).
struct Source {
  const DirectTileArgs& a;
  int64_t col_min, col_max, row_min, row_max;  // extreme tap columns and rows
  explicit Source(const DirectTileArgs& args)
      : a(args),
        col_min(*std::min_element(a.tap_col, a.tap_col + a.taps)),
        col_max(*std::max_element(a.tap_col, a.tap_col + a.taps)),
        row_min(*std::min_element(a.tap_row, a.tap_row + a.taps)),
        row_max(*std::max_element(a.tap_row, a.tap_row + a.taps)) {}
  // Offset from a channel's origin of output row i's input for tap t at column 0; false
  // when that input row is padding (the offset is then 0: tile_any loads it under an
  // empty mask, the row-reuse tiles read a zero row instead).
  bool offset(int64_t i, int64_t t, int64_t& off) const {
    const int64_t ih = a.row0 + i * a.row_step + a.tap_row[t];
    const bool inside = ih >= 0 && ih < a.in_h;
    off = inside ? ih * a.in_w + a.tap_col[t] : 0;
    return inside;
  }
  // Lanes of the vector at output column j that tap t reads from inside the row.
  template <int L>
  uint32_t lanes(int64_t j, int64_t t) const {
    const int64_t col = j + a.tap_col[t];
    return lane_range<L>(-col, a.in_w - col);
  }
  // Row reuse: lanes of the vector loaded at output column j's leftmost tap (tap 0).
  template <int L>
  uint32_t lanes_row(int64_t j) const {
    return lanes<L>(j, 0);
  }
  // Row reuse: true when vectors 1 .. nv-2 of the tile at column j0 need no mask.
  template <int L>
  bool middle_inside(int64_t j0, int64_t nv) const {
    for (int64_t v = 1; v + 1 < nv; ++v)
      if (lanes_row<L>(j0 + v * L) != lane_range<L>(0, L)) return false;
    return true;
  }
  // True when no load of the tile (output rows [i0, i1), columns [j0, j1)) needs a mask.
  bool plain(int64_t i0, int64_t i1, int64_t j0, int64_t j1) const {
    return a.row0 + i0 * a.row_step + row_min >= 0 &&
           a.row0 + (i1 - 1) * a.row_step + row_max < a.in_h && j0 + col_min >= 0 &&
           j1 + col_max <= a.in_w;
  }
};

// Bias, activation and the store of a tile's accumulators: RB rows x NV vectors at y
// (row stride y_rstride); the last vector of each row stores `last` lanes. Inlined, with
// the activation chosen once per tile, so the accumulators stay in registers.
template <class Tr, int RB, int NV>
[[gnu::always_inline]] inline void store_tile(const DirectTileArgs& a,
                                              typename Tr::V (&acc)[RB][NV],
                                              typename Tr::V bias, typename Tr::T* y,
                                              typename Tr::M last,
                                              const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  auto each = [&](auto act) {
#pragma GCC unroll 8
    for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v)
        Tr::store(y + r * a.y_rstride + v * Tr::L, act(Tr::add(acc[r][v], bias)),
                  v == NV - 1 ? last : typename Tr::M(~0u));
  };
  switch (epi.kind) {
    case Activation::none: each([](V v) { return v; }); break;
    case Activation::relu: each([](V v) { return Tr::relu(v); }); break;
    case Activation::abs: each([](V v) { return Tr::abs(v); }); break;
    case Activation::square: each([](V v) { return Tr::mul(v, v); }); break;
    case Activation::leaky_relu: each([&](V v) { return Tr::leaky(v, epi.alpha); }); break;
    case Activation::sigmoid:
    case Activation::tanh: each([&](V v) { return epi.transcendental(v); }); break;
  }
}

// 3x3 taps, tap rows one output row apart, tap columns consecutive: RB rows x NV
// vectors from output (i0, j0). Output row i, tap row r reads input row u = i + r: each
// input row is loaded once and feeds every output row that reads it. A row is loaded as
// NV + 1 vectors at the leftmost tap's column; taps s = 1, 2 are those vectors shifted
// by s lanes (valignd), not loads: 64-byte loads at unaligned addresses split cache
// lines, and three of them per vector made the loads the bottleneck. Per output the
// order is still r, then s (as the scalar twin). Loads: MASKS == 0, plain (the tile
// reads no padding column); 1, masks on the first and last vectors only (the middle ones
// lie inside the row); 2, masks on all. The 2 lanes past the tile are always masked.
template <class Tr, int RB, int NV, int MASKS>
void tile3x3(const Source& src, const typename Tr::T* x, const typename Tr::T* w,
             typename Tr::V bias, typename Tr::T* y, int64_t i0, int64_t j0,
             typename Tr::M last, const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  using M = typename Tr::M;
  const DirectTileArgs& a = src.a;
  // Input row u's offset at the tile's first column (leftmost tap) and whether it lies
  // in the image (a padding row reads a zero row instead: no row masks, so the column
  // masks fit the mask registers); the lanes of each loaded vector that the input has.
  int64_t row[RB + 2];
  bool inside[RB + 2];
  M cmask[NV + 1];
#pragma GCC unroll 8
  for (int u = 0; u < RB + 2; ++u) {
    inside[u] = src.offset(i0 + u, 0, row[u]);
    row[u] += j0;
  }
  // masked(v): vector v is loaded through cmask[v]
  auto masked = [](int v) { return v == NV || MASKS == 2 || (MASKS == 1 && (v == 0 || v == NV - 1)); };
#pragma GCC unroll 8
  for (int v = 0; v < NV; ++v)
    if (masked(v)) cmask[v] = M(src.lanes_row<Tr::L>(j0 + v * Tr::L));
  // The vector past the tile supplies the shifted taps' last 2 lanes only.
  cmask[NV] = M(3u & (MASKS == 0 ? 3u : src.lanes_row<Tr::L>(j0 + NV * Tr::L)));
  V acc[RB][NV];
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = Tr::zero();
  for (int64_t c = 0; c < a.C; ++c) {
    const auto* xc = x + c * a.x_cstride;
    V wv[9];
#pragma GCC unroll 9
    for (int t = 0; t < 9; ++t) wv[t] = Tr::set1(w[c * 9 + t]);
#pragma GCC unroll 8
    for (int u = 0; u < RB + 2; ++u) {
      const auto* p = inside[u] ? xc + row[u] : kZeroRow<typename Tr::T>;
      V cur = masked(0) ? Tr::load(cmask[0], p) : Tr::load(p);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        const V next = masked(v + 1) ? Tr::load(cmask[v + 1], p + (v + 1) * Tr::L)
                                     : Tr::load(p + (v + 1) * Tr::L);
        const V xs[3] = {cur, Tr::template shift<1>(next, cur), Tr::template shift<2>(next, cur)};
#pragma GCC unroll 3
        for (int s = 0; s < 3; ++s)
#pragma GCC unroll 8
          for (int i = 0; i < RB; ++i) {
            const int r = u - i;
            if (r >= 0 && r <= 2) acc[i][v] = Tr::fmadd(wv[r * 3 + s], xs[s], acc[i][v]);
          }
        cur = next;
      }
    }
  }
  store_tile<Tr, RB, NV>(a, acc, bias, y, last, epi);
}

// Vector pair (hi:lo) shifted down by s lanes, s known once the caller's loop unrolls.
template <class Tr>
[[gnu::always_inline]] inline typename Tr::V shift_by(int s, typename Tr::V hi,
                                                      typename Tr::V lo) {
  switch (s) {
    case 1: return Tr::template shift<1>(hi, lo);
    case 2: return Tr::template shift<2>(hi, lo);
    case 3: return Tr::template shift<3>(hi, lo);
    case 4: return Tr::template shift<4>(hi, lo);
    case 5: return Tr::template shift<5>(hi, lo);
    case 6: return Tr::template shift<6>(hi, lo);
    default: return lo;
  }
}

// S x S taps (S = 5, 7), rows one output row apart, columns consecutive: tile3x3's
// row reuse and shifted loads, with the S*S weights broadcast at each use (they do not
// fit the registers beside the accumulators). Output row i reads input rows i .. i+S-1.
// Out of line: inlined into the row loop it ran 40% slower (5x5 depthwise, GCC 12).
template <class Tr, int S, int RB, int NV, bool PLAIN>
[[gnu::noinline]] void tile_square(const Source& src, const typename Tr::T* x,
                                   const typename Tr::T* w, typename Tr::V bias,
                                   typename Tr::T* y, int64_t i0, int64_t j0,
                                   typename Tr::M last, const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  using M = typename Tr::M;
  const DirectTileArgs& a = src.a;
  int64_t row[RB + S - 1];
  bool inside[RB + S - 1];
  M cmask[NV + 1];
#pragma GCC unroll 16
  for (int u = 0; u < RB + S - 1; ++u) {
    inside[u] = src.offset(i0 + u, 0, row[u]);
    row[u] += j0;
  }
#pragma GCC unroll 8
  for (int v = 0; v <= NV; ++v)
    cmask[v] = M(PLAIN ? ~0u : src.lanes_row<Tr::L>(j0 + v * Tr::L));
  // The vector past the tile supplies the shifted taps' last S-1 lanes only.
  cmask[NV] = M(cmask[NV] & ((1u << (S - 1)) - 1));
  V acc[RB][NV];
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = Tr::zero();
  for (int64_t c = 0; c < a.C; ++c) {
    const auto* xc = x + c * a.x_cstride;
    const auto* wc = w + c * S * S;
#pragma GCC unroll 16
    for (int u = 0; u < RB + S - 1; ++u) {
      const auto* p = inside[u] ? xc + row[u] : kZeroRow<typename Tr::T>;
      V cur = PLAIN ? Tr::load(p) : Tr::load(cmask[0], p);
#pragma GCC unroll 8
      for (int v = 0; v < NV; ++v) {
        const V next = PLAIN && v + 1 < NV ? Tr::load(p + (v + 1) * Tr::L)
                                           : Tr::load(cmask[v + 1], p + (v + 1) * Tr::L);
#pragma GCC unroll 8
        for (int s = 0; s < S; ++s) {
          const V xs = shift_by<Tr>(s, next, cur);
#pragma GCC unroll 8
          for (int i = 0; i < RB; ++i) {
            const int r = u - i;
            if (r >= 0 && r < S) acc[i][v] = Tr::fmadd(Tr::set1(wc[r * S + s]), xs, acc[i][v]);
          }
        }
        cur = next;
        // Keeps GCC from hoisting all S*S weight broadcasts out of the loop, which runs
        // out of registers and spills the accumulators.
        __asm__ volatile("" ::: "memory");
      }
    }
  }
  store_tile<Tr, RB, NV>(a, acc, bias, y, last, epi);
}

// Any taps: RB rows x NV vectors from output (i0, j0), one weight broadcast per tap.
// The per-tap address and mask arithmetic is shared by the tile's RB*NV FMAs.
template <class Tr, int RB, int NV, bool PLAIN>
void tile_any(const Source& src, const typename Tr::T* x, const typename Tr::T* w,
              typename Tr::V bias, typename Tr::T* y, int64_t i0, int64_t j0,
              typename Tr::M last, const typename Tr::Epilogue& epi) {
  using V = typename Tr::V;
  using M = typename Tr::M;
  const DirectTileArgs& a = src.a;
  // Output row r's first input row (row0 + i*row_step), which each tap's row offset
  // moves, and its offset at the tile's first column.
  int64_t base[RB], first[RB];
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r) {
    first[r] = a.row0 + (i0 + r) * a.row_step;
    base[r] = first[r] * a.in_w + j0;
  }
  V acc[RB][NV];
#pragma GCC unroll 8
  for (int r = 0; r < RB; ++r)
#pragma GCC unroll 8
    for (int v = 0; v < NV; ++v) acc[r][v] = Tr::zero();
  for (int64_t c = 0; c < a.C; ++c) {
    const auto* xc = x + c * a.x_cstride;
    for (int64_t t = 0; t < a.taps; ++t) {
      const V b = Tr::set1(w[c * a.taps + t]);
      const int64_t off = a.tap_row[t] * a.in_w + a.tap_col[t];
      M cmask[NV];
      if constexpr (!PLAIN) {
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) cmask[v] = M(src.lanes<Tr::L>(j0 + v * Tr::L, t));
      }
#pragma GCC unroll 8
      for (int r = 0; r < RB; ++r) {
        // a padding row: every lane masked off (and an in-range address)
        bool inside = true;
        if (!PLAIN) {
          const int64_t ih = first[r] + a.tap_row[t];
          inside = ih >= 0 && ih < a.in_h;
        }
        const auto* p = xc + (inside ? base[r] + off : 0);
#pragma GCC unroll 8
        for (int v = 0; v < NV; ++v) {
          const V xv = PLAIN ? Tr::load(p + v * Tr::L)
                             : Tr::load(inside ? cmask[v] : M(0), p + v * Tr::L);
          acc[r][v] = Tr::fmadd(b, xv, acc[r][v]);
        }
      }
    }
  }
  store_tile<Tr, RB, NV>(a, acc, bias, y, last, epi);
}

// RB output rows from row i0, cut into tiles of nearly equal vector counts <= NVMAX;
// each tile with no more load masks than the padding it reads needs.
template <class Tr, int RB, int NVMAX, int REUSE>
void rows(const Source& src, const typename Tr::T* x, const typename Tr::T* w,
          typename Tr::V bias, typename Tr::T* y, int64_t i0,
          const typename Tr::Epilogue& epi) {
  const DirectTileArgs& a = src.a;
  const int64_t nvec = (a.n + Tr::L - 1) / Tr::L;
  const int64_t ntile = (nvec + NVMAX - 1) / NVMAX;
  const int64_t base = nvec / ntile, extra = nvec % ntile;
  auto* yr = y + i0 * a.y_rstride;
  int64_t v0 = 0;
  for (int64_t tix = 0; tix < ntile; ++tix) {
    const int64_t nv = base + (tix < extra ? 1 : 0);
    const int64_t j0 = v0 * Tr::L, j1 = (v0 + nv) * Tr::L;
    const auto last = typename Tr::M(lane_range<Tr::L>(0, a.n - (j1 - Tr::L)));
    const bool plain = src.plain(i0, i0 + RB, j0, j1);
    switch (nv) {
#define CONVCORE_TILE(N)                                                                 \
  case N:                                                                                \
    if constexpr (N <= NVMAX) {                                                          \
      if constexpr (REUSE == 5 || REUSE == 7) {                                          \
        if (plain)                                                                       \
          tile_square<Tr, REUSE, RB, N, true>(src, x, w, bias, yr + j0, i0, j0, last, epi); \
        else                                                                             \
          tile_square<Tr, REUSE, RB, N, false>(src, x, w, bias, yr + j0, i0, j0, last, epi); \
      } else if constexpr (REUSE == 3) {                                                 \
        if (plain)                                                                       \
          tile3x3<Tr, RB, N, 0>(src, x, w, bias, yr + j0, i0, j0, last, epi);            \
        else if (src.middle_inside<Tr::L>(j0, N))                                        \
          tile3x3<Tr, RB, N, 1>(src, x, w, bias, yr + j0, i0, j0, last, epi);            \
        else                                                                             \
          tile3x3<Tr, RB, N, 2>(src, x, w, bias, yr + j0, i0, j0, last, epi);            \
      } else {                                                                           \
        if (plain)                                                                       \
          tile_any<Tr, RB, N, true>(src, x, w, bias, yr + j0, i0, j0, last, epi);        \
        else                                                                             \
          tile_any<Tr, RB, N, false>(src, x, w, bias, yr + j0, i0, j0, last, epi);       \
      }                                                                                  \
    }                                                                                    \
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

// S x S taps (S = 3, 5, 7) whose rows are one output-row stride apart (stride_h ==
// dilation_h) and whose columns are consecutive (dilation_w == 1): returns S, else 0.
int64_t row_reuse(const DirectTileArgs& a) {
  const int64_t S = a.S;
  if ((S != 3 && S != 5 && S != 7) || a.taps != S * S) return 0;
  for (int64_t t = 0; t < a.taps; ++t)
    if (a.tap_col[t] != a.tap_col[0] + t % S ||
        a.tap_row[t] != a.tap_row[0] + (t / S) * a.row_step)
      return 0;
  return S;
}

template <class Tr>
void plane(const DirectTileArgs& a, const typename Tr::T* x, const typename Tr::T* w,
           const typename Tr::T* bias, typename Tr::T* y, const Activation& act) {
  if (a.n <= 0 || a.rows <= 0 || a.kn <= 0) return;
  // A packed band (the driver sends one for stride_w > 1, whose taps read 2 phases): one
  // unaligned load per FMA either way, and AVX2's tiles ran it 8% faster than zmm ones
  // (3x3 stride 2 depthwise).
  if (a.in_w == 0) {
    if constexpr (Tr::L == 16)
      avx2::direct_plane_f32_avx2(a, x, w, bias, y, act);
    else
      avx2::direct_plane_f64_avx2(a, x, w, bias, y, act);
    return;
  }
  const int64_t reuse = row_reuse(a);
  const typename Tr::Epilogue epi(act);
  const Source src(a);
  const auto bv = Tr::set1(bias != nullptr ? bias[0] : typename Tr::T(0));
  int64_t i = 0;
  switch (reuse) {
    case 3:
      for (; i + 4 <= a.rows; i += 4) rows<Tr, 4, 4, 3>(src, x, w, bv, y, i, epi);
      break;
    case 5:
      for (; i + 4 <= a.rows; i += 4) rows<Tr, 4, 4, 5>(src, x, w, bv, y, i, epi);
      break;
    case 7:
      for (; i + 4 <= a.rows; i += 4) rows<Tr, 4, 4, 7>(src, x, w, bv, y, i, epi);
      break;
    default: break;
  }
  // Other taps: 16 accumulators a tile, from 4 rows when rows are narrow.
  if ((a.n + Tr::L - 1) / Tr::L <= 4)
    for (; i + 4 <= a.rows; i += 4) rows<Tr, 4, 4, 0>(src, x, w, bv, y, i, epi);
  for (; i + 2 <= a.rows; i += 2) rows<Tr, 2, 8, 0>(src, x, w, bv, y, i, epi);
  for (; i < a.rows; ++i) rows<Tr, 1, 8, 0>(src, x, w, bv, y, i, epi);
}

}  // namespace

void direct_plane_f32_avx512(const DirectTileArgs& a, const float* x, const float* w,
                      const float* bias, float* y, const Activation& act) {
  plane<Vec<float, 512>>(a, x, w, bias, y, act);
}
void direct_plane_f64_avx512(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act) {
  plane<Vec<double, 512>>(a, x, w, bias, y, act);
}

}  // namespace convcore::kernels::avx512
