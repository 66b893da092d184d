// winograd_avx512.cpp — the Winograd F(4x4 / 2x2, 3x3) input, output and weight transforms on
// AVX-512: 16 tiles (float) / 8 tiles (double) of one channel per zmm, the tail through a
// lane mask; the body and the matrices are winograd_transform.hpp's (bitwise the scalar
// twin's before a non-exact activation; activations per ymm half, as the AVX2 kernels).
#include "kernels/avx512/avx512.hpp"
#include "kernels/avx512/vec_avx512.hpp"
#include "kernels/winograd_transform.hpp"

namespace convcore::kernels::avx512 {

CONVCORE_WINOGRAD_KERNELS(avx512, BodyOps)

}  // namespace convcore::kernels::avx512
