// avx512.hpp — declarations of the AVX-512 kernels (files compiled with -mavx512f -mavx512vl
// -mavx512bw -mavx512dq -mavx2 -mfma). Slots without an AVX-512 kernel of their own hold
// the AVX2 one (table.cpp): 32 registers and lane masks pay where a kernel is register-
// or edge-bound, not everywhere.
#pragma once

#include "kernels/table.hpp"

namespace convcore::kernels::avx512 {

float peak_fma_12x16(int64_t steps, float m, float c);

// direct_plane_avx512.cpp (band or in-place input)
void direct_plane_f32(const DirectTileArgs& a, const float* x, const float* w, const float* bias,
                      float* y, const Activation& act);
void direct_plane_f64(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act);

}  // namespace convcore::kernels::avx512
