// depthwise.hpp — the direct algorithm's depthwise path with the channels in the vector
// lanes (depthwise.cpp): one input and one output channel per group, where the per-plane
// kernel (direct_plane) would leave its vector lanes empty.
#pragma once

#include <memory>

#include "ops/algorithm.hpp"

namespace convcore::detail {

// The layout rule: true where a depthwise layer (C == K == groups) runs depthwise_nchwc
// rather than direct_plane (README.md "How auto chooses").
bool depthwise_nchwc_rule(const Conv2dParams& p);

// The forward plan on the request's table's depthwise_nchwc kernel, or null where the
// rule keeps direct_plane (direct.cpp then makes its own plan).
template <class T>
std::unique_ptr<ConvPlan<T>> depthwise_nchwc_plan(const PlanRequest<T>& r);

}  // namespace convcore::detail
