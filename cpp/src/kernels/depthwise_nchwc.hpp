// depthwise_nchwc.hpp — the depthwise_nchwc kernels' one body (contract: table.hpp
// DepthwiseArgs, README.md "Depthwise, channels in the lanes"), a template over each SIMD
// ISA's vector operations (internal linkage, as winograd_transform.hpp).
//
// A block of L = NV vectors of channels; a tile is up to P output pixels of one row, for
// one vector of channels at a time: P accumulators, one weight vector per tap, every input
// vector an operand of one FMA (Zen 4 issues a 512-bit load beside each 512-bit FMA). Each
// output is one FMA chain over the taps in order from 0, the bias added after, as the
// scalar twin and direct_plane do: the same bits. The finished tile is activated in the
// lanes, kept on the stack and stored channel by channel into the NCHW output rows.
#pragma once

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
  alignas(64) T tile[PMAX * LB];
  for (int64_t i = 0; i < a.rows; ++i) {
    const T* xr = x + i * a.row_step;
    T* yr = y + i * a.y_rstride;
    for (int64_t j0 = 0; j0 < a.n; j0 += PMAX) {
      const int p = static_cast<int>(std::min<int64_t>(PMAX, a.n - j0));
      const T* xt = xr + j0 * a.col_step;
      depthwise_nchwc_width<Ops, NV, PMAX>(p, a, xt, w, bias, ep, tile);
      for (int64_t k = 0; k < a.kn; ++k) {
        T* yk = yr + k * a.y_kstride + j0;
        for (int j = 0; j < p; ++j) yk[j] = tile[j * LB + k];
      }
    }
  }
}

}  // namespace
}  // namespace convcore::kernels
