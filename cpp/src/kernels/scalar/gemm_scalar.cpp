// gemm_scalar.cpp — scalar twins of the GEMM micro-kernels: gemm_6x16_scalar (float),
// gemm_6x8_scalar (double). Same tile, panel layout (A packed, B packed or in place with
// row stride ldb) and epilogue as the AVX2 kernels; each output is one chain of fused
// multiply-adds over k in order (std::fma, rounded once per step like the SIMD FMAs), so
// the results are bitwise those of every SIMD GEMM kernel whatever its tile.
#include <cmath>

#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T, int MR, int NR>
void gemm(int64_t k, const T* a, const T* b, int64_t ldb, T* c, int64_t ldc, int64_t m,
          int64_t n, const GemmEpilogue<T>& ep) {
  T acc[MR][NR] = {};
  for (int64_t kk = 0; kk < k; ++kk) {
    const T* ak = a + kk * MR;
    const T* bk = b + kk * ldb;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] = std::fma(ak[i], bk[j], acc[i][j]);
  }
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    for (int64_t j = 0; j < n; ++j) {
      T v = acc[i][j];
      if (ep.accumulate) v += ci[j];
      if (ep.bias != nullptr) v += ep.bias[ep.bias_per_column ? j : i];
      ci[j] = act_one<T>(v, ep.act);
    }
  }
}

}  // namespace

void gemm_6x16_scalar(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, const GemmEpilogue<float>& ep) {
  gemm<float, 6, 16>(k, a, b, ldb, c, ldc, m, n, ep);
}

void gemm_6x8_scalar(int64_t k, const double* a, const double* b, int64_t ldb, double* c,
              int64_t ldc, int64_t m, int64_t n, const GemmEpilogue<double>& ep) {
  gemm<double, 6, 8>(k, a, b, ldb, c, ldc, m, n, ep);
}

}  // namespace convcore::kernels::scalar
