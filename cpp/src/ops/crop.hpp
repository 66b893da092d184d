// crop.hpp — padding wider than the kernel reaches (crop.cpp): output rows and columns
// whose window lies wholly in the zero padding are act(bias), computed by no kernel.
#pragma once

#include <memory>

#include "ops/algorithm.hpp"

namespace convcore::detail {

// Output rows and columns whose window reads only zero padding, at each side.
struct ZeroBorder {
  int64_t top = 0, bottom = 0, left = 0, right = 0;
  bool empty() const { return top + bottom + left + right == 0; }
};

// The zero border of a zero-padded problem, and in *inner the problem of the rest: the
// same input, the padding reduced so that its output is the uncropped output's rows
// [top, Ho - bottom) and columns [left, Wo - right). Empty (and *inner = p) when no
// output reads only padding or when every one does.
ZeroBorder zero_border(const Conv2dParams& p, Conv2dParams* inner);

// A forward plan that runs `inner` (made for the inner problem) into a per-thread buffer,
// copies its output into place and fills the border with act(bias) (the table's activate
// on 0 + bias: the bits a kernel's epilogue gives an all-zero window). Valid only for
// finite weights (0 * inf is NaN in the uncropped sum).
template <class T>
std::unique_ptr<ConvPlan<T>> cropped_plan(const Conv2dParams& p, const ZeroBorder& border,
                                          const kernels::KernelTable<T>& kernels, const T* bias,
                                          std::unique_ptr<ConvPlan<T>> inner);

}  // namespace convcore::detail
