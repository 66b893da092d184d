// table.hpp — the kernel table: one slot per operation, filled by each ISA.
//
// Drivers (cpp/src/ops) reach kernels only through `kernels()` (dispatch.hpp). Each ISA
// provides `const KernelTable& <isa>::table()`; a slot an ISA has no kernel of its own
// for holds the scalar kernel, so no slot is ever null. Adding a kernel: declare its
// signature here, add the slot, fill it in every ISA's table.cpp and name it in
// `for_each_slot` (registry.cpp) — the listing, tests and benchmarks read that.
// The contract of every signature is written in cpp/src/kernels/README.md.
#pragma once

#include <cstdint>

#include "convcore/types.hpp"

namespace convcore::kernels {

// C[m x n] (ldc) = act(bias[i] + (accumulate ? C : 0) + sum_k A[i,k] * B[k,j]) for the
// packed panels A (k x MR, a[kk*MR + i]) and B (k x NR, b[kk*NR + j]); m <= MR, n <= NR.
// bias may be null (no bias); act.kind == none skips the activation.
template <class T>
using GemmFn = void (*)(int64_t k, const T* a, const T* b, T* c, int64_t ldc, int64_t m,
                        int64_t n, bool accumulate, const T* bias, const Activation& act);

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
};
template <class T>
using DirectTileFn = void (*)(const DirectTileArgs& a, const T* x, const T* w, const T* bias,
                              T* y, const Activation& act);

template <class Fn>
struct Kernel {
  const char* name;  // e.g. "gemm_6x16_avx2"
  const char* isa;   // ISA its code needs
  Fn fn;
  int mr = 0, nr = 0;  // register tile (0: untiled)
};

struct KernelTable {
  const char* isa;
  Kernel<GemmFn<float>> gemm_f32;
  Kernel<GemmFn<double>> gemm_f64;
  Kernel<ActivateFn<float>> activate_f32;
  Kernel<ActivateFn<double>> activate_f64;
  Kernel<DirectTileFn<float>> direct_tile_f32;   // KB = 4 output channels
  Kernel<DirectTileFn<double>> direct_tile_f64;
  Kernel<DirectTileFn<float>> direct_plane_f32;  // KB = 1: depthwise, one-channel filtering
  Kernel<DirectTileFn<double>> direct_plane_f64;
};

namespace scalar {
const KernelTable& table();
}
#if defined(CONVCORE_HAVE_AVX2)
namespace avx2 {
const KernelTable& table();
}
#endif

}  // namespace convcore::kernels
