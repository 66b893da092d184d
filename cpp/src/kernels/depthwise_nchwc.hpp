// depthwise_nchwc.hpp — the depthwise_nchwc kernels' one body (contract: table.hpp
// DepthwiseArgs, README.md "Depthwise, channels in the lanes"), a template over each SIMD
// ISA's vector operations (internal linkage, as winograd_transform.hpp); included only by
// files compiled with AVX2 flags or wider (the tiles' stores use AVX2 transposes).
//
// A block of L = NV vectors of channels; a tile is up to P output pixels of one row, for
// one vector of channels at a time: P accumulators, one weight vector per tap, every input
// vector an operand of one FMA (Zen 4 issues a 512-bit load beside each 512-bit FMA). Each
// output is one FMA chain over the taps in order from 0, the bias added after, as the
// scalar twin and direct_plane do: the same bits. The finished tile is activated in the
// lanes, kept on the stack and stored channel by channel into the NCHW output rows (8x8
// transposes for float).
#pragma once

#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/table.hpp"

namespace convcore::kernels {
namespace {

// Ops: T, V, L (lanes a vector), zero, load, fmadd, add, store (a whole vector) and an
// Epilogue(act) whose store(p, v, lanes) stores act(v).
template <class Ops, int NV, int P>
void depthwise_nchwc_tile(const DepthwiseArgs& a, const typename Ops::T* x,
                          const typename Ops::T* w, const typename Ops::T* bias,
                          const typename Ops::Epilogue& ep, typename Ops::T* tile) {
  using V = typename Ops::V;
  constexpr int L = Ops::L, LB = NV * L;
  for (int h = 0; h < NV; ++h) {
    V acc[P];
    for (int j = 0; j < P; ++j) acc[j] = Ops::zero();
    const auto* xh = x + h * L;
    for (int64_t t = 0; t < a.taps; ++t) {
      const V wv = Ops::load(w + t * LB + h * L);
      const auto* xt = xh + a.tap[t];
      for (int j = 0; j < P; ++j) acc[j] = Ops::fmadd(wv, Ops::load(xt + j * a.col_step), acc[j]);
    }
    if (bias != nullptr) {
      const V b = Ops::load(bias + h * L);
      for (int j = 0; j < P; ++j) acc[j] = Ops::add(acc[j], b);
    }
    for (int j = 0; j < P; ++j) ep.store(tile + j * LB + h * L, acc[j], L);
  }
}

// y[k*ld + j] = tile[j*LB + k] for k < kn, j < p <= 8: float tiles through 8x8 register
// transposes, double element by element. `spill`: the 8 - p elements after each row piece
// may be overwritten (later rows of the same task rewrite them), so a short tile stores
// whole vectors too; otherwise its p elements go one by one (AVX2's masked stores are
// microcoded on AMD).
template <int LB>
void store_tile(const float* tile, int p, int64_t kn, float* y, int64_t ld, bool spill) {
  for (int64_t k0 = 0; k0 < kn; k0 += 8) {
    __m256 r[8];
    for (int j = 0; j < 8; ++j) r[j] = j < p ? _mm256_load_ps(tile + j * LB + k0) : _mm256_setzero_ps();
    const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
    const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
    const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
    const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
    const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    const __m256 c[8] = {_mm256_permute2f128_ps(u0, u4, 0x20), _mm256_permute2f128_ps(u1, u5, 0x20),
                         _mm256_permute2f128_ps(u2, u6, 0x20), _mm256_permute2f128_ps(u3, u7, 0x20),
                         _mm256_permute2f128_ps(u0, u4, 0x31), _mm256_permute2f128_ps(u1, u5, 0x31),
                         _mm256_permute2f128_ps(u2, u6, 0x31), _mm256_permute2f128_ps(u3, u7, 0x31)};
    const int64_t kmax = std::min<int64_t>(8, kn - k0);
    for (int64_t i = 0; i < kmax; ++i) {
      float* yk = y + (k0 + i) * ld;
      if (p == 8 || spill) {
        _mm256_storeu_ps(yk, c[i]);
      } else {
        alignas(32) float v[8];
        _mm256_store_ps(v, c[i]);
        for (int j = 0; j < p; ++j) yk[j] = v[j];
      }
    }
  }
}
template <int LB>
void store_tile(const double* tile, int p, int64_t kn, double* y, int64_t ld, bool) {
  for (int64_t k = 0; k < kn; ++k)
    for (int j = 0; j < p; ++j) y[k * ld + j] = tile[j * LB + k];
}

// The tile compiled for width p <= Q (each width keeps its accumulators in registers).
template <class Ops, int NV, int Q>
void depthwise_nchwc_width(int p, const DepthwiseArgs& a, const typename Ops::T* x,
                           const typename Ops::T* w, const typename Ops::T* bias,
                           const typename Ops::Epilogue& ep, typename Ops::T* tile) {
  if constexpr (Q >= 1) {
    if (p == Q) return depthwise_nchwc_tile<Ops, NV, Q>(a, x, w, bias, ep, tile);
    depthwise_nchwc_width<Ops, NV, Q - 1>(p, a, x, w, bias, ep, tile);
  }
}

template <class Ops, int NV, int PMAX>
void depthwise_nchwc_body(const DepthwiseArgs& a, const typename Ops::T* x,
                          const typename Ops::T* w, const typename Ops::T* bias,
                          typename Ops::T* y, const Activation& act) {
  using T = typename Ops::T;
  constexpr int LB = NV * Ops::L;
  const typename Ops::Epilogue ep(act);
  static_assert(PMAX <= 8, "store_tile transposes 8 pixels");
  alignas(64) T tile[PMAX * LB];
  for (int64_t i = 0; i < a.rows; ++i) {
    const T* xr = x + i * a.row_step;
    T* yr = y + i * a.y_rstride;
    for (int64_t j0 = 0; j0 < a.n; j0 += PMAX) {
      const int p = static_cast<int>(std::min<int64_t>(PMAX, a.n - j0));
      const T* xt = xr + j0 * a.col_step;
      depthwise_nchwc_width<Ops, NV, PMAX>(p, a, xt, w, bias, ep, tile);
      // Rows are stored in order and contiguous (y_rstride == n): a short tile's spill
      // lands in this channel's next rows of this call, written after it.
      const bool spill = a.y_rstride == a.n && (a.rows - i) * a.n - j0 >= 8;
      store_tile<LB>(tile, p, a.kn, yr + j0, a.y_kstride, spill);
    }
  }
}

}  // namespace
}  // namespace convcore::kernels
