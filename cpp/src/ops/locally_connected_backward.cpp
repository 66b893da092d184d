// locally_connected_backward.cpp — the locally connected layer's gradients. Every weight
// belongs to one output position, so tasks are positions for grad_weight and grad_bias
// (the batch summed in order) and (image, input channel) planes for grad_input (every
// position's taps scattered into the plane in position order): each element is written
// by one task in a fixed order, the same bits for any thread count.
#include <algorithm>
#include <string>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "threadpool.hpp"

namespace convcore {
namespace {

template <class T>
void lc_grad(const LocallyConnected2dParams& p, const T* g, const T* x, const T* w, T* gi, T* gw,
             T* gb) {
  p.validate();
  const int64_t Ho = p.out_h(), Wo = p.out_w(), HW = p.H * p.W, P = Ho * Wo;
  const int64_t RS = p.R * p.S, CRS = p.C * RS, bank = p.K * CRS;
  if (p.N > 0 && g == nullptr) throw value_error("locally_connected2d_backward: grad_output must not be null");
  if (gi != nullptr && p.N > 0 && w == nullptr)
    throw value_error("locally_connected2d_backward: weight must not be null");
  if (gw != nullptr && p.N > 0 && x == nullptr)
    throw value_error("locally_connected2d_backward: input must not be null");
  // Input row and column of tap (r, s) at output (i, j); outside [0, H) x [0, W): none.
  auto ih_of = [&](int64_t i, int64_t r) { return i * p.stride_h + r * p.dilation_h - p.pad_top; };
  auto iw_of = [&](int64_t j, int64_t s) { return j * p.stride_w + s * p.dilation_w - p.pad_left; };
  if (gw != nullptr || gb != nullptr)
    detail::parallel_for(P, [&](int64_t pos) {
      const int64_t i = pos / Wo, j = pos % Wo;
      if (gb != nullptr)
        for (int64_t k = 0; k < p.K; ++k) {
          T s = T(0);
          for (int64_t n = 0; n < p.N; ++n) s += g[(n * p.K + k) * P + pos];
          gb[k * P + pos] = s;
        }
      if (gw == nullptr) return;
      T* out = gw + pos * bank;
      std::fill(out, out + bank, T(0));
      for (int64_t n = 0; n < p.N; ++n)
        for (int64_t k = 0; k < p.K; ++k) {
          const T gv = g[(n * p.K + k) * P + pos];
          T* ok = out + k * CRS;
          for (int64_t c = 0; c < p.C; ++c) {
            const T* xc = x + (n * p.C + c) * HW;
            for (int64_t r = 0; r < p.R; ++r) {
              const int64_t ih = ih_of(i, r);
              if (ih < 0 || ih >= p.H) continue;
              for (int64_t s = 0; s < p.S; ++s) {
                const int64_t iw = iw_of(j, s);
                if (iw >= 0 && iw < p.W) ok[(c * p.R + r) * p.S + s] += gv * xc[ih * p.W + iw];
              }
            }
          }
        }
    });
  if (gi != nullptr)
    detail::parallel_for(p.N * p.C, [&](int64_t plane) {
      const int64_t n = plane / p.C, c = plane % p.C;
      T* out = gi + plane * HW;
      std::fill(out, out + HW, T(0));
      for (int64_t pos = 0; pos < P; ++pos) {
        const int64_t i = pos / Wo, j = pos % Wo;
        for (int64_t k = 0; k < p.K; ++k) {
          const T gv = g[(n * p.K + k) * P + pos];
          const T* wk = w + pos * bank + k * CRS + c * RS;
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = ih_of(i, r);
            if (ih < 0 || ih >= p.H) continue;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t iw = iw_of(j, s);
              if (iw >= 0 && iw < p.W) out[ih * p.W + iw] += gv * wk[r * p.S + s];
            }
          }
        }
      }
    });
}

}  // namespace

void locally_connected2d_backward(const LocallyConnected2dParams& p, const float* g,
                                  const float* x, const float* w, float* gi, float* gw,
                                  float* gb) {
  lc_grad(p, g, x, w, gi, gw, gb);
}
void locally_connected2d_backward(const LocallyConnected2dParams& p, const double* g,
                                  const double* x, const double* w, double* gi, double* gw,
                                  double* gb) {
  lc_grad(p, g, x, w, gi, gw, gb);
}

}  // namespace convcore
