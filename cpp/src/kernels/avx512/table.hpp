// table.hpp — the AVX-512 tables: the AVX2 tables plus the AVX-512 kernels. The slots left
// to AVX2 (activate, locally connected, pooling) are those where 32 registers and lane
// masks do not pay; every CPU with the AVX-512 subsets we require has AVX2 and FMA.
#pragma once

#include "kernels/avx2/table.hpp"
#include "kernels/avx512/avx512.hpp"

namespace convcore::kernels::avx512 {
namespace {  // compile-time only, as scalar/table.hpp explains

constexpr IsaTables make_tables() {
  IsaTables t = avx2::make_tables();
  t.isa = "avx512";
  t.f32.isa = t.f64.isa = "avx512";
  t.f32.pack_nr = {"pack_32_avx512", "avx512", &pack_32_avx512, 0, kGemmNrF32};
  t.f64.pack_nr = {"pack_16_avx512", "avx512", &pack_16_avx512, 0, kGemmNrF64};
  t.f32.pack_mr = {"pack_14_avx512", "avx512", &pack_14_avx512, 0, kGemmMrF32};
  t.f64.pack_mr = {"pack_14_avx512", "avx512", &pack_14_avx512, 0, kGemmMrF64};
  t.f32.gemm = {"gemm_14x32_avx512", "avx512", &gemm_14x32_avx512, kGemmMrF32, kGemmNrF32};
  t.f64.gemm = {"gemm_14x16_avx512", "avx512", &gemm_14x16_avx512, kGemmMrF64, kGemmNrF64};
  t.f32.direct_tile = {"direct_tile_f32_avx512", "avx512", &direct_tile_f32_avx512, 8, 48};
  t.f64.direct_tile = {"direct_tile_f64_avx512", "avx512", &direct_tile_f64_avx512, 8, 24};
  t.f32.direct_plane = {"direct_plane_f32_avx512", "avx512", &direct_plane_f32_avx512, 1, 128,
                        true};
  t.f64.direct_plane = {"direct_plane_f64_avx512", "avx512", &direct_plane_f64_avx512, 1, 64,
                        true};
  t.f32.direct_nchwc = {"direct_nchwc_f32_avx512", "avx512", &direct_nchwc_f32_avx512, 32,
                        kDirectNchwcPixels};
  t.f64.direct_nchwc = {"direct_nchwc_f64_avx512", "avx512", &direct_nchwc_f64_avx512, 16,
                        kDirectNchwcPixels};
  t.f32.depthwise_nchwc = {"depthwise_nchwc_f32_avx512", "avx512", &depthwise_nchwc_f32_avx512,
                           kGemmNrF32, kDepthwisePixels};
  t.f64.depthwise_nchwc = {"depthwise_nchwc_f64_avx512", "avx512", &depthwise_nchwc_f64_avx512,
                           kGemmNrF64, kDepthwisePixels};
  t.f32.tap_dots = {"tap_dots_f32_avx512", "avx512", &tap_dots_f32_avx512, 4, 6};
  t.f64.tap_dots = {"tap_dots_f64_avx512", "avx512", &tap_dots_f64_avx512, 4, 6};
  t.f32.winograd_pack = {"winograd_pack_f32_avx512", "avx512", &winograd_pack_f32_avx512, 0, 16};
  t.f64.winograd_pack = {"winograd_pack_f64_avx512", "avx512", &winograd_pack_f64_avx512, 0, 8};
  t.f32.winograd_unpack = {"winograd_unpack_f32_avx512", "avx512", &winograd_unpack_f32_avx512, 0, 16};
  t.f64.winograd_unpack = {"winograd_unpack_f64_avx512", "avx512", &winograd_unpack_f64_avx512, 0, 8};
  t.f32.winograd_input = {"winograd_input_f32_avx512", "avx512", &winograd_input_f32_avx512, 0, 16};
  t.f64.winograd_input = {"winograd_input_f64_avx512", "avx512", &winograd_input_f64_avx512, 0, 8};
  t.f32.winograd_output = {"winograd_output_f32_avx512", "avx512", &winograd_output_f32_avx512, 0,
                           16};
  t.f64.winograd_output = {"winograd_output_f64_avx512", "avx512", &winograd_output_f64_avx512, 0,
                           8};
  t.f32.winograd_weights = {"winograd_weights_f32_avx512", "avx512", &winograd_weights_f32_avx512, 0,
                            16};
  t.f64.winograd_weights = {"winograd_weights_f64_avx512", "avx512", &winograd_weights_f64_avx512, 0,
                            8};
  t.peak_fma = {"peak_fma_12x16_avx512", "avx512", &peak_fma_12x16_avx512, 12, 16};
  return t;
}

}  // namespace
}  // namespace convcore::kernels::avx512
