// table.hpp — the AVX2+FMA tables: the scalar tables plus the AVX2 kernels (every slot has
// one; the AVX-512 tables start from these: avx512/table.hpp).
#pragma once

#include "kernels/avx2/avx2.hpp"
#include "kernels/scalar/table.hpp"

namespace convcore::kernels::avx2 {
namespace {  // compile-time only, as scalar/table.hpp explains

constexpr IsaTables make_tables() {
  IsaTables t = scalar::make_tables();
  t.isa = "avx2";
  t.f32.isa = t.f64.isa = "avx2";
  t.f32.pack_nr = {"pack_16_avx2", "avx2", &pack_16_avx2, 0, 16};
  t.f64.pack_nr = {"pack_8_avx2", "avx2", &pack_8_avx2, 0, 8};
  t.f32.gemm = {"gemm_6x16_avx2", "avx2", &gemm_6x16_avx2, 6, 16};
  t.f64.gemm = {"gemm_6x8_avx2", "avx2", &gemm_6x8_avx2, 6, 8};
  t.f32.activate = {"activate_f32_avx2", "avx2", &activate_f32_avx2};
  t.f64.activate = {"activate_f64_avx2", "avx2", &activate_f64_avx2};
  t.f32.direct_tile = {"direct_tile_f32_avx2", "avx2", &direct_tile_f32_avx2, 4, 24};
  t.f64.direct_tile = {"direct_tile_f64_avx2", "avx2", &direct_tile_f64_avx2, 4, 12};
  t.f32.direct_plane = {"direct_plane_f32_avx2", "avx2", &direct_plane_f32_avx2, 1, 64};
  t.f64.direct_plane = {"direct_plane_f64_avx2", "avx2", &direct_plane_f64_avx2, 1, 32};
  t.f32.depthwise_nchwc = {"depthwise_nchwc_f32_avx2", "avx2", &depthwise_nchwc_f32_avx2, 16,
                           kDepthwisePixels};
  t.f64.depthwise_nchwc = {"depthwise_nchwc_f64_avx2", "avx2", &depthwise_nchwc_f64_avx2, 8,
                           kDepthwisePixels};
  t.f32.locally_connected = {"locally_connected_f32_avx2", "avx2", &locally_connected_f32_avx2};
  t.f64.locally_connected = {"locally_connected_f64_avx2", "avx2", &locally_connected_f64_avx2};
  t.f32.locally_connected_rows = {"locally_connected_rows_12x8_f32_avx2", "avx2",
                                  &locally_connected_rows_12x8_f32_avx2, 12, 8};
  t.f64.locally_connected_rows = {"locally_connected_rows_6x8_f64_avx2", "avx2",
                                  &locally_connected_rows_6x8_f64_avx2, 6, 8};
  t.f32.max_pool_row = {"max_pool_row_f32_avx2", "avx2", &max_pool_row_f32_avx2};
  t.f64.max_pool_row = {"max_pool_row_f64_avx2", "avx2", &max_pool_row_f64_avx2};
  t.f32.avg_pool_row = {"avg_pool_row_f32_avx2", "avx2", &avg_pool_row_f32_avx2};
  t.f64.avg_pool_row = {"avg_pool_row_f64_avx2", "avx2", &avg_pool_row_f64_avx2};
  t.f32.tap_dots = {"tap_dots_f32_avx2", "avx2", &tap_dots_f32_avx2, 2, 3};
  t.f64.tap_dots = {"tap_dots_f64_avx2", "avx2", &tap_dots_f64_avx2, 2, 3};
  t.f32.winograd_pack = {"winograd_pack_f32_avx2", "avx2", &winograd_pack_f32_avx2, 0, 8};
  t.f64.winograd_pack = {"winograd_pack_f64_avx2", "avx2", &winograd_pack_f64_avx2, 0, 4};
  t.f32.winograd_unpack = {"winograd_unpack_f32_avx2", "avx2", &winograd_unpack_f32_avx2, 0, 8};
  t.f64.winograd_unpack = {"winograd_unpack_f64_avx2", "avx2", &winograd_unpack_f64_avx2, 0, 4};
  t.f32.winograd_input = {"winograd_input_f32_avx2", "avx2", &winograd_input_f32_avx2, 0, 8};
  t.f64.winograd_input = {"winograd_input_f64_avx2", "avx2", &winograd_input_f64_avx2, 0, 4};
  t.f32.winograd_output = {"winograd_output_f32_avx2", "avx2", &winograd_output_f32_avx2, 0,
                           8};
  t.f64.winograd_output = {"winograd_output_f64_avx2", "avx2", &winograd_output_f64_avx2, 0,
                           4};
  t.f32.winograd_weights = {"winograd_weights_f32_avx2", "avx2", &winograd_weights_f32_avx2, 0,
                            8};
  t.f64.winograd_weights = {"winograd_weights_f64_avx2", "avx2", &winograd_weights_f64_avx2, 0,
                            4};
  t.peak_fma = {"peak_fma_12x8_avx2", "avx2", &peak_fma_12x8_avx2, 12, 8};
  return t;
}

}  // namespace
}  // namespace convcore::kernels::avx2
