// im2col.cpp — convolution as GEMM: Y_g (Kg x P) = W_g (Kg x Cg*R*S) * X_g (Cg*R*S x P)
// per image n and group g, P = Ho*Wo output pixels.
//
// The im2col gather is fused into the packing of B: a task takes NC output pixels and
// packs their patches straight into NR-wide panels, so the only extra memory is one
// B tile per thread (at most kTileBytes) and the packed weights. The reduction over
// Cg*R*S runs in KC-long blocks (accumulate into C, epilogue on the last block).
#include <algorithm>
#include <cstring>
#include <vector>

#include "checked.hpp"
#include "dispatch.hpp"
#include "ops/conv_drivers.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

constexpr int64_t kTileBytes = 1 << 20;  // one packed B tile (im2col workspace) per thread
constexpr int64_t kKC = 256;             // reduction block: A (MR x KC) + B (KC x NR) in L1/L2

template <class T>
const kernels::Kernel<kernels::GemmFn<T>>& gemm_kernel();
template <>
const kernels::Kernel<kernels::GemmFn<float>>& gemm_kernel<float>() { return kernels().gemm_f32; }
template <>
const kernels::Kernel<kernels::GemmFn<double>>& gemm_kernel<double>() {
  return kernels().gemm_f64;
}

// A panels: for each MR-row block of output channels, kd x MR (rows past Kg are zero).
template <class T>
void pack_weights(const T* w, int64_t Kg, int64_t kd, int64_t MR, T* a) {
  for (int64_t i0 = 0; i0 < Kg; i0 += MR) {
    for (int64_t kk = 0; kk < kd; ++kk)
      for (int64_t i = 0; i < MR; ++i)
        *a++ = i0 + i < Kg ? w[(i0 + i) * kd + kk] : T(0);
  }
}

// B panels for output pixels [p0, p0 + np): for each NR-wide panel, kd x NR patches
// (columns past np are zero).
template <class T>
void pack_patches(const Conv2dParams& p, const T* xg, int64_t Cg, int64_t p0, int64_t np,
                  int64_t NR, T* b) {
  const int64_t Wo = p.out_w();
  std::vector<int64_t> ih0(NR), iw0(NR);
  for (int64_t j0 = 0; j0 < np; j0 += NR) {
    const int64_t nj = std::min(NR, np - j0);
    for (int64_t j = 0; j < nj; ++j) {
      const int64_t pix = p0 + j0 + j;
      ih0[j] = (pix / Wo) * p.stride_h - p.pad_top;
      iw0[j] = (pix % Wo) * p.stride_w - p.pad_left;
    }
    for (int64_t c = 0; c < Cg; ++c) {
      const T* xc = xg + c * p.H * p.W;
      for (int64_t r = 0; r < p.R; ++r) {
        for (int64_t s = 0; s < p.S; ++s) {
          for (int64_t j = 0; j < nj; ++j) {
            const int64_t ih = ih0[j] + r * p.dilation_h, iw = iw0[j] + s * p.dilation_w;
            b[j] = (ih >= 0 && ih < p.H && iw >= 0 && iw < p.W) ? xc[ih * p.W + iw] : T(0);
          }
          for (int64_t j = nj; j < NR; ++j) b[j] = T(0);
          b += NR;
        }
      }
    }
  }
}


// A panels of every group, for the GEMM kernel active when packed (its MR).
template <class T>
struct Im2colWeights : PackedWeights<T> {
  Buffer<T> a;
  int64_t per_group;  // elements of one group's panels
  int64_t mr;
  Im2colWeights(int64_t n, int64_t per_group, int64_t mr) : a(n), per_group(per_group), mr(mr) {}
};

}  // namespace

template <class T>
std::unique_ptr<PackedWeights<T>> im2col_pack(const Conv2dParams& p, const T* w) {
  const int64_t MR = gemm_kernel<T>().mr;
  const int64_t Kg = p.K / p.groups, kd = p.C / p.groups * p.R * p.S;
  const int64_t per_group = checked_product("im2col packed weights", ceil_div(Kg, MR), MR, kd);
  auto packed = std::make_unique<Im2colWeights<T>>(
      checked_mul(per_group, p.groups, "im2col packed weights"), per_group, MR);
  for (int64_t g = 0; g < p.groups; ++g)
    pack_weights(w + g * Kg * kd, Kg, kd, MR, packed->a.get() + g * per_group);
  return packed;
}

template <class T>
void im2col_run(const Conv2dParams& p, const PackedWeights<T>& packed, const T* x,
                const T* bias, T* y) {
  const auto& pw = static_cast<const Im2colWeights<T>&>(packed);
  const auto& gk = gemm_kernel<T>();
  if (gk.mr != pw.mr) throw value_error("conv2d: weights were packed for another ISA");
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t Ho = p.out_h(), Wo = p.out_w(), P = Ho * Wo;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, kd = Cg * p.R * p.S;
  const int64_t a_group = pw.per_group;

  // NC: pixels per task, a multiple of NR whose B tile fits kTileBytes (at least NR).
  const int64_t nc_fit = kTileBytes / static_cast<int64_t>(sizeof(T)) / kd / NR * NR;
  const int64_t NC = std::max(NR, std::min(nc_fit, ceil_div(P, NR) * NR));
  const int64_t tiles = ceil_div(P, NC);
  const int64_t b_tile = checked_product("im2col workspace", NC, kd);

  parallel_for(p.N * p.groups * tiles, [&](int64_t t) {
    const int64_t tile = t % tiles, g = (t / tiles) % p.groups, n = t / (tiles * p.groups);
    const int64_t p0 = tile * NC, np = std::min(NC, P - p0);
    T* b = static_cast<T*>(thread_scratch(static_cast<size_t>(b_tile) * sizeof(T)));
    pack_patches(p, x + (n * p.C + g * Cg) * p.H * p.W, Cg, p0, np, NR, b);
    const T* ag = pw.a.get() + g * a_group;
    T* yg = y + (n * p.K + g * Kg) * P + p0;
    const T* bg = bias != nullptr ? bias + g * Kg : nullptr;
    for (int64_t k0 = 0; k0 < kd; k0 += kKC) {
      const int64_t kc = std::min(kKC, kd - k0);
      const bool last = k0 + kc == kd;
      const Activation act = last ? p.activation : Activation{};
      for (int64_t j0 = 0; j0 < np; j0 += NR) {
        const T* bj = b + j0 * kd + k0 * NR;
        for (int64_t i0 = 0; i0 < Kg; i0 += MR) {
          gk.fn(kc, ag + i0 * kd + k0 * MR, bj, yg + i0 * P + j0, P, std::min(MR, Kg - i0),
                std::min(NR, np - j0), k0 > 0, last && bg ? bg + i0 : nullptr, act);
        }
      }
    }
  });
}

template std::unique_ptr<PackedWeights<float>> im2col_pack(const Conv2dParams&, const float*);
template std::unique_ptr<PackedWeights<double>> im2col_pack(const Conv2dParams&,
                                                            const double*);
template void im2col_run(const Conv2dParams&, const PackedWeights<float>&, const float*,
                         const float*, float*);
template void im2col_run(const Conv2dParams&, const PackedWeights<double>&, const double*,
                         const double*, double*);

}  // namespace convcore::detail
