// scalar.hpp — declarations of the scalar kernels (the twins every ISA is tested against).
#pragma once

#include "kernels/table.hpp"

namespace convcore::kernels::scalar {

void pack_16_scalar(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
             float* out);
void pack_6_scalar(const float* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                   float* out);
void pack_6_scalar(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
                   double* out);
void pack_8_scalar(const double* src, int64_t ld, int64_t rows, int64_t kc, int64_t prefetch,
            double* out);
void gemm_6x16_scalar(int64_t k, const float* a, const float* b, int64_t ldb, float* c, int64_t ldc,
               int64_t m, int64_t n, const GemmEpilogue<float>& ep);
void gemm_6x8_scalar(int64_t k, const double* a, const double* b, int64_t ldb, double* c,
              int64_t ldc, int64_t m, int64_t n, const GemmEpilogue<double>& ep);
void activate_f32_scalar(const float* x, float* y, int64_t n, const Activation& act);
void activate_f64_scalar(const double* x, double* y, int64_t n, const Activation& act);
void direct_tile_f32_scalar(const DirectTileArgs& a, const float* x, const float* w, const float* bias,
                     float* y, const Activation& act);
void direct_tile_f64_scalar(const DirectTileArgs& a, const double* x, const double* w, const double* bias,
                     double* y, const Activation& act);
void direct_plane_f32_scalar(const DirectTileArgs& a, const float* x, const float* w, const float* bias,
                      float* y, const Activation& act);
void direct_plane_f64_scalar(const DirectTileArgs& a, const double* x, const double* w, const double* bias,
                      double* y, const Activation& act);
// The twin of direct_nchwc (KB = 32 floats / 16 doubles): direct_tile's math on those panels.
void direct_nchwc_f32_scalar(const DirectTileArgs& a, const float* x, const float* w, const float* bias,
                      float* y, const Activation& act);
void direct_nchwc_f64_scalar(const DirectTileArgs& a, const double* x, const double* w, const double* bias,
                      double* y, const Activation& act);

void locally_connected_f32_scalar(const LocallyConnectedArgs& a, const float* w, const float* x,
                           const float* bias, float* y, const Activation& act);
void locally_connected_f64_scalar(const LocallyConnectedArgs& a, const double* w, const double* x,
                           const double* bias, double* y, const Activation& act);
void locally_connected_rows_12x8_f32_scalar(const LocallyConnectedRowsArgs& a, const float* w,
                                const float* x, const float* bias, float* y,
                                const Activation& act);
void locally_connected_rows_6x8_f64_scalar(const LocallyConnectedRowsArgs& a, const double* w,
                                const double* x, const double* bias, double* y,
                                const Activation& act);
void max_pool_row_f32_scalar(const PoolRowArgs& p, const float* x, float* y, float* tmp);
void max_pool_row_f64_scalar(const PoolRowArgs& p, const double* x, double* y, double* tmp);
void avg_pool_row_f32_scalar(const PoolRowArgs& p, const float* x, float* y, float* tmp,
                      float row_count, const float* col_count);
void avg_pool_row_f64_scalar(const PoolRowArgs& p, const double* x, double* y, double* tmp,
                      double row_count, const double* col_count);
void tap_dots_f32_scalar(const float* g, int64_t g_ld, int64_t kn, const float* x,
                         const int64_t* off, int64_t taps, int64_t n, float* out, int64_t out_ld);
void tap_dots_f64_scalar(const double* g, int64_t g_ld, int64_t kn, const double* x,
                         const int64_t* off, int64_t taps, int64_t n, double* out, int64_t out_ld);
float peak_fma_12x8_scalar(int64_t steps, float m, float c);

// Winograd F(4x4 / 2x2, 3x3) transforms (winograd_scalar.cpp; winograd_transform.hpp).
void winograd_pack_f32_scalar(const WinogradPackArgs& a, const float* x, float* band);
void winograd_pack_f64_scalar(const WinogradPackArgs& a, const double* x, double* band);
void winograd_unpack_f32_scalar(const WinogradUnpackArgs& a, const float* out, float* y);
void winograd_unpack_f64_scalar(const WinogradUnpackArgs& a, const double* out, double* y);
void winograd_input_f32_scalar(const WinogradInputArgs& a, const float* band, float* v);
void winograd_input_f64_scalar(const WinogradInputArgs& a, const double* band, double* v);
void winograd_output_f32_scalar(const WinogradOutputArgs& a, const float* mm, const float* bias,
                         float* out, const Activation& act);
void winograd_output_f64_scalar(const WinogradOutputArgs& a, const double* mm, const double* bias,
                         double* out, const Activation& act);
void winograd_weights_f32_scalar(const WinogradWeightsArgs& a, const float* g, float* u);
void winograd_weights_f64_scalar(const WinogradWeightsArgs& a, const double* g, double* u);

// depthwise_nchwc_scalar.cpp (16 float / 8 double channels in the lanes)
void depthwise_nchwc_f32_scalar(const DepthwiseArgs& a, const float* x, const float* w,
                               const float* bias, float* y, const Activation& act);
void depthwise_nchwc_f64_scalar(const DepthwiseArgs& a, const double* x, const double* w,
                               const double* bias, double* y, const Activation& act);

}  // namespace convcore::kernels::scalar
