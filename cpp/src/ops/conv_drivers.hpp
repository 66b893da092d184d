// conv_drivers.hpp — the conv2d algorithms, called by conv2d.cpp after validation and
// after non-zero padding modes were materialised (so drivers see zero padding only).
#pragma once

#include "convcore/conv2d.hpp"

namespace convcore::detail {

template <class T>
void conv2d_direct(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);
template <class T>
void conv2d_im2col(const Conv2dParams& p, const T* x, const T* w, const T* bias, T* y);

}  // namespace convcore::detail
