// table.cpp — the AVX-512 kernel table; slots without an AVX-512 kernel hold the AVX2 one
// (every CPU with the AVX-512 subsets we require has AVX2 and FMA).
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx512/avx512.hpp"

namespace convcore::kernels::avx512 {

namespace {

// Slots are assigned by name; a slot left out stays null, which dispatch.cpp refuses
// (check_complete). constexpr: built at compile time, so no code compiled with these
// flags runs before dispatch has checked the CPU.
constexpr KernelTable make() {
  KernelTable t{};
  t.isa = "avx512";
  t.pack_nr_f32 = {"pack_32_avx512", "avx512", &pack_f32, 0, kGemmNrF32};
  t.pack_nr_f64 = {"pack_16_avx512", "avx512", &pack_f64, 0, kGemmNrF64};
  t.gemm_f32 = {"gemm_14x32_avx512", "avx512", &gemm_f32, kGemmMrF32, kGemmNrF32};
  t.gemm_f64 = {"gemm_14x16_avx512", "avx512", &gemm_f64, kGemmMrF64, kGemmNrF64};
  t.activate_f32 = {"activate_f32_avx2", "avx2", &avx2::activate_f32};
  t.activate_f64 = {"activate_f64_avx2", "avx2", &avx2::activate_f64};
  t.direct_tile_f32 = {"direct_tile_f32_avx512", "avx512", &direct_tile_f32, 8, 48};
  t.direct_tile_f64 = {"direct_tile_f64_avx512", "avx512", &direct_tile_f64, 8, 24};
  t.direct_plane_f32 = {"direct_plane_f32_avx512", "avx512", &direct_plane_f32, 1, 128, true};
  t.direct_plane_f64 = {"direct_plane_f64_avx512", "avx512", &direct_plane_f64, 1, 64, true};
  t.locally_connected_f32 = {"locally_connected_f32_avx2", "avx2",
                             &avx2::locally_connected_f32};
  t.locally_connected_f64 = {"locally_connected_f64_avx2", "avx2",
                             &avx2::locally_connected_f64};
  t.locally_connected_rows_f32 = {"locally_connected_rows_12x8_f32_avx2", "avx2",
                                  &avx2::locally_connected_rows_f32, 12, 8};
  t.locally_connected_rows_f64 = {"locally_connected_rows_6x8_f64_avx2", "avx2",
                                  &avx2::locally_connected_rows_f64, 6, 8};
  t.max_pool_row_f32 = {"max_pool_row_f32_avx2", "avx2", &avx2::max_pool_row_f32};
  t.max_pool_row_f64 = {"max_pool_row_f64_avx2", "avx2", &avx2::max_pool_row_f64};
  t.avg_pool_row_f32 = {"avg_pool_row_f32_avx2", "avx2", &avx2::avg_pool_row_f32};
  t.avg_pool_row_f64 = {"avg_pool_row_f64_avx2", "avx2", &avx2::avg_pool_row_f64};
  t.peak_fma_f32 = {"peak_fma_12x16_avx512", "avx512", &peak_fma_12x16, 12, 16};
  return t;
}

}  // namespace

const KernelTable& table() {
  static constexpr KernelTable t = make();
  return t;
}

}  // namespace convcore::kernels::avx512
