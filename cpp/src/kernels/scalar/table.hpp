// table.hpp — the scalar tables: the reference twins, a kernel in every slot (the base
// every wider ISA's tables start from: avx2/table.hpp).
#pragma once

#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {
// Unnamed namespace: each table.cpp evaluates this at compile time (a constexpr table), so
// no copy is ever emitted, and none compiled with one ISA's flags could be shared with
// another's translation unit.
namespace {

constexpr IsaTables make_tables() {
  IsaTables t{};
  t.isa = "scalar";
  t.f32.isa = t.f64.isa = "scalar";
  t.f32.pack_nr = {"pack_16_scalar", "scalar", &pack_16_scalar, 0, 16};
  t.f64.pack_nr = {"pack_8_scalar", "scalar", &pack_8_scalar, 0, 8};
  t.f32.pack_mr = {"pack_6_scalar", "scalar", &pack_6_scalar, 0, 6};
  t.f64.pack_mr = {"pack_6_scalar", "scalar", &pack_6_scalar, 0, 6};
  t.f32.gemm = {"gemm_6x16_scalar", "scalar", &gemm_6x16_scalar, 6, 16};
  t.f64.gemm = {"gemm_6x8_scalar", "scalar", &gemm_6x8_scalar, 6, 8};
  t.f32.activate = {"activate_f32_scalar", "scalar", &activate_f32_scalar};
  t.f64.activate = {"activate_f64_scalar", "scalar", &activate_f64_scalar};
  t.f32.direct_tile = {"direct_tile_f32_scalar", "scalar", &direct_tile_f32_scalar, 4, 24};
  t.f64.direct_tile = {"direct_tile_f64_scalar", "scalar", &direct_tile_f64_scalar, 4, 12};
  t.f32.direct_plane = {"direct_plane_f32_scalar", "scalar", &direct_plane_f32_scalar, 1, 64};
  t.f64.direct_plane = {"direct_plane_f64_scalar", "scalar", &direct_plane_f64_scalar, 1, 32};
  t.f32.direct_nchwc = {"direct_nchwc_f32_scalar", "scalar", &direct_nchwc_f32_scalar, 32, 14};
  t.f64.direct_nchwc = {"direct_nchwc_f64_scalar", "scalar", &direct_nchwc_f64_scalar, 16, 14};
  t.f32.depthwise_nchwc = {"depthwise_nchwc_f32_scalar", "scalar", &depthwise_nchwc_f32_scalar,
                           16, 1};
  t.f64.depthwise_nchwc = {"depthwise_nchwc_f64_scalar", "scalar", &depthwise_nchwc_f64_scalar,
                           8, 1};
  t.f32.locally_connected = {"locally_connected_f32_scalar", "scalar",
                             &locally_connected_f32_scalar};
  t.f64.locally_connected = {"locally_connected_f64_scalar", "scalar",
                             &locally_connected_f64_scalar};
  t.f32.locally_connected_rows = {"locally_connected_rows_12x8_f32_scalar", "scalar",
                                  &locally_connected_rows_12x8_f32_scalar, 12, 8};
  t.f64.locally_connected_rows = {"locally_connected_rows_6x8_f64_scalar", "scalar",
                                  &locally_connected_rows_6x8_f64_scalar, 6, 8};
  t.f32.max_pool_row = {"max_pool_row_f32_scalar", "scalar", &max_pool_row_f32_scalar};
  t.f64.max_pool_row = {"max_pool_row_f64_scalar", "scalar", &max_pool_row_f64_scalar};
  t.f32.avg_pool_row = {"avg_pool_row_f32_scalar", "scalar", &avg_pool_row_f32_scalar};
  t.f64.avg_pool_row = {"avg_pool_row_f64_scalar", "scalar", &avg_pool_row_f64_scalar};
  t.f32.tap_dots = {"tap_dots_f32_scalar", "scalar", &tap_dots_f32_scalar, 4, 1};
  t.f64.tap_dots = {"tap_dots_f64_scalar", "scalar", &tap_dots_f64_scalar, 4, 1};
  t.f32.winograd_pack = {"winograd_pack_f32_scalar", "scalar", &winograd_pack_f32_scalar, 0, 1};
  t.f64.winograd_pack = {"winograd_pack_f64_scalar", "scalar", &winograd_pack_f64_scalar, 0, 1};
  t.f32.winograd_unpack = {"winograd_unpack_f32_scalar", "scalar", &winograd_unpack_f32_scalar, 0, 1};
  t.f64.winograd_unpack = {"winograd_unpack_f64_scalar", "scalar", &winograd_unpack_f64_scalar, 0, 1};
  t.f32.winograd_input = {"winograd_input_f32_scalar", "scalar", &winograd_input_f32_scalar, 0, 1};
  t.f64.winograd_input = {"winograd_input_f64_scalar", "scalar", &winograd_input_f64_scalar, 0, 1};
  t.f32.winograd_output = {"winograd_output_f32_scalar", "scalar", &winograd_output_f32_scalar, 0,
                           1};
  t.f64.winograd_output = {"winograd_output_f64_scalar", "scalar", &winograd_output_f64_scalar, 0,
                           1};
  t.f32.winograd_weights = {"winograd_weights_f32_scalar", "scalar", &winograd_weights_f32_scalar, 0,
                            1};
  t.f64.winograd_weights = {"winograd_weights_f64_scalar", "scalar", &winograd_weights_f64_scalar, 0,
                            1};
  t.peak_fma = {"peak_fma_12x8_scalar", "scalar", &peak_fma_12x8_scalar, 12, 8};
  return t;
}

}  // namespace
}  // namespace convcore::kernels::scalar
