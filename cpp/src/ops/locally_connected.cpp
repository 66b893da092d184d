// locally_connected.cpp — the locally connected layer's driver. Tasks are blocks of
// output positions; for each position a task gathers the patches of up to kImages
// images into its scratch ((n, c, r, s) rows, zeros for padding) and hands them, with
// the position's filter bank as the user laid it out, to the locally_connected kernel.
#include "convcore/locally_connected.hpp"

#include <algorithm>
#include <string>

#include "checked.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {

using detail::checked_add;
using detail::checked_mul;
using detail::checked_product;

int64_t LocallyConnected2dParams::out_h() const {
  return (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1;
}
int64_t LocallyConnected2dParams::out_w() const {
  return (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1;
}

namespace {

std::string pair(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

constexpr int64_t kImages = 64;      // images gathered per kernel call (bounds the scratch)
constexpr int64_t kTaskWork = 1 << 16;  // multiply-adds per task, about: hides the hand-off

template <class T>
kernels::LocallyConnectedFn<T> lc_kernel();
template <>
kernels::LocallyConnectedFn<float> lc_kernel<float>() {
  return detail::kernels().locally_connected_f32.fn;
}
template <>
kernels::LocallyConnectedFn<double> lc_kernel<double>() {
  return detail::kernels().locally_connected_f64.fn;
}

// patches[n*kd + (c*R + r)*S + s] = x[n0 + n, c, ih0 + r*dh, iw0 + s*dw] (0 outside).
template <class T>
void gather(const LocallyConnected2dParams& p, const T* x, int64_t n0, int64_t nb, int64_t ih0,
            int64_t iw0, T* patches) {
  for (int64_t n = 0; n < nb; ++n) {
    for (int64_t c = 0; c < p.C; ++c) {
      const T* xc = x + ((n0 + n) * p.C + c) * p.H * p.W;
      for (int64_t r = 0; r < p.R; ++r) {
        const int64_t ih = ih0 + r * p.dilation_h;
        const bool row_in = ih >= 0 && ih < p.H;
        for (int64_t s = 0; s < p.S; ++s) {
          const int64_t iw = iw0 + s * p.dilation_w;
          *patches++ = row_in && iw >= 0 && iw < p.W ? xc[ih * p.W + iw] : T(0);
        }
      }
    }
  }
}

template <class T>
void run(const LocallyConnected2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  p.validate();
  if (p.N == 0) return;
  if (x == nullptr || w == nullptr || y == nullptr)
    throw value_error("locally_connected2d: input, weight and output must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w(), P = Ho * Wo;
  const int64_t kd = p.C * p.R * p.S;
  const int64_t nb_max = std::min(p.N, kImages);
  const size_t scratch = static_cast<size_t>(checked_mul(nb_max, kd, "patches")) * sizeof(T);
  const int64_t per_pos = std::max<int64_t>(1, p.N * p.K * kd);
  const int64_t chunk = std::max<int64_t>(1, kTaskWork / per_pos);
  const auto kernel = lc_kernel<T>();
  detail::parallel_for(detail::ceil_div(P, chunk), [&](int64_t t) {
    T* patches = static_cast<T*>(detail::thread_scratch(scratch));
    for (int64_t pos = t * chunk; pos < std::min(P, (t + 1) * chunk); ++pos) {
      const int64_t i = pos / Wo, j = pos % Wo;
      const T* wp = w + pos * p.K * kd;
      for (int64_t n0 = 0; n0 < p.N; n0 += kImages) {
        const int64_t nb = std::min(kImages, p.N - n0);
        gather(p, x, n0, nb, i * p.stride_h - p.pad_top, j * p.stride_w - p.pad_left, patches);
        const kernels::LocallyConnectedArgs a{kd, p.K, nb, P, P, p.K * P};
        kernel(a, wp, patches, bias != nullptr ? bias + pos : nullptr, y + n0 * p.K * P + pos,
               p.activation);
      }
    }
  });
}

}  // namespace

void LocallyConnected2dParams::validate() const {
  const char* f = "locally_connected2d: ";
  if (N < 0) throw value_error(std::string(f) + "batch size must be >= 0, got " + std::to_string(N));
  if (C < 1 || H < 1 || W < 1)
    throw value_error(std::string(f) + "input channels, height and width must be >= 1, got (C, H, W) = (" +
                      std::to_string(C) + ", " + std::to_string(H) + ", " + std::to_string(W) + ")");
  if (K < 1 || R < 1 || S < 1)
    throw value_error(std::string(f) + "out_channels and kernel size must be >= 1, got (K, R, S) = (" +
                      std::to_string(K) + ", " + std::to_string(R) + ", " + std::to_string(S) + ")");
  if (stride_h < 1 || stride_w < 1)
    throw value_error(std::string(f) + "stride must be >= 1, got stride=" + pair(stride_h, stride_w));
  if (dilation_h < 1 || dilation_w < 1)
    throw value_error(std::string(f) + "dilation must be >= 1, got dilation=" + pair(dilation_h, dilation_w));
  if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0)
    throw value_error(std::string(f) + "padding must be >= 0");
  checked_product("locally_connected2d input", N, C, H, W);
  const int64_t hp = checked_add(checked_add(H, pad_top, "padding"), pad_bottom, "padding");
  const int64_t wp = checked_add(checked_add(W, pad_left, "padding"), pad_right, "padding");
  const int64_t eh = checked_add(checked_mul(dilation_h, R - 1, "dilation"), 1, "dilation");
  const int64_t ew = checked_add(checked_mul(dilation_w, S - 1, "dilation"), 1, "dilation");
  if (eh > hp || ew > wp)
    throw value_error(std::string(f) + "kernel size " + pair(eh, ew) +
                      " (with dilation) is larger than the padded input " + pair(hp, wp));
  checked_product("locally_connected2d weight", out_h(), out_w(), K, C, R, S);
  checked_product("locally_connected2d output", N, K, out_h(), out_w());
  checked_product("locally_connected2d work", N, K, out_h(), out_w(), C, R, S);
}

void locally_connected2d(const LocallyConnected2dParams& p, const float* x, const float* w,
                         const float* bias, float* y) {
  run(p, x, w, bias, y);
}
void locally_connected2d(const LocallyConnected2dParams& p, const double* x, const double* w,
                         const double* bias, double* y) {
  run(p, x, w, bias, y);
}

}  // namespace convcore
