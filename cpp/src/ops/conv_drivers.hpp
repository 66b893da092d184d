// conv_drivers.hpp — the conv2d algorithms behind Conv2dOp (conv2d.cpp).
//
// Each algorithm packs the weights once into the layout its kernels read (`*_pack`) and
// then runs any number of times (`*_run`). Drivers see validated parameters with zero
// padding only: conv2d.cpp materialises the other padding modes first.
#pragma once

#include <memory>

#include "convcore/conv2d.hpp"

namespace convcore::detail {

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
// Scratch bytes im2col_run or im2col_run_once take for these parameters on `threads` threads.
template <class T>
int64_t im2col_workspace_bytes(const Conv2dParams& p, int threads);

}  // namespace convcore::detail
