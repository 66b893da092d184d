// conv_backward.hpp — the backward passes of the direct and im2col registry entries
// (ops/algorithm.hpp), implemented in conv2d_backward.cpp; each entry's supports,
// auto_rank and plan hand the backward passes to these.
//   backward_data, stride 1: the forward convolution of dy with the flipped, transposed
//     weights, on the entry's own forward plan (direct or im2col); ranked as that entry's
//     forward rank on the transposed problem, so `auto` chooses as for a forward layer.
//   backward_data, larger strides (im2col only): GEMM + col2im in bands.
//   backward_weights: im2col — a GEMM over the gathered input; direct — one output
//     channel per group only (depthwise, one-channel filtering), dot products of rows.
#pragma once

#include <memory>

#include "ops/algorithm.hpp"

namespace convcore::detail {

bool backward_supports(Algorithm id, const Conv2dParams& p, Pass pass);
int backward_auto_rank(Algorithm id, const Conv2dParams& p, Pass pass, DType dtype);
template <class T>
std::unique_ptr<ConvPlan<T>> backward_plan(Algorithm id, const PlanRequest<T>& r);

}  // namespace convcore::detail
