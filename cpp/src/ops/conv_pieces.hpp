// conv_pieces.hpp — pieces of the forward convolution that the backward passes reuse:
// the padding modes (conv2d.cpp) and the im2col gather (im2col.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "convcore/conv2d.hpp"

namespace convcore::detail {

// Index of padded coordinate i (may be outside [0, n)) in the source, by padding mode
// (zeros: i itself).
int64_t source_index(int64_t i, int64_t n, PaddingMode mode);
// The source columns (source_index) of the pad_left left, then pad_right right padded
// columns of a row.
std::vector<int64_t> edge_columns(const Conv2dParams& p);
// xp (N, C, H + pad_top + pad_bottom, W + pad_left + pad_right) = x padded by p.padding_mode.
template <class T>
void pad_planes(const Conv2dParams& p, const T* x, T* xp);
// What the algorithms run: zero padding only. Other padding modes become a padded input
// (H, W the padded sizes, no padding).
Conv2dParams inner_params(const Conv2dParams& p);

// B block of the im2col matrix: rows [k0, k0 + kc) (row kk = (c, r, s)) for output pixels
// [p0, p0 + np) of the group's input xg (C/groups planes), row-major with row length
// ld >= np, columns past np zero.
template <class T>
void im2col_gather(const Conv2dParams& p, const T* xg, int64_t k0, int64_t kc, int64_t p0,
                   int64_t np, int64_t ld, T* b);

}  // namespace convcore::detail
