// im2col.cpp — convolution as GEMM: Y_g (Kg x P) = W_g (Kg x Cg*R*S) * X_g (Cg*R*S x P)
// per image n and group g (groups are independent GEMMs), P = Ho*Wo output pixels, on the
// driver of gemm.hpp.
//
// A = the weights, packed once (im2col_pack) into MR-row panels. B = the im2col matrix,
// never materialised: the gather is fused into B's packing, one KC x NC block at a time
// (NC output pixels, at most kGemmBlockBytes), so the extra memory is one such block per
// thread whatever the image size. A 1x1 stride-1 unpadded convolution's B is the input
// itself (channel rows of P pixels): the kernel reads it in place, and only a partial
// last panel is copied. Tasks: (image, group, pixel tile, and row blocks of the output
// channels when there are fewer pixel tiles than threads).
#include <algorithm>
#include <numeric>
#include <vector>

#include "checked.hpp"
#include "ops/conv_drivers.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

// How a call is cut into tasks; a function of the sizes and the thread count only.
struct Im2colPlan {
  int64_t kc;               // KC block length
  int64_t nc, tiles;        // pixels per tile, tiles per (image, group)
  int64_t mrows, mblocks;   // output channels per row block, row blocks per group
  bool in_place;            // 1x1 stride 1, no padding: B is the input
  int64_t scratch_elems;    // per task
};

template <class T>
Im2colPlan plan(const Conv2dParams& p, int64_t MR, int64_t NR, int64_t threads) {
  Im2colPlan pl;
  const int64_t P = p.out_h() * p.out_w(), Kg = p.K / p.groups;
  const int64_t kd = p.C / p.groups * p.R * p.S;
  pl.kc = gemm_kc(kd);
  pl.in_place = p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
  const int64_t nc_cache =
      std::max<int64_t>(1, kGemmBlockBytes / static_cast<int64_t>(sizeof(T)) / pl.kc / NR) * NR;
  const int64_t base = p.N * p.groups;
  // Enough tiles that the tasks divide evenly over the threads (balanced tiles).
  const int64_t even = threads / std::gcd(base, threads);
  const int64_t tiles0 = ceil_div(ceil_div(P, nc_cache), even) * even;
  const int64_t tiles1 = std::min(tiles0, ceil_div(P, NR));
  pl.nc = ceil_div(ceil_div(P, tiles1), NR) * NR;
  pl.tiles = ceil_div(P, pl.nc);
  // Few pixels (deep layers): split the output channels too.
  const int64_t want = ceil_div(threads, base * pl.tiles);
  const int64_t mblocks0 = std::min(want, ceil_div(Kg, MR));
  pl.mrows = ceil_div(ceil_div(Kg, mblocks0), MR) * MR;
  pl.mblocks = ceil_div(Kg, pl.mrows);
  pl.scratch_elems = pl.kc * (pl.in_place ? NR : pl.nc);
  return pl;
}

// B block: rows [k0, k0 + kc) of the im2col matrix (row kk = (c, r, s)) for output pixels
// [p0, p0 + np), as NR-wide panels (columns past np zero). Pixels of one output row form
// a segment; a stride-1 segment's taps are one contiguous run of the input row.
template <class T>
void gather(const Conv2dParams& p, const T* xg, int64_t k0, int64_t kc, int64_t p0,
            int64_t np, int64_t NR, T* b) {
  const int64_t Wo = p.out_w(), RS = p.R * p.S;
  struct Seg {
    int64_t j, count, ih0, iw0;
  };
  std::vector<Seg> segs;
  segs.reserve(static_cast<size_t>(NR));
  for (int64_t j0 = 0; j0 < np; j0 += NR) {
    const int64_t nj = std::min(NR, np - j0);
    segs.clear();
    for (int64_t j = 0; j < nj;) {
      const int64_t pix = p0 + j0 + j, oh = pix / Wo, ow = pix % Wo;
      const int64_t count = std::min(nj - j, Wo - ow);
      segs.push_back({j, count, oh * p.stride_h - p.pad_top, ow * p.stride_w - p.pad_left});
      j += count;
    }
    int64_t c = k0 / RS, r = (k0 % RS) / p.S, s = k0 % p.S;
    for (int64_t kk = 0; kk < kc; ++kk) {
      T* row = b + kk * NR;
      const T* xc = xg + c * p.H * p.W;
      for (const Seg& sg : segs) {
        T* out = row + sg.j;
        const int64_t ih = sg.ih0 + r * p.dilation_h;
        if (ih < 0 || ih >= p.H) {
          std::fill(out, out + sg.count, T(0));
          continue;
        }
        const T* src = xc + ih * p.W;
        const int64_t iw0 = sg.iw0 + s * p.dilation_w;
        if (p.stride_w == 1) {
          // Taps iw0 .. iw0 + count - 1; the ones outside [0, W) are zero.
          const int64_t lo = std::clamp<int64_t>(-iw0, 0, sg.count);
          const int64_t hi = std::clamp<int64_t>(p.W - iw0, lo, sg.count);
          std::fill(out, out + lo, T(0));
          std::copy(src + iw0 + lo, src + iw0 + hi, out + lo);
          std::fill(out + hi, out + sg.count, T(0));
        } else {
          for (int64_t t = 0; t < sg.count; ++t) {
            const int64_t iw = iw0 + t * p.stride_w;
            out[t] = iw >= 0 && iw < p.W ? src[iw] : T(0);
          }
        }
      }
      std::fill(row + nj, row + NR, T(0));
      if (++s == p.S) {
        s = 0;
        if (++r == p.R) r = 0, ++c;
      }
    }
    b += kc * NR;
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
int64_t im2col_workspace_bytes(const Conv2dParams& p, int threads) {
  const auto gk = gemm_kernel<T>();
  const Im2colPlan pl = plan<T>(p, gk.mr, gk.nr, threads);
  const int64_t tasks = checked_product("im2col tasks", p.N, p.groups, pl.tiles, pl.mblocks);
  return checked_product("im2col workspace", std::min<int64_t>(threads, tasks),
                         pl.scratch_elems, static_cast<int64_t>(sizeof(T)));
}

template <class T>
std::unique_ptr<PackedWeights<T>> im2col_pack(const Conv2dParams& p, const T* w) {
  const int64_t MR = gemm_kernel<T>().mr;
  const int64_t Kg = p.K / p.groups, kd = p.C / p.groups * p.R * p.S;
  const int64_t per_group = checked_product("im2col packed weights", ceil_div(Kg, MR), MR, kd);
  auto packed = std::make_unique<Im2colWeights<T>>(
      checked_mul(per_group, p.groups, "im2col packed weights"), per_group, MR);
  for (int64_t g = 0; g < p.groups; ++g)
    pack_panels(w + g * Kg * kd, kd, Kg, 0, kd, MR, packed->a.get() + g * per_group);
  return packed;
}

template <class T>
void im2col_run(const Conv2dParams& p, const PackedWeights<T>& packed, const T* x,
                const T* bias, T* y) {
  const auto& pw = static_cast<const Im2colWeights<T>&>(packed);
  const auto gk = gemm_kernel<T>();
  if (gk.mr != pw.mr) throw value_error("conv2d: weights were packed for another ISA");
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t P = p.out_h() * p.out_w();
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, kd = Cg * p.R * p.S;
  const Im2colPlan pl = plan<T>(p, MR, NR, pool_threads());
  const int64_t per_image = pl.tiles * pl.mblocks;

  parallel_for(p.N * p.groups * per_image, [&](int64_t t) {
    const int64_t mblk = t % pl.mblocks, tile = (t / pl.mblocks) % pl.tiles;
    const int64_t g = (t / per_image) % p.groups, n = t / (per_image * p.groups);
    const int64_t p0 = tile * pl.nc, np = std::min(pl.nc, P - p0);
    const int64_t m0 = mblk * pl.mrows, rows = std::min(pl.mrows, Kg - m0);
    T* buf = static_cast<T*>(
        thread_scratch(static_cast<size_t>(pl.scratch_elems) * sizeof(T)));
    const T* xg = x + (n * p.C + g * Cg) * p.H * p.W;
    const T* ag = pw.a.get() + g * pw.per_group + m0 * kd;
    auto a_src = [&](int64_t i0, int64_t, int64_t k0, int64_t) {
      return Panels<T>{ag + i0 * kd + k0 * MR, MR * kd, MR};
    };
    auto gather_src = [&](int64_t k0, int64_t kc) {
      gather(p, xg, k0, kc, p0, np, NR, buf);
      return Panels<T>{buf, NR * kc, NR};
    };
    auto in_place_src = [&](int64_t k0, int64_t kc) {
      const int64_t full = np / NR;
      if (full * NR < np) gather(p, xg, k0, kc, p0 + full * NR, np - full * NR, NR, buf);
      return Panels<T>{xg + k0 * P + p0, NR, P, full, buf, NR};
    };
    T* c = y + (n * p.K + g * Kg + m0) * P + p0;
    const T* bg = bias != nullptr ? bias + g * Kg + m0 : nullptr;
    if (pl.in_place)
      gemm_tile(gk, rows, np, kd, a_src, in_place_src, c, P, bg, false, p.activation);
    else
      gemm_tile(gk, rows, np, kd, a_src, gather_src, c, P, bg, false, p.activation);
  });
}

#define CONVCORE_IM2COL(T)                                                                 \
  template int64_t im2col_workspace_bytes<T>(const Conv2dParams&, int);                    \
  template std::unique_ptr<PackedWeights<T>> im2col_pack(const Conv2dParams&, const T*);   \
  template void im2col_run(const Conv2dParams&, const PackedWeights<T>&, const T*, const T*, \
                           T*);
CONVCORE_IM2COL(float)
CONVCORE_IM2COL(double)
#undef CONVCORE_IM2COL

}  // namespace convcore::detail
