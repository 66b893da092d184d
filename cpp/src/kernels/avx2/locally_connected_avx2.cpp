// locally_connected_avx2.cpp — locally_connected_*_avx2: one output position of a
// locally connected layer for a block of images (contract in table.hpp), AVX2+FMA.
//
// The weights are read as the user laid them out, (K, C*R*S) per position, so nothing
// is packed: each output is a dot product of a weight row and a patch row, both
// contiguous. A register tile of MK filters x MN images (MK*MN = 8 accumulators of
// 8 floats / 4 doubles) runs along kd (the tail through a lane mask), then the 8 dot
// products are reduced horizontally into one vector, which takes the bias and the
// activation before its lanes are stored. Tiles: 2x4 for N >= 4, 4x2 for N = 2, 3 and
// 8x1 for N = 1; edge tiles repeat the last valid row and drop its results. (Blocks of
// 8 images go to locally_connected_rows instead, see ops/locally_connected.cpp.)
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"

namespace convcore::kernels::avx2 {
namespace {

// The weights are a stream read once (megabytes per call): each load asks for the bytes
// kPrefetch ahead in its row (into L1) and for the same weight of the next position
// (into L2; a prefetch never faults). The second halved N=1, C=16, 32x32, K=32 (1.5 ms
// to 0.74 ms: the stream then runs at ~25 GB/s).
constexpr int kPrefetch = 1024;

// Prefetch the line `bytes` past p. Integer arithmetic: the address may lie past the
// array (the last row's look-ahead), which a prefetch ignores but a pointer may not reach.
template <int Hint>
inline void prefetch(const void* p, int64_t bytes) {
  _mm_prefetch(reinterpret_cast<const char*>(reinterpret_cast<uintptr_t>(p) + bytes),
               static_cast<_mm_hint>(Hint));
}

// Horizontal sums of 8 float vectors: lane i of the result is the sum of v[i].
inline __m256 hsum8_ps(const __m256* v) {
  const __m256 t0 = _mm256_hadd_ps(_mm256_hadd_ps(v[0], v[1]), _mm256_hadd_ps(v[2], v[3]));
  const __m256 t1 = _mm256_hadd_ps(_mm256_hadd_ps(v[4], v[5]), _mm256_hadd_ps(v[6], v[7]));
  return _mm256_add_ps(_mm256_permute2f128_ps(t0, t1, 0x20), _mm256_permute2f128_ps(t0, t1, 0x31));
}

// Horizontal sums of 4 double vectors: lane i of the result is the sum of v[i].
inline __m256d hsum4_pd(const __m256d* v) {
  const __m256d t0 = _mm256_hadd_pd(v[0], v[1]);
  const __m256d t1 = _mm256_hadd_pd(v[2], v[3]);
  return _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20), _mm256_permute2f128_pd(t0, t1, 0x31));
}

// Rows [k0, k0 + MK) x images [n0, n0 + MN), rows/images past the end clamped.
template <int MK, int MN>
void tile_f32(const LocallyConnectedArgs& a, const float* w, const float* x, const float* bias,
              float* y, const ActF32& av, int64_t k0, int64_t n0) {
  const float* wr[MK];
  const float* xr[MN];
  #pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) wr[i] = w + std::min<int64_t>(k0 + i, a.K - 1) * a.kd;
  #pragma GCC unroll 12
  for (int j = 0; j < MN; ++j) xr[j] = x + std::min<int64_t>(n0 + j, a.N - 1) * a.kd;
  const int64_t next_pos = a.K * a.kd * static_cast<int64_t>(sizeof(*w));  // bytes
  __m256 acc[8];
  #pragma GCC unroll 12
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_ps();
  int64_t t = 0;
  for (; t + 8 <= a.kd; t += 8) {
    __m256 xv[MN];
    #pragma GCC unroll 12
    for (int j = 0; j < MN; ++j) xv[j] = _mm256_loadu_ps(xr[j] + t);
    #pragma GCC unroll 12
    for (int i = 0; i < MK; ++i) {
      prefetch<_MM_HINT_T0>(wr[i] + t, kPrefetch);
      prefetch<_MM_HINT_T1>(wr[i] + t, next_pos);
      const __m256 wv = _mm256_loadu_ps(wr[i] + t);
      #pragma GCC unroll 12
      for (int j = 0; j < MN; ++j) acc[i * MN + j] = _mm256_fmadd_ps(wv, xv[j], acc[i * MN + j]);
    }
  }
  if (t < a.kd) {
    const __m256i m = mask_ps(a.kd - t);
    __m256 xv[MN];
    #pragma GCC unroll 12
    for (int j = 0; j < MN; ++j) xv[j] = _mm256_maskload_ps(xr[j] + t, m);
    #pragma GCC unroll 12
    for (int i = 0; i < MK; ++i) {
      const __m256 wv = _mm256_maskload_ps(wr[i] + t, m);
      #pragma GCC unroll 12
      for (int j = 0; j < MN; ++j) acc[i * MN + j] = _mm256_fmadd_ps(wv, xv[j], acc[i * MN + j]);
    }
  }
  __m256 v = hsum8_ps(acc);  // lane i*MN + j: filter k0 + i, image n0 + j
  if (bias != nullptr) {
    alignas(32) float b[8];
    #pragma GCC unroll 12
    for (int i = 0; i < MK; ++i)
      #pragma GCC unroll 12
      for (int j = 0; j < MN; ++j) b[i * MN + j] = bias[std::min<int64_t>(k0 + i, a.K - 1) * a.bias_stride];
    v = _mm256_add_ps(v, _mm256_load_ps(b));
  }
  alignas(32) float out[8];
  _mm256_store_ps(out, activate_ps(v, av));
  for (int i = 0; i < MK && k0 + i < a.K; ++i)
    for (int j = 0; j < MN && n0 + j < a.N; ++j)
      y[(n0 + j) * a.y_n_stride + (k0 + i) * a.y_k_stride] = out[i * MN + j];
}

template <int MK, int MN>
void tile_f64(const LocallyConnectedArgs& a, const double* w, const double* x,
              const double* bias, double* y, const Activation& act, int64_t k0, int64_t n0) {
  const double* wr[MK];
  const double* xr[MN];
  #pragma GCC unroll 12
  for (int i = 0; i < MK; ++i) wr[i] = w + std::min<int64_t>(k0 + i, a.K - 1) * a.kd;
  #pragma GCC unroll 12
  for (int j = 0; j < MN; ++j) xr[j] = x + std::min<int64_t>(n0 + j, a.N - 1) * a.kd;
  const int64_t next_pos = a.K * a.kd * static_cast<int64_t>(sizeof(*w));  // bytes
  __m256d acc[8];
  #pragma GCC unroll 12
  for (int i = 0; i < 8; ++i) acc[i] = _mm256_setzero_pd();
  int64_t t = 0;
  for (; t + 4 <= a.kd; t += 4) {
    __m256d xv[MN];
    #pragma GCC unroll 12
    for (int j = 0; j < MN; ++j) xv[j] = _mm256_loadu_pd(xr[j] + t);
    #pragma GCC unroll 12
    for (int i = 0; i < MK; ++i) {
      prefetch<_MM_HINT_T0>(wr[i] + t, kPrefetch);
      prefetch<_MM_HINT_T1>(wr[i] + t, next_pos);
      const __m256d wv = _mm256_loadu_pd(wr[i] + t);
      #pragma GCC unroll 12
      for (int j = 0; j < MN; ++j) acc[i * MN + j] = _mm256_fmadd_pd(wv, xv[j], acc[i * MN + j]);
    }
  }
  if (t < a.kd) {
    const __m256i m = mask_pd(a.kd - t);
    __m256d xv[MN];
    #pragma GCC unroll 12
    for (int j = 0; j < MN; ++j) xv[j] = _mm256_maskload_pd(xr[j] + t, m);
    #pragma GCC unroll 12
    for (int i = 0; i < MK; ++i) {
      const __m256d wv = _mm256_maskload_pd(wr[i] + t, m);
      #pragma GCC unroll 12
      for (int j = 0; j < MN; ++j) acc[i * MN + j] = _mm256_fmadd_pd(wv, xv[j], acc[i * MN + j]);
    }
  }
  __m256d v[2] = {hsum4_pd(acc), hsum4_pd(acc + 4)};
  alignas(32) double out[8];
  for (int h = 0; h < 2; ++h) {
    if (bias != nullptr) {
      alignas(32) double b[4];
      for (int l = 0; l < 4; ++l)
        b[l] = bias[std::min<int64_t>(k0 + (h * 4 + l) / MN, a.K - 1) * a.bias_stride];
      v[h] = _mm256_add_pd(v[h], _mm256_load_pd(b));
    }
    _mm256_store_pd(out + 4 * h, activate_pd(v[h], act));
  }
  for (int i = 0; i < MK && k0 + i < a.K; ++i)
    for (int j = 0; j < MN && n0 + j < a.N; ++j)
      y[(n0 + j) * a.y_n_stride + (k0 + i) * a.y_k_stride] = out[i * MN + j];
}

template <int MK, int MN, class T, class Act, class Tile>
void sweep(const LocallyConnectedArgs& a, const T* w, const T* x, const T* bias, T* y,
           const Act& act, Tile tile) {
  for (int64_t n0 = 0; n0 < a.N; n0 += MN)
    for (int64_t k0 = 0; k0 < a.K; k0 += MK) tile(a, w, x, bias, y, act, k0, n0);
}

}  // namespace

void locally_connected_f32_avx2(const LocallyConnectedArgs& a, const float* w, const float* x,
                           const float* bias, float* y, const Activation& act) {
  const ActF32 av(act);
  if (a.N >= 4)
    sweep<2, 4>(a, w, x, bias, y, av, tile_f32<2, 4>);
  else if (a.N >= 2)
    sweep<4, 2>(a, w, x, bias, y, av, tile_f32<4, 2>);
  else
    sweep<8, 1>(a, w, x, bias, y, av, tile_f32<8, 1>);
}

void locally_connected_f64_avx2(const LocallyConnectedArgs& a, const double* w, const double* x,
                           const double* bias, double* y, const Activation& act) {
  if (a.N >= 4)
    sweep<2, 4>(a, w, x, bias, y, act, tile_f64<2, 4>);
  else if (a.N >= 2)
    sweep<4, 2>(a, w, x, bias, y, act, tile_f64<4, 2>);
  else
    sweep<8, 1>(a, w, x, bias, y, act, tile_f64<8, 1>);
}

}  // namespace convcore::kernels::avx2
