// winograd_avx2.cpp — the Winograd F(4x4 / 2x2, 3x3) input, output and weight transforms on AVX2 +
// FMA: 8 tiles (float) / 4 tiles (double) of one channel per ymm, the tail through lane
// masks; the body and the matrices are winograd_transform.hpp's (bitwise the scalar twin's
// before a non-exact activation).
#include "kernels/avx2/avx2.hpp"
#include "kernels/avx2/vec_avx2.hpp"
#include "kernels/winograd_transform.hpp"

namespace convcore::kernels::avx2 {

CONVCORE_WINOGRAD_KERNELS(avx2, BodyOps)

}  // namespace convcore::kernels::avx2
