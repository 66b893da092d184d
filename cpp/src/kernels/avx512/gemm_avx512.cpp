// gemm_avx512.cpp — GEMM micro-kernels, AVX-512 (contract: kernels/table.hpp, GemmFn).
//   gemm_14x32_avx512 (float):  14 rows x 32 columns = 28 zmm accumulators, 2 B vectors,
//                               1 broadcast: 31 of the 32 registers; per k step 2 loads
//                               of B, 14 broadcasts of A (one load each), 28 FMAs.
//   gemm_14x16_avx512 (double): the same register shape on 8-double vectors.
// Why this tile: avx512.hpp (kGemmMrF32...). Partial tiles run a k loop compiled for
// exactly their rows and column vectors (no FMA on rows past m; at most half a vector of
// columns, alone or after whole vectors, runs on 256-bit vectors, which on two-pipe
// 256-bit FMA hardware costs half a zmm), then one epilogue stores through lane masks (masked loads and stores never touch
// memory outside the mask). A is a packed panel (a[kk*MR + i]); B is a packed panel
// (ldb == NR) or read in place (ldb > NR): the kernel prefetches B 8 rows ahead and the
// next panel's line of this row (B read in place: nothing else brings it in early), and
// the C tile a few steps before the end of the k loop. Every output is one FMA chain over
// k in order, so the results are bitwise those of the AVX2 kernels whatever the tile.
// The epilogue applies activations on the two 256-bit halves through the AVX2 vector
// math (vec_avx2.hpp: internal linkage, so including it here is ODR-safe), hence the
// same values as the AVX2 kernels, sigmoid and tanh included.
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <utility>

#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {

template <class T>
using Z = typename Vec<T, 512>::V;

// The k loop of an R x NV-vector tile, acc[i][v] = sum_kk a[kk*mr + i] * b[kk*ldb + v*L ..],
// then C added (ep.accumulate) and the bias, in registers; without an activation the
// tile is stored to C (n columns, lane masks), else to out[i*NV + v] (zmm slots, a ymm
// accumulator in the low half) for `activate_store`. Keeping the common epilogue here
// matters: a tile stored to the stack and loaded straight back stalls on the 512-bit
// store-to-load forwarding, which cost a tenth of a KC block's time.
template <class T>
using KLoop = void (*)(int64_t k, const T* a, int64_t mr, const T* b, int64_t ldb, T* c,
                       int64_t ldc, int64_t n, const GemmEpilogue<T>& ep, Z<T>* out);

// How many k steps before the end the C tile is prefetched: a few hundred cycles, enough
// for a line from memory, short enough that the k loop's own traffic does not evict it
// (C's rows are often 4 KiB multiples apart, all in one L1 set).
constexpr int64_t kCPrefetchSteps = 24;

template <class T, int W, int R, int NV>
void kloop(int64_t k, const T* a, int64_t mr, const T* b, int64_t ldb, T* c, int64_t ldc,
           int64_t n, const GemmEpilogue<T>& ep, Z<T>* out) {
  using O = Vec<T, W>;
  using V = typename O::V;
  constexpr int L = O::L;
  constexpr int line = 64 / sizeof(T);
  V acc[R][NV];
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) acc[i][v] = O::zero();
  const int64_t pf = 8 * ldb;
  auto steps = [&](int64_t count) {
#pragma GCC unroll 2
    for (int64_t kk = 0; kk < count; ++kk) {
      V bv[NV];
#pragma GCC unroll 4
      for (int v = 0; v < NV; ++v) bv[v] = O::load(b + v * L);
#pragma GCC unroll 4
      for (int l = 0; l < (NV * L + line - 1) / line; ++l)
        _mm_prefetch(reinterpret_cast<const char*>(b + pf + l * line), _MM_HINT_T0);
      _mm_prefetch(reinterpret_cast<const char*>(b + NV * L), _MM_HINT_T0);
#pragma GCC unroll 32
      for (int i = 0; i < R; ++i) {
        const V ai = O::bcast(a + i);
#pragma GCC unroll 4
        for (int v = 0; v < NV; ++v) acc[i][v] = O::fmadd(ai, bv[v], acc[i][v]);
      }
      a += mr;
      b += ldb;
    }
  };
  const int64_t tail = std::min(k, kCPrefetchSteps);
  steps(k - tail);
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int l = 0; l < (NV * L + line - 1) / line; ++l)
      _mm_prefetch(reinterpret_cast<const char*>(c + i * ldc + l * line), _MM_HINT_T0);
  steps(tail);

  __mmask16 mk[NV];
  V bc[NV];
#pragma GCC unroll 4
  for (int v = 0; v < NV; ++v) {
    const int64_t cols = std::min<int64_t>(L, n - v * L);
    mk[v] = static_cast<__mmask16>((1u << cols) - 1);
    bc[v] = ep.bias != nullptr && ep.bias_per_column ? O::maskz_load(mk[v], ep.bias + v * L)
                                                      : O::zero();
  }
  const bool store = ep.act.kind == Activation::none;
#pragma GCC unroll 32
  for (int i = 0; i < R; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < NV; ++v) {
      T* ci = c + i * ldc + v * L;
      V x = acc[i][v];
      if (ep.accumulate) x = O::add(x, O::maskz_load(mk[v], ci));
      if (ep.bias != nullptr) x = O::add(x, ep.bias_per_column ? bc[v] : O::bcast(ep.bias + i));
      if (store)
        O::mask_store(ci, mk[v], x);
      else
        out[i * NV + v] = O::widen(x);
    }
}

// Loops for every tile of at most MR rows and NV vectors: index (rows - 1) * (NV + 1) + j,
// j = 0 the half-vector (256-bit) loop, j = nv >= 1 the loop on nv zmm.
template <class T, int MR, int NV, size_t... I>
constexpr std::array<KLoop<T>, sizeof...(I)> make_loops(std::index_sequence<I...>) {
  return {(I % (NV + 1) == 0
               ? &kloop<T, 256, static_cast<int>(I / (NV + 1)) + 1, 1>
               : &kloop<T, 512, static_cast<int>(I / (NV + 1)) + 1,
                        std::max<int>(1, static_cast<int>(I % (NV + 1)))>)...};
}

// The activation and the masked store of the m x n tile from acc[i*nv + v] (C and the
// bias already added), on the two 256-bit halves through the AVX2 vector math.
void activate_store(const __m512* acc, int nv, int64_t m, int64_t n, float* c, int64_t ldc,
                    const Activation& act) {
  const avx2::ActF32 av(act);
  for (int v = 0; v < nv; ++v) {
    const int64_t cols = std::min<int64_t>(16, n - v * 16);
    const __mmask16 mk = static_cast<__mmask16>((1u << cols) - 1);
    for (int64_t i = 0; i < m; ++i) {
      const __m512 x = acc[i * nv + v];
      const __m256 lo = avx2::activate_ps(_mm512_extractf32x8_ps(x, 0), av);
      const __m256 hi = avx2::activate_ps(_mm512_extractf32x8_ps(x, 1), av);
      _mm512_mask_storeu_ps(c + i * ldc + v * 16, mk,
                            _mm512_insertf32x8(_mm512_castps256_ps512(lo), hi, 1));
    }
  }
}

void activate_store(const __m512d* acc, int nv, int64_t m, int64_t n, double* c, int64_t ldc,
                    const Activation& act) {
  for (int v = 0; v < nv; ++v) {
    const int64_t cols = std::min<int64_t>(8, n - v * 8);
    const __mmask8 mk = static_cast<__mmask8>((1u << cols) - 1);
    for (int64_t i = 0; i < m; ++i) {
      // The halves through the float casts and extractf32x8 / insertf32x8: GCC 12's
      // extractf64x4, castpd512_pd256 (and castps512_ps256, zext...) warn of an
      // uninitialised operand in their own definitions.
      const __m512 xs = _mm512_castpd_ps(acc[i * nv + v]);
      const __m256d lo = avx2::activate_pd(_mm256_castps_pd(_mm512_extractf32x8_ps(xs, 0)), act);
      const __m256d hi = avx2::activate_pd(_mm256_castps_pd(_mm512_extractf32x8_ps(xs, 1)), act);
      _mm512_mask_storeu_pd(c + i * ldc + v * 8, mk,
                            _mm512_castps_pd(_mm512_insertf32x8(
                                _mm512_castps256_ps512(_mm256_castpd_ps(lo)),
                                _mm256_castpd_ps(hi), 1)));
    }
  }
}

template <class T, int MR, int NV>
void gemm(int64_t k, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m,
          int64_t n, const GemmEpilogue<T>& ep) {
  constexpr int L = Vec<T, 512>::L;
  if (m <= 0 || n <= 0) return;
  static constexpr auto loops =
      make_loops<T, MR, NV>(std::make_index_sequence<MR * (NV + 1)>());
  alignas(64) Z<T> acc[MR * NV];
  const int64_t rows = std::min<int64_t>(m, MR);
  const int nv = static_cast<int>((std::min<int64_t>(n, NV * L) + L - 1) / L);
  const bool half = n <= L / 2;
  const int64_t whole = (nv - 1) * L;  // columns before the last vector
  if (!half && nv > 1 && n - whole <= L / 2) {
    // A last vector at most half full (49 Winograd tiles: 32 + 17): the whole vectors,
    // then the rest on the 256-bit loop, half a zmm's FMA time, not a whole one's.
    loops[(rows - 1) * (NV + 1) + nv - 1](k, a, MR, b, ldb, c, ldc, whole, ep, acc);
    if (ep.act.kind != Activation::none) activate_store(acc, nv - 1, rows, whole, c, ldc, ep.act);
    GemmEpilogue<T> rest = ep;
    if (ep.bias != nullptr && ep.bias_per_column) rest.bias = ep.bias + whole;
    loops[(rows - 1) * (NV + 1)](k, a, MR, b + whole, ldb, c + whole, ldc, n - whole, rest, acc);
    if (ep.act.kind != Activation::none)
      activate_store(acc, 1, rows, n - whole, c + whole, ldc, ep.act);
    return;
  }
  loops[(rows - 1) * (NV + 1) + (half ? 0 : nv)](k, a, MR, b, ldb, c, ldc, n, ep, acc);
  if (ep.act.kind != Activation::none) activate_store(acc, nv, rows, n, c, ldc, ep.act);
}

}  // namespace

void gemm_14x32_avx512(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, const GemmEpilogue<float>& ep) {
  gemm<float, kGemmMrF32, kGemmNrF32 / 16>(k, a, b, ldb, c, ldc, m, n, ep);
}

void gemm_14x16_avx512(int64_t k, const double* a, const double* b, int64_t ldb, double* c, int64_t ldc,
              int64_t m, int64_t n, const GemmEpilogue<double>& ep) {
  gemm<double, kGemmMrF64, kGemmNrF64 / 8>(k, a, b, ldb, c, ldc, m, n, ep);
}

}  // namespace convcore::kernels::avx512
