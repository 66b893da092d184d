// table.cpp — the scalar kernel table: the reference twins, runnable on any CPU.
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::scalar {

const KernelTable& table() {
  static const KernelTable t = {
      "scalar",
      {"pack_16_scalar", "scalar", &pack_16, 0, 16},
      {"pack_8_scalar", "scalar", &pack_8, 0, 8},
      {"gemm_6x16_scalar", "scalar", &gemm_6x16, 6, 16},
      {"gemm_6x8_scalar", "scalar", &gemm_6x8, 6, 8},
      {"activate_f32_scalar", "scalar", &activate_f32},
      {"activate_f64_scalar", "scalar", &activate_f64},
      {"direct_tile_f32_scalar", "scalar", &direct_tile_f32, 4, 24},
      {"direct_tile_f64_scalar", "scalar", &direct_tile_f64, 4, 12},
      {"direct_plane_f32_scalar", "scalar", &direct_plane_f32, 1, 64},
      {"direct_plane_f64_scalar", "scalar", &direct_plane_f64, 1, 32},
      {"locally_connected_f32_scalar", "scalar", &locally_connected_f32},
      {"locally_connected_f64_scalar", "scalar", &locally_connected_f64},
      {"locally_connected_rows_12x8_f32_scalar", "scalar", &locally_connected_rows_f32, 12, 8},
      {"locally_connected_rows_6x8_f64_scalar", "scalar", &locally_connected_rows_f64, 6, 8},
      {"max_pool_row_f32_scalar", "scalar", &max_pool_row_f32},
      {"max_pool_row_f64_scalar", "scalar", &max_pool_row_f64},
      {"avg_pool_row_f32_scalar", "scalar", &avg_pool_row_f32},
      {"avg_pool_row_f64_scalar", "scalar", &avg_pool_row_f64},
      {"peak_fma_12x8_scalar", "scalar", &peak_fma_12x8, 12, 8},
  };
  return t;
}

}  // namespace convcore::kernels::scalar
