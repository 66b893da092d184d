// locally_connected_backward.cpp — the locally connected layer's gradients. Every weight
// belongs to one output position, so each position's gradients are small GEMMs, run
// through the forward's locally_connected kernel (dot products of contiguous rows) on
// operands laid out here with the images innermost:
//   grad_weight[pos] (K x kd) = sum_n g[n, :, pos]^T patch_n: the reduction over images
//     is the kernel's dot length; a block of images' input is transposed once to
//     (C, H, W, nb), so a patch is kd contiguous rows of nb images; one task per position;
//   grad_input: a patch's gradient (kd x nb) = w[pos]^T (kd x K) * g[:, :, pos]^T: the
//     reduction over filters is the dot length, so the position's weights are transposed
//     (kd x K); one task per block of images, every position's patch gradient added in
//     position order to the block's gradient kept as (C, H, W, nb), then transposed.
// Block sizes depend on the geometry alone and grad_weight adds its blocks in order: the
// same bits for any thread count. Workspace: a transposed input block (kInputBytes) and
// per thread the block's operands (kBlockBytes), one position's weights and, for
// grad_input, a transposed gradient block (kInputBytes).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {
namespace {

constexpr int64_t kBlockBytes = 1 << 18;
constexpr int64_t kInputBlock = 16;
constexpr int64_t kInputBytes = 1 << 22;  // a block of images' transposed input

template <class T>
void lc_grad(const LocallyConnected2dParams& p, const T* g, const T* x, const T* w, T* gi, T* gw,
             T* gb) {
  p.validate();
  const int64_t Ho = p.out_h(), Wo = p.out_w(), HW = p.H * p.W, P = Ho * Wo;
  const int64_t RS = p.R * p.S, kd = p.C * RS, bank = p.K * kd;
  // Small layers on the calling thread (each pass does about the forward's multiply-adds).
  std::optional<detail::InlineScope> inline_scope;
  if (static_cast<double>(p.N) * P * bank * ((gi != nullptr) + (gw != nullptr)) <
      static_cast<double>(detail::kInlineWork * detail::kMacsPerWork))
    inline_scope.emplace();
  if (p.N > 0 && g == nullptr) throw value_error("locally_connected2d_backward: grad_output must not be null");
  if (gi != nullptr && p.N > 0 && w == nullptr)
    throw value_error("locally_connected2d_backward: weight must not be null");
  if (gw != nullptr && p.N > 0 && x == nullptr)
    throw value_error("locally_connected2d_backward: input must not be null");
  if (p.N == 0) {
    if (gw != nullptr) std::fill(gw, gw + P * bank, T(0));
    if (gb != nullptr) std::fill(gb, gb + p.K * P, T(0));
    return;
  }
  const auto dot = detail::kernels<T>().locally_connected.fn;
  const Activation none{};
  // Input row and column of tap (r, s) at output (i, j); outside [0, H) x [0, W): none.
  auto ih_of = [&](int64_t i, int64_t r) { return i * p.stride_h + r * p.dilation_h - p.pad_top; };
  auto iw_of = [&](int64_t j, int64_t s) { return j * p.stride_w + s * p.dilation_w - p.pad_left; };
  // Images per block: operands of about kBlockBytes (at least one image).
  const int64_t row_len = std::max<int64_t>(kd + p.K, 1);
  const int64_t nb_max = std::clamp<int64_t>(
      kBlockBytes / static_cast<int64_t>(sizeof(T)) / row_len, 1, p.N);
  if (gb != nullptr)
    detail::parallel_for(P, [&](int64_t pos) {
      for (int64_t k = 0; k < p.K; ++k) {
        T s = T(0);
        for (int64_t n = 0; n < p.N; ++n) s += g[(n * p.K + k) * P + pos];
        gb[k * P + pos] = s;
      }
    });
  if (gw != nullptr) {
    // Blocks of nw images, one after the other: the block's input transposed once to
    // (C, H, W, nw), so that a patch's taps are contiguous rows of nw images (with nw = 1
    // that is the input itself); then one task per position.
    const int64_t nw = std::clamp<int64_t>(kInputBytes / static_cast<int64_t>(sizeof(T)) /
                                               std::max<int64_t>(p.C * HW, 1),
                                           1, nb_max);
    std::vector<T> xt_buf(nw > 1 ? static_cast<size_t>(nw * p.C * HW) : 0);
    // gt (K x nw), pt (kd x nw), a block's product (K x kd).
    const size_t scratch = static_cast<size_t>(detail::checked_add(
        detail::checked_mul(nw, p.K + kd, "lc scratch"), bank, "lc scratch")) * sizeof(T);
    for (int64_t n0 = 0; n0 < p.N; n0 += nw) {
      const int64_t nb = std::min(nw, p.N - n0);
      const T* xt = x + n0 * p.C * HW;
      if (nw > 1) {
        detail::parallel_for(p.C, [&](int64_t c) {
          T* dst = xt_buf.data() + c * HW * nb;
          for (int64_t n = 0; n < nb; ++n) {
            const T* src = x + ((n0 + n) * p.C + c) * HW;
            for (int64_t e = 0; e < HW; ++e) dst[e * nb + n] = src[e];
          }
        });
        xt = xt_buf.data();
      }
      detail::parallel_for(P, [&](int64_t pos) {
        const int64_t i = pos / Wo, j = pos % Wo;
        T* gt = static_cast<T*>(detail::thread_scratch(scratch));
        T* pt = gt + nw * p.K;
        T* part = pt + nw * kd;
        T* out = gw + pos * bank;
        for (int64_t k = 0; k < p.K; ++k)
          for (int64_t n = 0; n < nb; ++n) gt[k * nb + n] = g[((n0 + n) * p.K + k) * P + pos];
        for (int64_t c = 0; c < p.C; ++c)
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = ih_of(i, r);
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t iw = iw_of(j, s);
              T* dst = pt + ((c * p.R + r) * p.S + s) * nb;
              if (ih < 0 || ih >= p.H || iw < 0 || iw >= p.W) {
                std::fill(dst, dst + nb, T(0));
              } else {
                const T* src = xt + (c * HW + ih * p.W + iw) * nb;
                std::copy(src, src + nb, dst);
              }
            }
          }
        // y[t*1 + k*kd] = sum_n gt[k, n] * pt[t, n]
        const kernels::LocallyConnectedArgs a{nb, p.K, kd, 0, kd, 1};
        if (n0 == 0) {
          dot(a, gt, pt, nullptr, out, none);
        } else {
          dot(a, gt, pt, nullptr, part, none);
          for (int64_t e = 0; e < bank; ++e) out[e] += part[e];
        }
      });
    }
  }
  if (gi != nullptr) {
    // Blocks of nb_in images, at most kInputBlock so that a batch makes several tasks
    // (each block transposes every position's weights once: 1/nb of its multiply-adds).
    // A block's gradient is accumulated transposed, (C, H, W, nb), so that a patch's
    // gradient is added as contiguous rows of nb images, then transposed into the planes
    // (with nb = 1 that layout is the planes themselves).
    // gk (nb x K), wt (kd x K), the patches' gradients (kd x nb), the block's gradient.
    const int64_t nb_in = std::clamp<int64_t>(kInputBytes / static_cast<int64_t>(sizeof(T)) /
                                                  std::max<int64_t>(p.C * HW, 1),
                                              1, std::min<int64_t>(nb_max, kInputBlock));
    const int64_t acc_len = nb_in > 1 ? nb_in * p.C * HW : 0;
    const size_t scratch = static_cast<size_t>(detail::checked_add(
        detail::checked_add(detail::checked_mul(nb_in, p.K + kd, "lc scratch"), bank, "lc scratch"),
        acc_len, "lc scratch")) * sizeof(T);
    detail::parallel_for(detail::ceil_div(p.N, nb_in), [&](int64_t blk) {
      const int64_t n0 = blk * nb_in, nb = std::min(nb_in, p.N - n0);
      T* gk = static_cast<T*>(detail::thread_scratch(scratch));
      T* wt = gk + nb_in * p.K;
      T* dp = wt + bank;
      T* acc = nb_in > 1 ? dp + nb_in * kd : gi + n0 * p.C * HW;
      std::fill(acc, acc + nb * p.C * HW, T(0));
      // y[t*nb + n] = sum_k wt[t, k] * gk[n, k]
      const kernels::LocallyConnectedArgs a{p.K, kd, nb, 0, nb, 1};
      for (int64_t pos = 0; pos < P; ++pos) {
        const int64_t i = pos / Wo, j = pos % Wo;
        for (int64_t n = 0; n < nb; ++n)
          for (int64_t k = 0; k < p.K; ++k) gk[n * p.K + k] = g[((n0 + n) * p.K + k) * P + pos];
        const T* wp = w + pos * bank;
        for (int64_t k = 0; k < p.K; ++k)
          for (int64_t t = 0; t < kd; ++t) wt[t * p.K + k] = wp[k * kd + t];
        dot(a, wt, gk, nullptr, dp, none);
        for (int64_t c = 0; c < p.C; ++c)
          for (int64_t r = 0; r < p.R; ++r) {
            const int64_t ih = ih_of(i, r);
            if (ih < 0 || ih >= p.H) continue;
            for (int64_t s = 0; s < p.S; ++s) {
              const int64_t iw = iw_of(j, s);
              if (iw < 0 || iw >= p.W) continue;
              T* dst = acc + (c * HW + ih * p.W + iw) * nb;
              const T* d = dp + ((c * p.R + r) * p.S + s) * nb;
              for (int64_t n = 0; n < nb; ++n) dst[n] += d[n];
            }
          }
      }
      if (nb_in > 1)
        for (int64_t n = 0; n < nb; ++n)
          for (int64_t c = 0; c < p.C; ++c) {
            T* plane = gi + ((n0 + n) * p.C + c) * HW;
            const T* src = acc + c * HW * nb + n;
            for (int64_t e = 0; e < HW; ++e) plane[e] = src[e * nb];
          }
    });
  }
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
