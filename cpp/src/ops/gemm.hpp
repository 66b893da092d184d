// gemm.hpp — the BLIS-style GEMM driver behind conv2d's im2col algorithm and linear.
//
// C (m x n) = epilogue(A (m x k) * B (k x n)), computed by the micro-kernel of a kernel
// table (GemmKernel: the one the plan or operator keeps; MR x NR tile) over micro-panels of
// A and B. The driver is a template over
// two panel sources, so each caller decides where panels come from:
//   A: packed once (conv weights) or packed per block into a buffer (linear's input);
//   B: packed once (linear's weights), gathered per block (im2col fused into packing),
//      or read in place (a 1x1 stride-1 convolution's input rows).
//
// Loops, outer to inner (BLIS's five loops minus the one over n, which callers split
// into tasks): k in KC blocks (B block made here), m in MC blocks (A block made here),
// n in NR panels, m in MR panels, then the micro-kernel's k loop. Partial blocks are
// handled by the kernel (m < MR, n < NR). The reduction over k is split into the same
// KC blocks whatever the caller's tiling or thread count, and the kernel's result does
// not depend on where a tile sits, so results are bitwise reproducible.
//
// Blocking for Zen 3 (32 KiB L1d, 512 KiB L2 per core, 32 MiB L3 shared), sizes in bytes
// identical for float and double:
//   KC = 256: one B micro-panel (KC x NR = 256 x 16 floats / x 8 doubles) is 16 KiB, half
//             of L1d, so it stays there while the kernel walks every A micro-panel of the
//             MC block past it; the A micro-panel (6 KiB) streams from L2 beside it.
//   MC = 144 floats / 72 doubles rows: the A block (MC x KC) is 144 KiB, a bit over a
//             quarter of L2, so it stays in L2 across all NR panels of the B block.
//   NC (conv): pixels per B block such that KC x NC is at most 256 KiB (256 pixels of
//             floats): the gathered block is written and then read while still in L2.
//             Linear's B is packed once and read panel by panel from memory: its NC is
//             the task's whole column range.
// The reduction length k is cut into equal blocks of at most KC (576 -> 2 x 288), so no
// short trailing block costs a full pass over C.
// The AVX-512 tile (14 x 32 floats, 14 x 16 doubles) keeps these blocks (KC fixes each
// output's order of accumulation, so it must not depend on the tile): its B micro-panel
// (32 KiB) no longer stays in L1d but streams from L2 beside A, which the kernel's
// prefetch 8 rows ahead covers (measured: within a few per cent of smaller panels).
// Zen 4 has the same L1d, 1 MiB of L2.
#pragma once

#include <algorithm>
#include <cstdint>

#include "checked.hpp"
#include "kernels/table.hpp"

namespace convcore::detail {

template <class T>
struct GemmKernel {
  kernels::GemmFn<T> fn;
  int64_t mr, nr;
  kernels::PackFn<T> pack;    // B panels of width nr from rows of B^T
  kernels::PackFn<T> pack_a;  // A panels of width mr from rows of A
};
// The GEMM of a kernel table (the one a plan or operator was made with).
template <class T>
GemmKernel<T> gemm_kernel(const kernels::KernelTable<T>& t) {
  return {t.gemm.fn, t.gemm.mr, t.gemm.nr, t.pack_nr.fn, t.pack_mr.fn};
}

constexpr int64_t kGemmKC = 256;
constexpr int64_t kGemmBlockBytes = 256 * 1024;  // a conv B block (KC x NC)
template <class T>
constexpr int64_t gemm_mc() {
  return 144 * 4 / static_cast<int64_t>(sizeof(T));  // A block of 144 KiB
}

// Length of the KC blocks of a reduction of length k: equal blocks of at most kGemmKC.
inline int64_t gemm_kc(int64_t k) { return ceil_div(k, ceil_div(k, kGemmKC)); }

// The micro-panels of one operand block: panel p at base + p*stride, its k rows ld apart
// (ld == width when packed). Panels from `full` on come from `edge` (a packed copy of
// the last, partial panel of an operand otherwise read in place).
template <class T>
struct Panels {
  const T* base;
  int64_t stride;
  int64_t ld;
  int64_t full = INT64_MAX;
  const T* edge = nullptr;
  int64_t edge_ld = 0;
  const T* at(int64_t p) const { return p < full ? base + p * stride : edge; }
  int64_t ld_at(int64_t p) const { return p < full ? ld : edge_ld; }
};

// Packs rows [0, rows) x columns [k0, k0 + kc) of a row-major matrix (src, ld) into A's
// MR-row panels through the kernel table's pack_mr kernel: out[p*MR*kc + kk*MR + i] =
// src[(p*MR + i)*ld + k0 + kk], rows past `rows` zero. prefetch > 0: also prefetch each
// row's values that many columns further on (the next KC block, which a later call packs:
// rows read in short pieces defeat the hardware prefetcher).
template <class T>
void pack_panels(const GemmKernel<T>& gk, const T* src, int64_t ld, int64_t rows, int64_t k0,
                 int64_t kc, T* out, int64_t prefetch = 0) {
  for (int64_t r0 = 0; r0 < rows; r0 += gk.mr, out += gk.mr * kc)
    gk.pack_a(src + r0 * ld + k0, ld, std::min(gk.mr, rows - r0), kc, prefetch, out);
}

// The same for B's panels (width NR) from B^T (linear's weight), through the kernel
// table's pack kernel: panel p of columns [p*NR, p*NR + NR) at out + p*NR*kc.
template <class T>
void pack_b_panels(const GemmKernel<T>& gk, const T* src, int64_t ld, int64_t cols,
                   int64_t k0, int64_t kc, T* out, int64_t prefetch = 0) {
  for (int64_t j0 = 0; j0 < cols; j0 += gk.nr, out += gk.nr * kc)
    gk.pack(src + j0 * ld + k0, ld, std::min(gk.nr, cols - j0), kc, prefetch, out);
}

// C[0:m, 0:nc] (ldc) = epilogue(A * B) for one task's tile.
//   a_src(i0, mc, k0, kc) -> Panels of A rows [i0, i0 + mc), k range [k0, k0 + kc);
//   b_src(k0, kc)         -> Panels of the tile's B columns [0, nc), same k range.
// bias: per row (bias[i], conv) or per column (bias[j], linear) of the tile, or null.
// accumulate: C += A * B (the first KC block adds C too: a reduction split over calls).
template <class T, class ASource, class BSource>
void gemm_tile(const GemmKernel<T>& gk, int64_t m, int64_t nc, int64_t k, ASource&& a_src,
               BSource&& b_src, T* c, int64_t ldc, const T* bias, bool bias_per_column,
               const Activation& act, bool accumulate = false) {
  const int64_t MR = gk.mr, NR = gk.nr, MC = gemm_mc<T>() / MR * MR, KC = gemm_kc(k);
  for (int64_t k0 = 0; k0 < k; k0 += KC) {
    const int64_t kc = std::min(KC, k - k0);
    const bool last = k0 + kc == k;
    const Panels<T> b = b_src(k0, kc);
    for (int64_t i0 = 0; i0 < m; i0 += MC) {
      const int64_t mc = std::min(MC, m - i0);
      const Panels<T> a = a_src(i0, mc, k0, kc);
      kernels::GemmEpilogue<T> ep;
      ep.accumulate = k0 > 0 || accumulate;
      ep.bias_per_column = bias_per_column;
      if (last) ep.act = act;
      for (int64_t j0 = 0; j0 < nc; j0 += NR) {
        const int64_t pj = j0 / NR;
        const T* bp = b.at(pj);
        const int64_t ldb = b.ld_at(pj);
        const int64_t n = std::min(NR, nc - j0);
        for (int64_t ir = 0; ir < mc; ir += MR) {
          if (last && bias != nullptr) ep.bias = bias_per_column ? bias + j0 : bias + i0 + ir;
          gk.fn(kc, a.at(ir / MR), bp, ldb, c + (i0 + ir) * ldc + j0, ldc,
                std::min(MR, mc - ir), n, ep);
        }
      }
    }
  }
}

}  // namespace convcore::detail
