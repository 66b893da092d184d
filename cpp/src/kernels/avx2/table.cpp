// table.cpp — the AVX2+FMA kernel table; slots without an AVX2 kernel hold the scalar one.
#include "kernels/avx2/avx2.hpp"
#include "kernels/scalar/scalar.hpp"

namespace convcore::kernels::avx2 {

const KernelTable& table() {
  static const KernelTable t = {
      "avx2",
      {"pack_16_avx2", "avx2", &pack_16, 0, 16},
      {"pack_8_avx2", "avx2", &pack_8, 0, 8},
      {"gemm_6x16_avx2", "avx2", &gemm_6x16, 6, 16},
      {"gemm_6x8_avx2", "avx2", &gemm_6x8, 6, 8},
      {"activate_f32_avx2", "avx2", &activate_f32},
      {"activate_f64_avx2", "avx2", &activate_f64},
      {"direct_tile_f32_avx2", "avx2", &direct_tile_f32, 4, 24},
      {"direct_tile_f64_avx2", "avx2", &direct_tile_f64, 4, 12},
      {"direct_plane_f32_avx2", "avx2", &direct_plane_f32, 1, 64},
      {"direct_plane_f64_avx2", "avx2", &direct_plane_f64, 1, 32},
      {"locally_connected_f32_avx2", "avx2", &locally_connected_f32},
      {"locally_connected_f64_avx2", "avx2", &locally_connected_f64},
      {"locally_connected_rows_12x8_f32_avx2", "avx2", &locally_connected_rows_f32, 12, 8},
      {"locally_connected_rows_6x8_f64_avx2", "avx2", &locally_connected_rows_f64, 6, 8},
      {"max_pool_row_f32_avx2", "avx2", &max_pool_row_f32},
      {"max_pool_row_f64_avx2", "avx2", &max_pool_row_f64},
      {"avg_pool_row_f32_avx2", "avx2", &avg_pool_row_f32},
      {"avg_pool_row_f64_avx2", "avx2", &avg_pool_row_f64},
      {"peak_fma_12x8_avx2", "avx2", &peak_fma_12x8, 12, 8},
  };
  return t;
}

}  // namespace convcore::kernels::avx2
