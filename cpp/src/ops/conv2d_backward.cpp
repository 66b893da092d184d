// conv2d_backward.cpp — conv2d's gradients (convcore/backward.hpp): grad_input, grad_weight,
// grad_bias. No ISA code: the GEMM micro-kernel and the forward conv2d do the arithmetic.
//
// Padding modes other than zeros run on the padded input (as the forward does) and fold
// the gradient of the padded input back onto the cells each padded cell copies.
//
// grad_input, stride 1: the gradient of the padded input is the forward convolution of
//   grad_output, padded by dilation*(R-1) rows (and columns) on each side, with the
//   weights flipped in R and S and transposed in K and C per group; with zero padding no
//   larger than that span this is a forward conv2d straight into grad_input (its `auto`
//   choice of direct or im2col, its bounded workspace), else into the padded gradient.
// grad_input, larger strides: per (image, group) a GEMM of the transposed weights
//   (C/groups*R*S x K/groups, packed once per call) with grad_output (read in place) into a
//   column block of at most kColBytes, scattered back (col2im). Tasks are bands of output
//   rows whose input rows overlap only their neighbours' (dilation*(R-1) < band*stride +
//   stride), so even bands run first, then odd ones: no element is written by two tasks
//   at once, and each is summed in a fixed order.
// grad_weight: dW_g (K/g x C/g*R*S) = sum over images and pixels of dY_g * im2col(x)_g^T, the
//   GEMM reduction running over blocks of at most 256 pixels of one image (the im2col gather
//   of the block, packed into B panels). The blocks of all images form a fixed number of
//   chunks (at most kMaxChunks, fewer when their partial sums would exceed kPartialBytes, a
//   function of the sizes only); tasks are (group, row block, column block, chunk), each
//   chunk's partial sums added in chunk order afterwards: bitwise identical results for any
//   thread count. One output channel per group (depthwise, one-channel filtering): the
//   GEMM would use one row of its tile, so each tap is a sum of dot products of rows.
#include <algorithm>
#include <string>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "ops/backward_util.hpp"
#include "ops/conv_drivers.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {
namespace {

using detail::Buffer;
using detail::ceil_div;
using detail::checked_product;
using detail::Panels;

constexpr int64_t kMaxChunks = 8;              // weight-gradient reduction chunks, at most
constexpr int64_t kPartialBytes = 4 << 20;     // their partial sums together, at most
constexpr int64_t kColBytes = 256 * 1024;      // col2im column block
constexpr int64_t kBandPixels = 1024;          // col2im band of output rows, about
constexpr int64_t kRowItemPixels = 2048;       // depthwise grad_weight: pixels per item

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ----------------------------------------------------------------------------- grad_weight

// The reduction split: items (blocks of one image's pixels) and chunks of items.
struct WeightPlan {
  int64_t item_len, items_per_image, items, chunks;
};

WeightPlan weight_plan(const Conv2dParams& q, int64_t item_len, int64_t elem) {
  WeightPlan w;
  const int64_t P = q.out_h() * q.out_w();
  w.item_len = item_len;
  w.items_per_image = ceil_div(P, item_len);
  w.items = q.N * w.items_per_image;
  const int64_t wbytes = q.K * (q.C / q.groups) * q.R * q.S * elem;
  const int64_t fit = 1 + kPartialBytes / std::max<int64_t>(wbytes, 1);
  w.chunks = std::clamp<int64_t>(std::min(fit, kMaxChunks), 1, std::max<int64_t>(w.items, 1));
  return w;
}

// One output channel per group: a kernel-row item is `item_len` output pixels' worth of
// whole rows; the GEMM's items are blocks of at most KC pixels.
bool per_row_weight_grad(const Conv2dParams& q) { return q.K / q.groups == 1; }

int64_t weight_item_len(const Conv2dParams& q) {
  const int64_t P = q.out_h() * q.out_w();
  if (per_row_weight_grad(q))
    return std::max<int64_t>(1, kRowItemPixels / q.out_w()) * q.out_w();
  return detail::gemm_kc(P);
}

// Scratch elements of one weight-gradient GEMM task.
struct WeightTiles {
  int64_t mrows, mblocks, ncols, cblocks;
  int64_t ld, scratch;
};

template <class T>
WeightTiles weight_tiles(const Conv2dParams& q, int64_t item_len) {
  const auto gk = detail::gemm_kernel<T>();
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t Kg = q.K / q.groups, kd = q.C / q.groups * q.R * q.S;
  WeightTiles t;
  const int64_t mc = detail::gemm_mc<T>() / MR * MR;
  t.mblocks = ceil_div(Kg, mc);
  t.mrows = round_up(ceil_div(Kg, t.mblocks), MR);
  const int64_t nc_max = std::max<int64_t>(
      NR, detail::kGemmBlockBytes / static_cast<int64_t>(sizeof(T)) / item_len / NR * NR);
  t.cblocks = ceil_div(kd, nc_max);
  t.ncols = round_up(ceil_div(kd, t.cblocks), NR);
  t.ld = round_up(item_len, 64 / static_cast<int64_t>(sizeof(T)));
  // gathered rows (ncols x ld), their B panels (ncols x item_len), one A block.
  t.scratch = t.ncols * t.ld + t.ncols * item_len + t.mrows * item_len;
  return t;
}

// Chunk c's target: grad_weight itself for chunk 0, else its partial-sum buffer.
template <class T>
T* chunk_target(T* gw, T* partial, int64_t wsize, int64_t c) {
  return c == 0 ? gw : partial + (c - 1) * wsize;
}

// gw += partial sums of chunks 1.., in chunk order.
template <class T>
void add_partials(T* gw, const T* partial, int64_t wsize, int64_t chunks) {
  if (chunks <= 1) return;
  constexpr int64_t B = 4096;
  detail::parallel_for(ceil_div(wsize, B), [&](int64_t t) {
    const int64_t i0 = t * B, i1 = std::min(wsize, i0 + B);
    for (int64_t c = 1; c < chunks; ++c) {
      const T* src = partial + (c - 1) * wsize;
      for (int64_t i = i0; i < i1; ++i) gw[i] += src[i];
    }
  });
}

template <class T>
void weight_grad_gemm(const Conv2dParams& q, const WeightPlan& wp, const T* g, const T* x,
                      T* gw, T* partial) {
  const auto gk = detail::gemm_kernel<T>();
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t P = q.out_h() * q.out_w(), HW = q.H * q.W;
  const int64_t Cg = q.C / q.groups, Kg = q.K / q.groups, kd = Cg * q.R * q.S;
  const int64_t wsize = q.K * kd;
  const WeightTiles wt = weight_tiles<T>(q, wp.item_len);
  const int64_t tasks = q.groups * wt.mblocks * wt.cblocks * wp.chunks;
  detail::parallel_for(tasks, [&](int64_t t) {
    const int64_t c = t % wp.chunks, cb = (t / wp.chunks) % wt.cblocks;
    const int64_t mb = (t / (wp.chunks * wt.cblocks)) % wt.mblocks;
    const int64_t grp = t / (wp.chunks * wt.cblocks * wt.mblocks);
    const int64_t m0 = mb * wt.mrows, rows = std::min(wt.mrows, Kg - m0);
    const int64_t j0 = cb * wt.ncols, cols = std::min(wt.ncols, kd - j0);
    if (rows <= 0 || cols <= 0) return;
    T* buf = static_cast<T*>(detail::thread_scratch(static_cast<size_t>(wt.scratch) * sizeof(T)));
    T* bpan = buf + wt.ncols * wt.ld;
    T* abuf = bpan + wt.ncols * wp.item_len;
    T* out = chunk_target(gw, partial, wsize, c) + (grp * Kg + m0) * kd + j0;
    const int64_t first = wp.items * c / wp.chunks, last = wp.items * (c + 1) / wp.chunks;
    for (int64_t it = first; it < last; ++it) {
      const int64_t n = it / wp.items_per_image;
      const int64_t q0 = it % wp.items_per_image * wp.item_len, kc = std::min(wp.item_len, P - q0);
      detail::im2col_gather(q, x + (n * q.C + grp * Cg) * HW, j0, cols, q0, kc, wt.ld, buf);
      detail::pack_b_panels(gk, buf, wt.ld, cols, 0, kc, bpan);
      const T* gy = g + (n * q.K + grp * Kg + m0) * P + q0;
      auto a_src = [&](int64_t i0, int64_t mc, int64_t k0, int64_t kcc) {
        detail::pack_panels(gy + i0 * P, P, mc, k0, kcc, MR, abuf);
        return Panels<T>{abuf, MR * kcc, MR};
      };
      auto b_src = [&](int64_t k0, int64_t) { return Panels<T>{bpan + k0 * NR, NR * kc, NR}; };
      detail::gemm_tile(gk, rows, cols, kc, a_src, b_src, out, kd, static_cast<const T*>(nullptr),
                        false, Activation{}, it != first);
    }
  });
}

// One output channel per group, one item (output rows [i0, i1) of image n, channel cc of
// group grp): out[r*S + s] += the dot products of the grad_output rows with the input rows
// tap (r, s) reads, only the columns whose tap falls inside the input.
template <class T>
void rows_item_exact(const Conv2dParams& q, const T* gy, const T* xc, int64_t i0, int64_t i1,
                     T* strided, T* out) {
  const int64_t Wo = q.out_w(), sw = q.stride_w;
  for (int64_t i = i0; i < i1; ++i)
    for (int64_t r = 0; r < q.R; ++r) {
      const int64_t ih = i * q.stride_h + r * q.dilation_h - q.pad_top;
      if (ih < 0 || ih >= q.H) continue;
      for (int64_t s = 0; s < q.S; ++s) {
        // Columns j with iw = j*sw + s*dw - pad_left in [0, W).
        const int64_t off = s * q.dilation_w - q.pad_left;
        const int64_t lo = off >= 0 ? 0 : ceil_div(-off, sw);
        const int64_t hi = std::clamp<int64_t>(ceil_div(q.W - off, sw), lo, Wo);
        if (hi <= lo) continue;
        const T* xr = xc + ih * q.W + lo * sw + off;
        if (sw > 1) {
          for (int64_t j = 0; j < hi - lo; ++j) strided[j] = xr[j * sw];
          xr = strided;
        }
        out[r * q.S + s] += detail::lane_dot(gy + i * Wo + lo, xr, hi - lo);
      }
    }
}

// Stride 1: the item's grad_output rows, zero-extended to the padded width Wp (gp, built
// by the caller), against the zero-padded input rows they read (xp): each tap is then one
// long dot product, gp's flat index against xp's shifted by r*dh*Wp + s*dw (the products
// past a row's end meet gp's zeros). False, with nothing added, when the input rows hold a
// NaN or infinity: 0 * inf would turn those products into NaN (rows_item_exact then).
template <class T>
bool rows_item_flat(const Conv2dParams& q, const T* gp, const T* xc, int64_t i0, int64_t i1,
                    T* xp, T* out) {
  const int64_t Wp = q.W + q.pad_left + q.pad_right, rows = i1 - i0;
  const int64_t xrows = rows + q.dilation_h * (q.R - 1), tail = q.dilation_w * (q.S - 1);
  bool finite = true;
  for (int64_t u = 0; u < xrows; ++u) {
    T* row = xp + u * Wp;
    const int64_t ih = i0 + u - q.pad_top;
    std::fill(row, row + Wp, T(0));
    if (ih < 0 || ih >= q.H) continue;
    const T* src = xc + ih * q.W;
    finite = finite && detail::all_finite(src, q.W);
    std::copy(src, src + q.W, row + q.pad_left);
  }
  if (!finite) return false;
  std::fill(xp + xrows * Wp, xp + xrows * Wp + tail, T(0));
  for (int64_t r = 0; r < q.R; ++r)
    for (int64_t s = 0; s < q.S; ++s)
      out[r * q.S + s] +=
          detail::lane_dot(gp, xp + r * q.dilation_h * Wp + s * q.dilation_w, rows * Wp);
  return true;
}

// One output channel per group (depthwise, one-channel filtering): the GEMM would fill one
// row of its tile, so each tap is a sum of dot products instead; tasks (group, chunk).
template <class T>
void weight_grad_rows(const Conv2dParams& q, const WeightPlan& wp, const T* g, const T* x,
                      T* gw, T* partial) {
  const int64_t Ho = q.out_h(), Wo = q.out_w(), P = Ho * Wo, HW = q.H * q.W;
  const int64_t Cg = q.C / q.groups, RS = q.R * q.S, kd = Cg * RS, wsize = q.K * kd;
  const bool flat = q.stride_h == 1 && q.stride_w == 1;
  const int64_t Wp = q.W + q.pad_left + q.pad_right, rows_max = wp.item_len / Wo;
  const int64_t gp_elems = rows_max * Wp;
  const int64_t scratch = flat ? gp_elems + (rows_max + q.dilation_h * (q.R - 1)) * Wp +
                                     q.dilation_w * (q.S - 1)
                               : Wo;
  detail::parallel_for(q.groups * wp.chunks, [&](int64_t t) {
    const int64_t c = t % wp.chunks, grp = t / wp.chunks;
    T* out = chunk_target(gw, partial, wsize, c) + grp * kd;
    std::fill(out, out + kd, T(0));
    T* buf = static_cast<T*>(detail::thread_scratch(static_cast<size_t>(scratch) * sizeof(T)));
    const int64_t first = wp.items * c / wp.chunks, last = wp.items * (c + 1) / wp.chunks;
    for (int64_t it = first; it < last; ++it) {
      const int64_t n = it / wp.items_per_image;
      const int64_t i0 = it % wp.items_per_image * rows_max, i1 = std::min(Ho, i0 + rows_max);
      const T* gy = g + (n * q.K + grp) * P;
      if (flat)
        for (int64_t i = i0; i < i1; ++i) {
          T* row = buf + (i - i0) * Wp;
          std::copy(gy + i * Wo, gy + (i + 1) * Wo, row);
          std::fill(row + Wo, row + Wp, T(0));
        }
      for (int64_t cc = 0; cc < Cg; ++cc) {
        const T* xc = x + (n * q.C + grp * Cg + cc) * HW;
        if (!flat || !rows_item_flat(q, buf, xc, i0, i1, buf + gp_elems, out + cc * RS))
          rows_item_exact(q, gy, xc, i0, i1, flat ? buf + gp_elems : buf, out + cc * RS);
      }
    }
  });
}

// ----------------------------------------------------------------------------- grad_input

// The padded input's gradient gp (N, C, Hp, Wp) folded onto grad_input (N, C, H, W): each
// padded cell adds to the cell it copies (zeros: the cells inside only).
template <class T>
void fold_padding(const Conv2dParams& p, const T* gp, T* gi) {
  const int64_t Hp = p.H + p.pad_top + p.pad_bottom, Wp = p.W + p.pad_left + p.pad_right;
  detail::parallel_for(p.N * p.C, [&](int64_t plane) {
    const T* src = gp + plane * Hp * Wp;
    T* dst = gi + plane * p.H * p.W;
    std::fill(dst, dst + p.H * p.W, T(0));
    for (int64_t u = 0; u < Hp; ++u) {
      const int64_t ih = detail::source_index(u - p.pad_top, p.H, p.padding_mode);
      if (ih < 0 || ih >= p.H) continue;
      for (int64_t v = 0; v < Wp; ++v) {
        const int64_t iw = detail::source_index(v - p.pad_left, p.W, p.padding_mode);
        if (iw >= 0 && iw < p.W) dst[ih * p.W + iw] += src[u * Wp + v];
      }
    }
  });
}

// Stride 1: the forward convolution of grad_output with the flipped, transposed weights.
// The forward call's parameters; `direct` when it writes grad_input itself (zero padding
// no larger than the kernel's span), else it writes the padded input's gradient.
Conv2dParams transposed_params(const Conv2dParams& p, bool& direct) {
  const int64_t eh = p.dilation_h * (p.R - 1), ew = p.dilation_w * (p.S - 1);
  direct = p.padding_mode == PaddingMode::zeros && p.pad_top <= eh && p.pad_bottom <= eh &&
           p.pad_left <= ew && p.pad_right <= ew;
  Conv2dParams f;
  f.N = p.N, f.C = p.K, f.H = p.out_h(), f.W = p.out_w();
  f.K = p.C, f.R = p.R, f.S = p.S;
  f.dilation_h = p.dilation_h, f.dilation_w = p.dilation_w;
  f.groups = p.groups;
  f.pad_top = direct ? eh - p.pad_top : eh;
  f.pad_bottom = direct ? eh - p.pad_bottom : eh;
  f.pad_left = direct ? ew - p.pad_left : ew;
  f.pad_right = direct ? ew - p.pad_right : ew;
  // Never Winograd (its error bound is not the classic one); today's auto never picks it.
  f.algorithm = choose_algorithm(f);
  return f;
}

template <class T>
void input_grad_transposed(const Conv2dParams& p, const T* g, const T* w, T* gi) {
  bool direct;
  const Conv2dParams f = transposed_params(p, direct);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, RS = p.R * p.S;
  Buffer<T> wt(p.K * Cg * RS);
  detail::parallel_for(p.K, [&](int64_t kk) {  // wt[g*Cg + c, k, R-1-r, S-1-s] = w[g*Kg + k, c, r, s]
    const int64_t grp = kk / Kg, k = kk % Kg;
    for (int64_t c = 0; c < Cg; ++c) {
      const T* src = w + (kk * Cg + c) * RS;
      T* dst = wt.get() + ((grp * Cg + c) * Kg + k) * RS;
      for (int64_t t = 0; t < RS; ++t) dst[RS - 1 - t] = src[t];
    }
  });
  if (direct) {
    conv2d(f, g, wt.get(), static_cast<const T*>(nullptr), gi);
    return;
  }
  Buffer<T> gp(checked_product("conv2d_backward padded gradient", p.N, p.C, f.out_h(), f.out_w()));
  conv2d(f, g, wt.get(), static_cast<const T*>(nullptr), gp.get());
  fold_padding(p, gp.get(), gi);
}

// Any stride: GEMM into column blocks, col2im in bands (header). q: zero padding (the
// padded sizes for other modes); the target t (Ht x Wt planes) holds padded coordinate
// (u, v) at (u - off_h, v - off_w), cells outside dropped.
template <class T>
void input_grad_col2im(const Conv2dParams& q, const T* g, const T* w, T* tgt, int64_t Ht,
                       int64_t Wt, int64_t off_h, int64_t off_w) {
  const auto gk = detail::gemm_kernel<T>();
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t Ho = q.out_h(), Wo = q.out_w(), P = Ho * Wo;
  const int64_t Cg = q.C / q.groups, Kg = q.K / q.groups, RS = q.R * q.S, kd = Cg * RS;
  // A = W_g^T (kd x Kg) in MR-row panels: panel i at i*MR*Kg, element (kk, i) at kk*MR + i.
  const int64_t per_group = round_up(kd, MR) * Kg;
  Buffer<T> a(checked_product("conv2d_backward packed weights", per_group, q.groups));
  detail::parallel_for(q.groups, [&](int64_t grp) {
    const T* wg = w + grp * Kg * kd;
    T* out = a.get() + grp * per_group;
    for (int64_t i0 = 0; i0 < kd; i0 += MR, out += MR * Kg) {
      const int64_t m = std::min(MR, kd - i0);
      for (int64_t kk = 0; kk < Kg; ++kk) {
        std::copy(wg + kk * kd + i0, wg + kk * kd + i0 + m, out + kk * MR);
        std::fill(out + kk * MR + m, out + (kk + 1) * MR, T(0));
      }
    }
  });
  const int64_t np_max = std::max<int64_t>(NR, kColBytes / static_cast<int64_t>(sizeof(T)) / kd / NR * NR);
  const int64_t KC = detail::gemm_kc(Kg);
  const int64_t scratch = kd * np_max + KC * NR;
  const int64_t band = std::min(
      Ho, std::max({int64_t{1}, q.dilation_h * (q.R - 1) / q.stride_h, ceil_div(kBandPixels, Wo)}));
  const int64_t bands = ceil_div(Ho, band);
  detail::parallel_for(q.N * q.C, [&](int64_t plane) {
    std::fill(tgt + plane * Ht * Wt, tgt + (plane + 1) * Ht * Wt, T(0));
  });
  for (int64_t phase = 0; phase < 2; ++phase) {
    const int64_t nb = (bands - phase + 1) / 2;  // bands phase, phase + 2, ...
    if (nb <= 0) continue;
    detail::parallel_for(q.N * q.groups * nb, [&](int64_t t) {
      const int64_t b = (t % nb) * 2 + phase, grp = (t / nb) % q.groups, n = t / (nb * q.groups);
      T* col = static_cast<T*>(detail::thread_scratch(static_cast<size_t>(scratch) * sizeof(T)));
      T* edge = col + kd * np_max;
      const T* gy = g + (n * q.K + grp * Kg) * P;
      const T* ag = a.get() + grp * per_group;
      T* tg = tgt + (n * q.C + grp * Cg) * Ht * Wt;
      const int64_t pend = std::min(Ho, (b + 1) * band) * Wo;
      for (int64_t p0 = b * band * Wo; p0 < pend; p0 += np_max) {
        const int64_t np = std::min(np_max, pend - p0), full = np / NR;
        auto a_src = [&](int64_t i0, int64_t, int64_t k0, int64_t) {
          return Panels<T>{ag + i0 * Kg + k0 * MR, MR * Kg, MR};
        };
        auto b_src = [&](int64_t k0, int64_t kc) {
          const int64_t rest = np - full * NR;
          if (rest > 0)
            for (int64_t kk = 0; kk < kc; ++kk) {
              const T* src = gy + (k0 + kk) * P + p0 + full * NR;
              std::copy(src, src + rest, edge + kk * NR);
              std::fill(edge + kk * NR + rest, edge + (kk + 1) * NR, T(0));
            }
          return Panels<T>{gy + k0 * P + p0, NR, P, full, edge, NR};
        };
        detail::gemm_tile(gk, kd, np, Kg, a_src, b_src, col, np, static_cast<const T*>(nullptr),
                          false, Activation{});
        // col2im: row (c, r, s) of the block adds to the cells its taps read.
        for (int64_t row = 0; row < kd; ++row) {
          const int64_t c = row / RS, r = row % RS / q.S, s = row % q.S;
          const T* cr = col + row * np;
          T* tc = tg + c * Ht * Wt;
          for (int64_t j = 0; j < np;) {
            const int64_t pix = p0 + j, oh = pix / Wo, ow0 = pix % Wo;
            const int64_t count = std::min(np - j, Wo - ow0);
            const int64_t ih = oh * q.stride_h + r * q.dilation_h - off_h;
            if (ih >= 0 && ih < Ht) {
              T* trow = tc + ih * Wt;
              const int64_t base = s * q.dilation_w - off_w;
              for (int64_t k = 0; k < count; ++k) {
                const int64_t iw = (ow0 + k) * q.stride_w + base;
                if (iw >= 0 && iw < Wt) trow[iw] += cr[j + k];
              }
            }
            j += count;
          }
        }
      }
    });
  }
}

template <class T>
void input_grad(const Conv2dParams& p, const T* g, const T* w, T* gi) {
  if (p.stride_h == 1 && p.stride_w == 1) return input_grad_transposed(p, g, w, gi);
  const Conv2dParams q = detail::inner_params(p);
  if (p.padding_mode == PaddingMode::zeros)
    return input_grad_col2im(q, g, w, gi, p.H, p.W, p.pad_top, p.pad_left);
  Buffer<T> gp(checked_product("conv2d_backward padded gradient", p.N, p.C, q.H, q.W));
  input_grad_col2im(q, g, w, gp.get(), q.H, q.W, 0, 0);
  fold_padding(p, gp.get(), gi);
}

template <class T>
void weight_grad(const Conv2dParams& p, const T* g, const T* x, T* gw) {
  const Conv2dParams q = detail::inner_params(p);
  Buffer<T> padded;
  if (p.padding_mode != PaddingMode::zeros) {
    padded = Buffer<T>(checked_product("conv2d_backward padded input", p.N, p.C, q.H, q.W));
    detail::pad_planes(p, x, padded.get());
    x = padded.get();
  }
  const int64_t wsize = p.K * (p.C / p.groups) * p.R * p.S;
  const WeightPlan wp = weight_plan(q, weight_item_len(q), sizeof(T));
  Buffer<T> partial(std::max<int64_t>(1, (wp.chunks - 1) * wsize));
  if (per_row_weight_grad(q))
    weight_grad_rows(q, wp, g, x, gw, partial.get());
  else
    weight_grad_gemm(q, wp, g, x, gw, partial.get());
  add_partials(gw, partial.get(), wsize, wp.chunks);
}

template <class T>
void backward(const Conv2dParams& p, const T* g, const T* x, const T* w, T* gi, T* gw, T* gb) {
  p.validate();
  const int64_t wsize = p.K * (p.C / p.groups) * p.R * p.S;
  if (p.N == 0) {  // empty sums
    if (gw != nullptr) std::fill(gw, gw + wsize, T(0));
    if (gb != nullptr) std::fill(gb, gb + p.K, T(0));
    return;
  }
  if (g == nullptr) throw value_error("conv2d_backward: grad_output must not be null");
  if (gi != nullptr && w == nullptr) throw value_error("conv2d_backward: weight must not be null");
  if (gw != nullptr && x == nullptr) throw value_error("conv2d_backward: input must not be null");
  if (gb != nullptr) detail::channel_sums(g, p.N, p.K, p.out_h() * p.out_w(), gb);
  if (gw != nullptr) weight_grad(p, g, x, gw);
  if (gi != nullptr) input_grad(p, g, w, gi);
}

}  // namespace

int64_t conv2d_backward_workspace_bytes(const Conv2dParams& p, int dtype_bytes, bool grad_input,
                                        bool grad_weight) {
  p.validate();
  if (dtype_bytes != 4 && dtype_bytes != 8)
    throw value_error("conv2d_backward_workspace_bytes: dtype_bytes must be 4 or 8, got " +
                      std::to_string(dtype_bytes));
  if (p.N == 0) return 0;
  const int64_t e = dtype_bytes, threads = detail::pool_threads();
  const Conv2dParams q = detail::inner_params(p);
  const int64_t wbytes = checked_product("conv2d weight", p.K, p.C / p.groups, p.R, p.S, e);
  const int64_t padded = p.padding_mode == PaddingMode::zeros
                             ? 0
                             : checked_product("conv2d padded input", p.N, p.C, q.H, q.W, e);
  int64_t total = 0;
  if (grad_weight) {
    const WeightPlan wp = weight_plan(q, weight_item_len(q), e);
    int64_t per_thread = 0;
    if (per_row_weight_grad(q))  // padded grad_output and input rows of an item (stride 1)
      per_thread = (2 * (wp.item_len / q.out_w()) + q.dilation_h * (q.R - 1)) *
                       (q.W + q.pad_left + q.pad_right) * e + q.dilation_w * (q.S - 1) * e;
    else
      per_thread = (e == 4 ? weight_tiles<float>(q, wp.item_len).scratch
                           : weight_tiles<double>(q, wp.item_len).scratch) * e;
    total += padded + (wp.chunks - 1) * wbytes + threads * per_thread;
  }
  if (grad_input) {
    if (p.stride_h == 1 && p.stride_w == 1) {
      bool direct;
      const Conv2dParams f = transposed_params(p, direct);
      total += wbytes + conv2d_workspace_bytes(f, dtype_bytes) +
               (direct ? 0 : checked_product("conv2d padded input", p.N, p.C, f.out_h(), f.out_w(), e));
    } else {
      const int64_t mr = e == 4 ? detail::gemm_kernel<float>().mr : detail::gemm_kernel<double>().mr;
      const int64_t nr = e == 4 ? detail::gemm_kernel<float>().nr : detail::gemm_kernel<double>().nr;
      const int64_t kd = p.C / p.groups * p.R * p.S, Kg = p.K / p.groups;
      const int64_t np_max = std::max<int64_t>(nr, kColBytes / e / kd / nr * nr);
      total += round_up(kd, mr) * Kg * p.groups * e + padded +
               threads * (kd * np_max + detail::gemm_kc(Kg) * nr) * e;
    }
  }
  return total;
}

void conv2d_backward(const Conv2dParams& p, const float* g, const float* x, const float* w,
                     float* gi, float* gw, float* gb) {
  backward(p, g, x, w, gi, gw, gb);
}
void conv2d_backward(const Conv2dParams& p, const double* g, const double* x, const double* w,
                     double* gi, double* gw, double* gb) {
  backward(p, g, x, w, gi, gw, gb);
}

}  // namespace convcore
