// pool_window.hpp — the average pooling's divisor along one axis, shared by the forward
// (pool.cpp) and backward (pool_backward.cpp) drivers.
#pragma once

#include <algorithm>
#include <cstdint>

namespace convcore::detail {

// Taps of window o counted by the average: clipped to the padded input (count_include_pad)
// or to the input.
inline int64_t window_count(int64_t o, int64_t in, int64_t k, int64_t pad, int64_t stride,
                            bool count_include_pad) {
  int64_t start = o * stride - pad;
  int64_t end = std::min(start + k, in + pad);
  if (count_include_pad) return end - start;
  start = std::max<int64_t>(start, 0);
  end = std::min(end, in);
  return end - start;
}

}  // namespace convcore::detail
