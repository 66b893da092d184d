// pack_scalar.cpp — scalar twins of the panel packing kernels: B panels pack_16_scalar
// (float, the 16 columns of gemm_6x16_scalar), pack_8_scalar (double, gemm_6x8_scalar);
// A panels pack_6_scalar (float and double: the 6 rows of both). Contract: table.hpp,
// PackFn. A plain transposing copy, an 8-column tile at a time when the panel is full.
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
namespace {

template <class T, int NR>
void pack(const T* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch, T* out) {
  int64_t kb = 0;
  if (rows == NR) {
    for (; kb + 8 <= kc; kb += 8) {
      if (prefetch > 0 && kb % 16 == 0)
        for (int i = 0; i < NR; ++i) __builtin_prefetch(src + i * ld + kb + prefetch);
      T tile[NR][8];
      for (int i = 0; i < NR; ++i)
        for (int kk = 0; kk < 8; ++kk) tile[i][kk] = src[i * ld + kb + kk];
      for (int kk = 0; kk < 8; ++kk)
        for (int i = 0; i < NR; ++i) out[(kb + kk) * NR + i] = tile[i][kk];
    }
  }
  for (; kb < kc; ++kb) {
    for (int64_t i = 0; i < rows; ++i) out[kb * NR + i] = src[i * ld + kb];
    for (int64_t i = rows; i < NR; ++i) out[kb * NR + i] = T(0);
  }
}

}  // namespace

void pack_16_scalar(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
             float* out) {
  pack<float, 16>(src, ld, rows, kc, prefetch, out);
}

void pack_8_scalar(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
            double* out) {
  pack<double, 8>(src, ld, rows, kc, prefetch, out);
}

void pack_6_scalar(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                   float* out) {
  pack<float, 6>(src, ld, rows, kc, prefetch, out);
}

void pack_6_scalar(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                   double* out) {
  pack<double, 6>(src, ld, rows, kc, prefetch, out);
}

}  // namespace convcore::kernels::scalar
