// backward_util.hpp — small deterministic building blocks shared by the backward drivers:
// a blocked transpose, column sums and plane sums in a fixed order.
#pragma once

#include <algorithm>
#include <cstdint>

#include "threadpool.hpp"

namespace convcore::detail {

// dst (cols x rows) = src (rows x cols)^T, in 32 x 32 tiles over the pool (small: inline).
template <class T>
void transpose(const T* src, int64_t rows, int64_t cols, T* dst) {
  constexpr int64_t B = 32;
  const int64_t rb = (rows + B - 1) / B, cb = (cols + B - 1) / B;
  parallel_for(rb * cb, rows * cols, [&](int64_t t) {
    const int64_t i0 = t / cb * B, j0 = t % cb * B;
    const int64_t i1 = std::min(rows, i0 + B), j1 = std::min(cols, j0 + B);
    for (int64_t j = j0; j < j1; ++j)
      for (int64_t i = i0; i < i1; ++i) dst[j * rows + i] = src[i * cols + j];
  });
}

// sums[j] = sum over i in order of m[i*cols + j] (i < rows), columns in blocks over the pool.
template <class T>
void column_sums(const T* m, int64_t rows, int64_t cols, T* sums) {
  constexpr int64_t B = 256;
  parallel_for((cols + B - 1) / B, rows * cols, [&](int64_t t) {
    const int64_t j0 = t * B, j1 = std::min(cols, j0 + B);
    std::fill(sums + j0, sums + j1, T(0));
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = j0; j < j1; ++j) sums[j] += m[i * cols + j];
  });
}

// The sum of n values in 8 interleaved lanes (value i in lane i % 8), lanes added in
// order: a fixed order the compiler can vectorise.
template <class T>
T lane_sum(const T* v, int64_t n) {
  T acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int l = 0; l < 8; ++l) acc[l] += v[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += v[i];
  T s = T(0);
  for (int l = 0; l < 8; ++l) s += acc[l];
  return s;
}

// The dot product of a and b in 32 interleaved lanes (product i in lane i % 32), lanes
// added in order: a fixed order, and enough independent sums that the vectorised loop is
// not bound by the adds' latency.
template <class T>
T lane_dot(const T* a, const T* b, int64_t n) {
  constexpr int L = 32;
  T acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int l = 0; l < L; ++l) acc[l] += a[i + l] * b[i + l];
  for (int l = 0; i < n; ++i, ++l) acc[l] += a[i] * b[i];
  T s = T(0);
  for (int l = 0; l < L; ++l) s += acc[l];
  return s;
}

// Whether every value is finite: x * 0 is 0 for finite x, NaN for NaN and infinities
// (32 independent lanes, so the loop vectorises).
template <class T>
bool all_finite(const T* v, int64_t n) {
  constexpr int L = 32;
  T acc[L] = {};
  int64_t i = 0;
  for (; i + L <= n; i += L)
    for (int l = 0; l < L; ++l) acc[l] += v[i + l] * T(0);
  for (int l = 0; i < n; ++i, ++l) acc[l] += v[i] * T(0);
  T s = T(0);
  for (int l = 0; l < L; ++l) s += acc[l];
  return s == T(0);
}

// sums[k] = sum over n in order of lane_sum(plane (n, k)) for planes of `plane` values,
// laid out (N, K, plane): conv2d's bias gradient (channel per task).
template <class T>
void channel_sums(const T* g, int64_t N, int64_t K, int64_t plane, T* sums) {
  parallel_for(K, N * K * plane, [&](int64_t k) {
    T s = T(0);
    for (int64_t n = 0; n < N; ++n) s += lane_sum(g + (n * K + k) * plane, plane);
    sums[k] = s;
  });
}

}  // namespace convcore::detail
