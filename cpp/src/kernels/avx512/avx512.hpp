// avx512.hpp — declarations of the AVX-512 kernels (files compiled with -mavx512f -mavx512vl
// -mavx512bw -mavx512dq -mavx2 -mfma). Slots without an AVX-512 kernel of their own hold
// the AVX2 one (table.cpp): 32 registers and lane masks pay where a kernel is register-
// or edge-bound, not everywhere.
#pragma once

#include "kernels/table.hpp"

namespace convcore::kernels::avx512 {

// The GEMM register tile (gemm_avx512.cpp): MR rows x NR columns, 2 zmm per row, so
// 2*MR accumulators + 2 B vectors + 1 broadcast = 31 of the 32 registers. Measured on the
// anchors (Zen 4) against 12x32, 8x48, 6x64 and 24x16: all within a few per cent, 14x32
// the best on the 1x1 and 3x3 layers together.
constexpr int kGemmMrF32 = 14, kGemmNrF32 = 32, kGemmMrF64 = 14, kGemmNrF64 = 16;
void pack_32_avx512(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
              float* out);
void pack_16_avx512(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
              double* out);
void pack_14_avx512(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                    float* out);
void pack_14_avx512(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                    double* out);
void gemm_14x32_avx512(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
              int64_t m, int64_t n, const GemmEpilogue<float>& ep);
void gemm_14x16_avx512(int64_t k, const double* a, const double* b, int64_t ldb, double* c, int64_t ldc,
              int64_t m, int64_t n, const GemmEpilogue<double>& ep);

float peak_fma_12x16_avx512(int64_t steps, float m, float c);

// direct_tile (KB = 8): 8 output channels x 3 vectors (zmm or ymm by the row width).
void direct_tile_f32_avx512(const DirectTileArgs& a, const float* x, const float* w,
                     const float* bias, float* y, const Activation& act);
void direct_tile_f64_avx512(const DirectTileArgs& a, const double* x, const double* w,
                     const double* bias, double* y, const Activation& act);

// direct_nchwc (KB = 2 zmm of channels: 32 floats / 16 doubles): up to 14 pixels of a row x
// 2 channel blocks, channels in the lanes.
constexpr int kDirectNchwcPixels = 14;
void direct_nchwc_f32_avx512(const DirectTileArgs& a, const float* x, const float* w,
                             const float* bias, float* y, const Activation& act);
void direct_nchwc_f64_avx512(const DirectTileArgs& a, const double* x, const double* w,
                             const double* bias, double* y, const Activation& act);

// direct_plane_avx512.cpp (band or in-place input)
void direct_plane_f32_avx512(const DirectTileArgs& a, const float* x, const float* w, const float* bias,
                      float* y, const Activation& act);
void direct_plane_f64_avx512(const DirectTileArgs& a, const double* x, const double* w,
                      const double* bias, double* y, const Activation& act);

// tap_dots (KB = 4): 4 gradient rows x 6 taps a block, one zmm per lane sum.
void tap_dots_f32_avx512(const float* g, int64_t g_ld, int64_t kn, const float* x,
                         const int64_t* off, int64_t taps, int64_t n, float* out, int64_t out_ld);
void tap_dots_f64_avx512(const double* g, int64_t g_ld, int64_t kn, const double* x,
                         const int64_t* off, int64_t taps, int64_t n, double* out, int64_t out_ld);
// Winograd F(4x4 / 2x2, 3x3) transforms (winograd_avx512.cpp; winograd_transform.hpp).
void winograd_pack_f32_avx512(const WinogradPackArgs& a, const float* x, float* band);
void winograd_pack_f64_avx512(const WinogradPackArgs& a, const double* x, double* band);
void winograd_unpack_f32_avx512(const WinogradUnpackArgs& a, const float* out, float* y);
void winograd_unpack_f64_avx512(const WinogradUnpackArgs& a, const double* out, double* y);
void winograd_input_f32_avx512(const WinogradInputArgs& a, const float* band, float* v);
void winograd_input_f64_avx512(const WinogradInputArgs& a, const double* band, double* v);
void winograd_output_f32_avx512(const WinogradOutputArgs& a, const float* mm, const float* bias,
                         float* out, const Activation& act);
void winograd_output_f64_avx512(const WinogradOutputArgs& a, const double* mm, const double* bias,
                         double* out, const Activation& act);
void winograd_weights_f32_avx512(const WinogradWeightsArgs& a, const float* g, float* u);
void winograd_weights_f64_avx512(const WinogradWeightsArgs& a, const double* g, double* u);

// Pixels of a depthwise_nchwc tile (8 accumulators a vector of channels).
constexpr int kDepthwisePixels = 8;
// depthwise_nchwc_avx512.cpp (32 float / 16 double channels in the lanes)
void depthwise_nchwc_f32_avx512(const DepthwiseArgs& a, const float* x, const float* w,
                               const float* bias, float* y, const Activation& act);
void depthwise_nchwc_f64_avx512(const DepthwiseArgs& a, const double* x, const double* w,
                               const double* bias, double* y, const Activation& act);

}  // namespace convcore::kernels::avx512
