// peak_fma_scalar.cpp — scalar twin of the FMA-throughput probe: peak_fma_12x8_scalar.
// Same 12 chains x 8 lanes, same start values and summation order as the AVX2 kernel;
// on a baseline build it measures what a plain C++ loop reaches, not the FMA peak.
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {

float peak_fma_12x8_scalar(int64_t steps, float m, float c) {
  float acc[12][8];
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 8; ++j) acc[i][j] = static_cast<float>(8 * i + j);
  for (int64_t t = 0; t < steps; ++t)
    for (int i = 0; i < 12; ++i)
      for (int j = 0; j < 8; ++j) acc[i][j] = acc[i][j] * m + c;
  float sum = 0;
  for (int i = 0; i < 12; ++i)
    for (int j = 0; j < 8; ++j) sum += acc[i][j];
  return sum;
}

}  // namespace convcore::kernels::scalar
