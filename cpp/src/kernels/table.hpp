// table.hpp — the kernel tables: one slot per operation, typed by dtype, filled per ISA.
//
// Drivers (cpp/src/ops) reach kernels only through a `KernelTable<T>` (float or double):
// `kernels<T>()` (dispatch.hpp) is the active ISA's, and a plan (ops/algorithm.hpp) keeps
// the one it was made with, so switching ISA (CONVCORE_ISA, set_isa) never changes the
// kernels under a live operator. The slots are listed once, in CONVCORE_KERNEL_SLOTS below:
// the struct members, the listing (`_core.kernels()`), the completeness check and the
// tests all come from that list.
//
// Each ISA's tables are the next narrower ISA's plus its own overrides (BLIS's context
// = reference + overrides): scalar fills every slot, avx2 = scalar + its kernels, avx512 =
// avx2 + its kernels (`<isa>/table.hpp`), so a slot is never null and a kernel is named
// in one place. A kernel's symbol is its listed name (`avx512::gemm_14x32_avx512`), its
// file `<family>_<isa>.cpp`. Adding a kernel: its signature here (if new), its slot in
// CONVCORE_KERNEL_SLOTS, the kernel in every ISA that has one (scalar always: the twin),
// one line in that ISA's table.hpp. The contract of every signature is written in
// cpp/src/kernels/README.md.
#pragma once

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore::kernels {

// What a GEMM micro-kernel does with its tile after the k loop: add C (accumulate, for
// the 2nd and later KC blocks), add a bias (per row i for conv, per column j for linear;
// null: none), apply the activation (kind none: skip). Bias and activation are set only
// on the last KC block.
template <class T>
struct GemmEpilogue {
  bool accumulate = false;
  const T* bias = nullptr;       // bias[i] or bias[j] of the tile
  bool bias_per_column = false;  // true: bias[j] (linear), false: bias[i] (conv)
  Activation act{};
};

// C[m x n] (ldc) = epilogue(sum_k A[i,k] * B[k,j]) for the packed panel A (k x MR,
// a[kk*MR + i]) and the panel B (k x NR, b[kk*ldb + j]: ldb == NR when packed, larger
// when B is read in place); m <= MR, n <= NR. All NR columns of B are read (callers pad
// partial panels); only m x n of C are touched.
template <class T>
using GemmFn = void (*)(int64_t k, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc,
                        int64_t m, int64_t n, const GemmEpilogue<T>& ep);

// One B panel of the GEMM from a row-major matrix whose rows are B's columns (linear's
// weight W = B^T): out[kk*NR + i] = src[i*ld + kk] for i < rows, kk < kc; the panel's
// columns i in [rows, NR) are zero (NR = the slot's nr; rows <= NR). prefetch > 0 also
// prefetches each row's values that many further on (the next KC piece). The same
// contract packs A's panels from rows of A (slot pack_mr, width the GEMM's MR).
template <class T>
using PackFn = void (*)(const T* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                        T* out);

// y[i] = act(x[i]) for i < n (x == y allowed).
template <class T>
using ActivateFn = void (*)(const T* x, T* y, int64_t n, const Activation& act);

// Direct convolution, width-vectorised NCHW (README.md "direct"): kn <= KB output channels
// (KB = the slot's mr) x `rows` output rows x n output columns, from a packed input band:
// y[k*y_kstride + i*y_rstride + j] = act(bias[k] + sum_{c<C, t<taps}
//     w[(c*taps + t)*KB + k] * x[c*x_cstride + i*x_rstride + tap[t] + j])
// for k < kn, i < rows, j < n. bias may be null (0). The band must be readable for
// j < round_up(n, 8); weights of channels kn..KB-1 in the panel are zero. Kernels may
// share input loads between output rows when tap[r*S + s] == tap[s] + r*x_rstride.
struct DirectTileArgs {
  int64_t C, taps, S;  // taps = R*S, tap t = r*S + s
  const int64_t* tap;  // offset of each tap from an output pixel's origin, in elements
  int64_t x_cstride, x_rstride;
  int64_t rows, n, kn;
  int64_t y_kstride, y_rstride;
  // In-place reading (direct_plane kernels whose slot sets `in_place`; in_w > 0): no band,
  // x is the unpadded input (channel c at x + c*x_cstride, rows in_w apart). Output (i, j),
  // tap t reads row row0 + i*row_step + tap_row[t], column j + tap_col[t]; rows and columns
  // outside [0, in_h) x [0, in_w) read as zero (the padding). tap and x_rstride are unused.
  int64_t in_h = 0, in_w = 0, row0 = 0, row_step = 0;
  const int64_t* tap_row = nullptr;
  const int64_t* tap_col = nullptr;
  // direct_nchwc only: output column j reads x[... + tap[t] + j*col_step]. 1 for a band;
  // the stride when the driver passes unpadded input in place (tap and x_rstride then
  // address the NCHW planes). The other direct kernels require 1.
  int64_t col_step = 1;
};
template <class T>
using DirectTileFn = void (*)(const DirectTileArgs& a, const T* x, const T* w, const T* bias,
                              T* y, const Activation& act);

// Depthwise convolution with the channels in the vector lanes (ops/depthwise.cpp; one
// input and one output channel per group): L = the slot's mr channels of one image, the
// input packed by the driver as pixels of L lanes (padding made explicit, zero lanes past
// the last channel). For k < kn <= L, i < rows, j < n:
// y[k*y_kstride + i*y_rstride + j] = act(bias[k] + sum_{t<taps}
//     w[t*L + k] * x[i*row_step + j*col_step + tap[t] + k])
// one FMA per tap in order t = r*S + s, from 0, the bias added last (as direct_plane, so
// both give the same bits). bias: L values (null: none); w's lanes past kn are zero.
struct DepthwiseArgs {
  int64_t taps;
  const int64_t* tap;  // offset of each tap from an output pixel's input origin, in elements
  int64_t row_step, col_step;  // input offset of the next output row / column, in elements
  int64_t rows, n, kn;
  int64_t y_kstride, y_rstride;
};
template <class T>
using DepthwiseFn = void (*)(const DepthwiseArgs& a, const T* x, const T* w, const T* bias, T* y,
                             const Activation& act);

// Locally connected layer, one output position for a block of images: untied weights,
// so each position is its own small matrix product with a reduction of length kd:
// y[n*ysn + k*ysk] = act(bias[k*bs] + sum_{t<kd} w[k*kd + t] * x[n*kd + t])
// for k < K, n < N. w is the position's (K, C, R, S) filter bank as given (row-major,
// contiguous), x the images' gathered patches (n, c, r, s); bias may be null.
struct LocallyConnectedArgs {
  int64_t kd, K, N;
  int64_t bias_stride, y_k_stride, y_n_stride;
};
template <class T>
using LocallyConnectedFn = void (*)(const LocallyConnectedArgs& a, const T* w, const T* x,
                                    const T* bias, T* y, const Activation& act);

// The same for a block of up to 8 images read straight from padded input rows laid out
// with the images innermost (no patch gather): the reduction runs over Q = C*R rows and
// S taps, t = q*S + s,
// y[n*ysn + k*ysk] = act(bias[k*bs] + sum_{q<Q, s<S} w[k*Q*S + q*S + s] * x[q*ldq + s*lds + n])
// for k < K, n < N <= 8; each tap's 8 image lanes must be readable (lanes >= N unused).
struct LocallyConnectedRowsArgs {
  int64_t Q, S, ldq, lds, K, N;
  int64_t bias_stride, y_k_stride, y_n_stride;
};
template <class T>
using LocallyConnectedRowsFn = void (*)(const LocallyConnectedRowsArgs& a, const T* w,
                                        const T* x, const T* bias, T* y, const Activation& act);

// One output row of a 2D pooling over one plane (H x W), PyTorch semantics:
// y[j] = reduce_{r<R, s<S} x[ih(r), j*sw + s*dw - pl] for j < wo, ih(r) = oh*sh + r*dh - pt,
// taps outside the input skipped (max: identity -inf; NaN propagates) or counted as 0 (avg).
// tmp: tw = (wo-1)*sw + (S-1)*dw + 1 elements of scratch (the row reduced over r, padded).
// avg: y[j] = sum / (row_count * col_count[j]), the divisors chosen by the driver.
struct PoolRowArgs {
  int64_t H, W, R, S;
  int64_t oh, wo;
  int64_t stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left;
};
template <class T>
using MaxPoolRowFn = void (*)(const PoolRowArgs& p, const T* x, T* y, T* tmp);
template <class T>
using AvgPoolRowFn = void (*)(const PoolRowArgs& p, const T* x, T* y, T* tmp, T row_count,
                              const T* col_count);

// conv2d's weight gradient by row dot products (ops/conv2d_backward.cpp, few output
// channels per group): for k < kn <= KB (the slot's mr), t < taps,
// out[k*out_ld + t] += dot(g + k*g_ld, x + off[t], n), each dot summed in L = 64/sizeof(T)
// lanes (product i in lane i % L, one FMA per product in order of i, lanes starting at 0),
// the lanes then added in order 0..L-1 to 0, that sum added to out.
template <class T>
using TapDotsFn = void (*)(const T* g, int64_t g_ld, int64_t kn, const T* x, const int64_t* off,
                           int64_t taps, int64_t n, T* out, int64_t out_ld);

// Winograd F(m x m, 3x3) transforms (m = 2 or 4, alpha = m + 2; the matrices BT, AT, G in
// winograd_transform.hpp), vectorised over n tiles of one channel side by side in a tile
// row. The input comes as a band in phases: row r, phase q, element j holds padded input
// column m*j + q of the band's row r, at band[r*row_stride + q*phase_stride + j], so tile
// j's column s is band[r*row_stride + (s % m)*phase_stride + j + s / m] (phases 0 and 1 are
// read up to j = n, the others up to n - 1). Output, for position pos = xi*alpha + nu:
//   v[pos*v_stride + j] = (BT d_j BT^T)[xi][nu],  d_j[r][s] = tile j's column s of row r,
// for j < n. Each value is one fixed sequence of multiplies and FMAs (winograd_transform.hpp),
// the same in every table: results are bitwise equal across ISAs.
struct WinogradInputArgs {
  int64_t m, n;
  int64_t row_stride, phase_stride;
  int64_t v_stride;
};
template <class T>
using WinogradInputFn = void (*)(const WinogradInputArgs& a, const T* band, T* v);

// The gather of the input band (the layout above) from one row of each of `channels`
// channels: for c < channels, j < n, q < m,
//   band[c*band_stride + q*phase_stride + j] = x[c*x_stride + j*m + q]
// (every read inside the row: the driver writes the padding's elements itself).
struct WinogradPackArgs {
  int64_t m, n, channels;
  int64_t x_stride, band_stride, phase_stride;
};
template <class T>
using WinogradPackFn = void (*)(const WinogradPackArgs& a, const T* x, T* band);

// The output transform of n tiles of one output channel: from mm[pos*m_stride + j] (the
// element-wise products summed over the channels, position pos = xi*alpha + nu),
//   out[i*row_stride + q*phase_stride + j] = act(bias + (AT M_j AT^T)[i][q])
// for i, q < m, j < n (bias: one value, null: none, then nothing is added), in the same
// phase layout as the input band (row i, output column m*j + q).
struct WinogradOutputArgs {
  int64_t m, n;
  int64_t m_stride;
  int64_t row_stride, phase_stride;
};
template <class T>
using WinogradOutputFn = void (*)(const WinogradOutputArgs& a, const T* mm, const T* bias, T* out,
                                  const Activation& act);

// The output rows from the output transform's phases (its layout above): for i < rows,
// k < cols (cols <= n*m),
//   y[i*y_stride + k] = out[i*row_stride + (k % m)*phase_stride + k / m].
struct WinogradUnpackArgs {
  int64_t m, n, rows, cols;
  int64_t row_stride, phase_stride, y_stride;
};
template <class T>
using WinogradUnpackFn = void (*)(const WinogradUnpackArgs& a, const T* out, T* y);

// The weight transform of n filters of the same shape position: filter j's tap (r, s) at
// g[(r*3 + s)*g_stride + j] (tap-major, so that the filters are the vector lanes),
//   u[pos*u_stride + j] = (G g_j G^T)[xi][nu],  pos = xi*alpha + nu,  j < n,
// in the table's dtype (G's fractions rounded to it).
struct WinogradWeightsArgs {
  int64_t m, n;
  int64_t g_stride, u_stride;
};
template <class T>
using WinogradWeightsFn = void (*)(const WinogradWeightsArgs& a, const T* g, T* u);

// The FMA-throughput probe: `steps` steps of acc = acc * m + c on MR independent chains
// of NR lanes (2*MR*NR FLOPs per step), accumulators starting at 8*chain + lane; returns
// the sum of the accumulators (chains in order, lanes in order) so none is dead code.
using PeakFmaFn = float (*)(int64_t steps, float m, float c);

template <class Fn>
struct Kernel {
  const char* name = nullptr;  // symbol and listing, e.g. "gemm_14x32_avx512"
  const char* isa = nullptr;   // ISA its code needs
  Fn fn = nullptr;
  int mr = 0, nr = 0;      // register tile (0: untiled); direct kernels: mr = KB channels
  bool in_place = false;   // direct_plane: honours DirectTileArgs' in-place reading
};

// The slots of a dtype's table, listed once: X(slot, function type). T is float or double.
#define CONVCORE_KERNEL_SLOTS(X, T)                                                     \
  X(pack_nr, PackFn<T>)               /* B panels for gemm (nr = gemm's NR) */           \
  X(pack_mr, PackFn<T>)               /* A panels for gemm (nr = gemm's MR) */           \
  X(gemm, GemmFn<T>)                  /* MR x NR GEMM micro-kernel */                    \
  X(activate, ActivateFn<T>)                                                             \
  X(direct_tile, DirectTileFn<T>)     /* KB = mr output channels (4; 8 on AVX-512) */    \
  X(direct_plane, DirectTileFn<T>)    /* KB = 1: depthwise, one-channel filtering */     \
  X(direct_nchwc, DirectTileFn<T>)    /* KB = mr channels in the lanes, nr pixels */     \
  X(depthwise_nchwc, DepthwiseFn<T>)  /* mr channels in the lanes, nr pixels a tile */  \
  X(locally_connected, LocallyConnectedFn<T>)                                            \
  X(locally_connected_rows, LocallyConnectedRowsFn<T>)                                   \
  X(max_pool_row, MaxPoolRowFn<T>)                                                       \
  X(avg_pool_row, AvgPoolRowFn<T>)                                                       \
  X(tap_dots, TapDotsFn<T>)           /* mr gradient rows x nr taps a block */           \
  X(winograd_pack, WinogradPackFn<T>)                                                    \
  X(winograd_input, WinogradInputFn<T>)   /* nr = tiles per vector */                    \
  X(winograd_output, WinogradOutputFn<T>)                                                \
  X(winograd_unpack, WinogradUnpackFn<T>)                                                \
  X(winograd_weights, WinogradWeightsFn<T>)

// One ISA's kernels for one dtype.
template <class T>
struct KernelTable {
  const char* isa = nullptr;  // the table's ISA ("avx512", "avx2", "scalar")
#define CONVCORE_SLOT_MEMBER(slot, Fn) Kernel<Fn> slot;
  CONVCORE_KERNEL_SLOTS(CONVCORE_SLOT_MEMBER, T)
#undef CONVCORE_SLOT_MEMBER

  // visit(slot name, const Kernel<Fn>&) for every slot, in the listed order.
  template <class Visit>
  void for_each_slot(Visit&& visit) const {
#define CONVCORE_SLOT_VISIT(slot, Fn) visit(#slot, slot);
    CONVCORE_KERNEL_SLOTS(CONVCORE_SLOT_VISIT, T)
#undef CONVCORE_SLOT_VISIT
  }
};

// An ISA's tables: one per dtype, and the float32 FMA-throughput probe.
struct IsaTables {
  const char* isa = nullptr;
  KernelTable<float> f32;
  KernelTable<double> f64;
  Kernel<PeakFmaFn> peak_fma;

  template <class T>
  const KernelTable<T>& of() const {
    if constexpr (sizeof(T) == sizeof(float))
      return f32;
    else
      return f64;
  }
};

// The dtype's name in listings: "f32", "f64".
template <class T>
constexpr const char* dtype_suffix() {
  return sizeof(T) == sizeof(float) ? "f32" : "f64";
}

// Throws std::logic_error when a slot of `t` is null (a table.hpp that forgot a slot).
void check_complete(const IsaTables& t);

// Each ISA's tables (its <isa>/table.cpp; built at compile time, see <isa>/table.hpp).
namespace scalar {
const IsaTables& tables();
}
#if defined(CONVCORE_HAVE_AVX2)
namespace avx2 {
const IsaTables& tables();
}
#endif
#if defined(CONVCORE_HAVE_AVX512)
namespace avx512 {
const IsaTables& tables();
}
#endif

}  // namespace convcore::kernels
