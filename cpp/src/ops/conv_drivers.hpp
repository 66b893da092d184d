// conv_drivers.hpp — the conv2d algorithms behind Conv2dOp (conv2d.cpp).
//
// Each algorithm packs the weights once into the layout its kernels read (`*_pack`) and
// then runs any number of times (`*_run`). Drivers see validated parameters with zero
// padding only: conv2d.cpp materialises the other padding modes first.
#pragma once

#include <memory>

#include "convcore/conv2d.hpp"

namespace convcore::detail {

// Index of padded coordinate i (may be outside [0, n)) in the source, by padding mode
// (zeros: i itself).
int64_t source_index(int64_t i, int64_t n, PaddingMode mode);
// xp (N, C, H + pad_top + pad_bottom, W + pad_left + pad_right) = x padded by p.padding_mode.
template <class T>
void pad_planes(const Conv2dParams& p, const T* x, T* xp);
// What the drivers run: zero padding only. Other padding modes become a padded input
// (H, W the padded sizes, no padding).
Conv2dParams inner_params(const Conv2dParams& p);

template <class T>
struct PackedWeights {
  virtual ~PackedWeights() = default;
};

template <class T>
std::unique_ptr<PackedWeights<T>> direct_pack(const Conv2dParams& p, const T* w);
template <class T>
void direct_run(const Conv2dParams& p, const PackedWeights<T>& w, const T* x, const T* bias,
                T* y);

template <class T>
std::unique_ptr<PackedWeights<T>> im2col_pack(const Conv2dParams& p, const T* w);
template <class T>
void im2col_run(const Conv2dParams& p, const PackedWeights<T>& w, const T* x, const T* bias,
                T* y);
// The same without packing the weights first: w is (K, C/groups, R, S) as given, packed
// block by block into scratch (one-call conv2d).
template <class T>
void im2col_run_once(const Conv2dParams& p, const T* w, const T* x, const T* bias, T* y);
// B block of the im2col matrix: rows [k0, k0 + kc) (row kk = (c, r, s)) for output pixels
// [p0, p0 + np) of the group's input xg (C/groups planes), row-major with row length
// ld >= np, columns past np zero.
template <class T>
void im2col_gather(const Conv2dParams& p, const T* xg, int64_t k0, int64_t kc, int64_t p0,
                   int64_t np, int64_t ld, T* b);
// Scratch bytes im2col_run or im2col_run_once take for these parameters on `threads` threads.
template <class T>
int64_t im2col_workspace_bytes(const Conv2dParams& p, int threads);

}  // namespace convcore::detail
