// gemm_scalar.cpp — scalar twins of the GEMM micro-kernels: gemm_6x16_scalar (float),
// gemm_6x8_scalar (double). Same tile, packing and epilogue as the AVX2 kernels.
#include "kernels/act_scalar.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T, int MR, int NR>
void gemm(int64_t k, const T* a, const T* b, T* c, int64_t ldc, int64_t m, int64_t n,
          bool accumulate, const T* bias, const Activation& act) {
  T acc[MR][NR] = {};
  for (int64_t kk = 0; kk < k; ++kk) {
    const T* ak = a + kk * MR;
    const T* bk = b + kk * NR;
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) acc[i][j] += ak[i] * bk[j];
  }
  for (int64_t i = 0; i < m; ++i) {
    T* ci = c + i * ldc;
    const T bi = bias != nullptr ? bias[i] : T(0);
    for (int64_t j = 0; j < n; ++j) {
      T v = acc[i][j];
      if (accumulate) v += ci[j];
      ci[j] = act_one<T>(v + bi, act);
    }
  }
}

}  // namespace

void gemm_6x16(int64_t k, const float* a, const float* b, float* c, int64_t ldc, int64_t m,
               int64_t n, bool accumulate, const float* bias, const Activation& act) {
  gemm<float, 6, 16>(k, a, b, c, ldc, m, n, accumulate, bias, act);
}

void gemm_6x8(int64_t k, const double* a, const double* b, double* c, int64_t ldc, int64_t m,
              int64_t n, bool accumulate, const double* bias, const Activation& act) {
  gemm<double, 6, 8>(k, a, b, c, ldc, m, n, accumulate, bias, act);
}

}  // namespace convcore::kernels::scalar
