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
//   GEMM reduction running over blocks of at most 256 pixels of one image, or of as many
//   whole images as fit 256 pixels when the maps are smaller (the im2col gather of each
//   image's part, packed into B panels one after the other). Groups of at most NR
//   filters whose taps fill the tile better run it transposed (dW^T = im2col(x) * dY^T:
//   the taps on the MR rows), the block stored transposed. The blocks of all images form a fixed number of
//   chunks (at most kMaxChunks, fewer when their partial sums would exceed kPartialBytes, a
//   function of the sizes only); tasks are (group, row block, column block, chunk), each
//   chunk's partial sums added in chunk order afterwards: bitwise identical results for any
//   thread count. One output channel per group (depthwise, one-channel filtering), or a
//   few filters on one input channel at stride 1 (LeNet's first layer): the GEMM would use
//   few rows of its tile, so each tap is a sum of dot products of rows (the kernel table's
//   tap_dots).
#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "dispatch.hpp"
#include "ops/backward_util.hpp"
#include "ops/conv_backward.hpp"
#include "ops/conv_pieces.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

constexpr int64_t kMaxChunks = 8;              // weight-gradient reduction chunks, at most
constexpr int64_t kPartialBytes = 4 << 20;     // their partial sums together, at most
constexpr int64_t kColBytes = 256 * 1024;      // col2im column block
constexpr int64_t kBandPixels = 1024;          // col2im band of output rows, about
constexpr int64_t kRowItemPixels = 2048;       // depthwise grad_weight: pixels per item

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// ----------------------------------------------------------------------------- grad_weight

// The reduction split: items (blocks of one image's pixels, or `images` whole images)
// and chunks of items.
struct WeightPlan {
  int64_t item_len, items_per_image, items, chunks;
  int64_t images = 1;  // whole images per item (item_len their pixels), else 1
};

WeightPlan weight_plan(const Conv2dParams& q, int64_t item_len, int64_t elem,
                       int64_t images = 1) {
  WeightPlan w;
  const int64_t P = q.out_h() * q.out_w();
  w.images = images;
  w.item_len = item_len;
  w.items_per_image = images > 1 ? 1 : ceil_div(P, item_len);
  w.items = images > 1 ? ceil_div(q.N, images) : q.N * w.items_per_image;
  const int64_t wbytes = q.K * (q.C / q.groups) * q.R * q.S * elem;
  const int64_t fit = 1 + kPartialBytes / std::max<int64_t>(wbytes, 1);
  w.chunks = std::clamp<int64_t>(std::min(fit, kMaxChunks), 1, std::max<int64_t>(w.items, 1));
  return w;
}

// Row dot products (weight_grad_rows) instead of the GEMM: one output channel per group,
// or, at stride 1, a few filters on one input channel (LeNet's first layer: 6 filters of
// 5x5 on one channel), where the GEMM's tile would hold K/groups of its 14 rows and its
// gather R*S copies of every pixel.
constexpr int64_t kRowsMaxFilters = 16;
bool per_row_weight_grad(const Conv2dParams& q) {
  const int64_t Kg = q.K / q.groups;
  return Kg == 1 || (q.C == q.groups && Kg <= kRowsMaxFilters && q.stride_h == 1 &&
                     q.stride_w == 1);
}

// Whole images per GEMM item: as many as fit one KC block when an image has fewer pixels
// (8x8 maps: 64; a reduction of 64 per call stored the gradient tile and packed both
// operands for every 64 multiply-adds per element), else 1.
int64_t weight_item_images(const Conv2dParams& q) {
  if (per_row_weight_grad(q)) return 1;
  return std::clamp<int64_t>(kGemmKC / (q.out_h() * q.out_w()), 1, q.N);
}

// A kernel-row item is whole output rows, about kRowItemPixels of them (at most the
// image's); the GEMM's items are blocks of at most KC pixels, or whole small images.
int64_t weight_item_len(const Conv2dParams& q) {
  const int64_t P = q.out_h() * q.out_w();
  if (per_row_weight_grad(q))
    return std::clamp<int64_t>(kRowItemPixels / q.out_w(), 1, q.out_h()) * q.out_w();
  return weight_item_images(q) > 1 ? weight_item_images(q) * P : gemm_kc(P);
}

WeightPlan weight_plan(const Conv2dParams& q, int64_t elem) {
  return weight_plan(q, weight_item_len(q), elem, weight_item_images(q));
}

// Scratch elements of one weight-gradient GEMM task.
struct WeightTiles {
  int64_t mrows, mblocks, ncols, cblocks;
  int64_t ld, scratch;
  // C^T = im2col(x) * dY^T instead: the taps on the GEMM's MR rows, the filters on its NR
  // columns (then transposed into dW), when a group has at most NR filters and that
  // fills the tile better (32 filters on the 14-row tile used 32 of 42 rows; as columns
  // 32 of 32).
  bool transposed = false;
};

template <class T>
WeightTiles weight_tiles(const GemmKernel<T>& gk, const Conv2dParams& q, int64_t item_len) {
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t Kg = q.K / q.groups, kd = q.C / q.groups * q.R * q.S;
  WeightTiles t;
  const int64_t mc = gemm_mc<T>() / MR * MR;
  t.mblocks = ceil_div(Kg, mc);
  t.mrows = round_up(ceil_div(Kg, t.mblocks), MR);
  const int64_t nc_max = std::max<int64_t>(
      NR, kGemmBlockBytes / static_cast<int64_t>(sizeof(T)) / item_len / NR * NR);
  t.cblocks = ceil_div(kd, nc_max);
  t.ncols = round_up(ceil_div(kd, t.cblocks), NR);
  t.ld = round_up(item_len, 64 / static_cast<int64_t>(sizeof(T)));
  const auto fill = [](int64_t n, int64_t tile) {
    return static_cast<double>(n) / static_cast<double>(round_up(n, tile));
  };
  t.transposed = Kg <= NR && fill(kd, MR) * fill(Kg, NR) > fill(Kg, MR) * fill(kd, NR);
  if (t.transposed) {
    // gathered rows, their A panels, dY's B panels, the C^T block.
    t.scratch = t.ncols * t.ld + round_up(t.ncols, MR) * item_len +
                round_up(t.mrows, NR) * item_len + t.ncols * t.mrows;
  } else {
    // gathered rows (ncols x ld), their B panels (ncols x item_len), one A block.
    t.scratch = t.ncols * t.ld + t.ncols * item_len + t.mrows * item_len;
  }
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
  parallel_for(ceil_div(wsize, B), wsize * (chunks - 1), [&](int64_t t) {
    const int64_t i0 = t * B, i1 = std::min(wsize, i0 + B);
    for (int64_t c = 1; c < chunks; ++c) {
      const T* src = partial + (c - 1) * wsize;
      for (int64_t i = i0; i < i1; ++i) gw[i] += src[i];
    }
  });
}

// One operand of weight_grad_gemm's GEMM as it is packed: the kernel table's pack function
// (pack_a for the GEMM's A, MR-row panels; pack for its B, NR-column panels), that panel
// width, and the buffer its panels go to.
template <class T>
struct PackedOperand {
  kernels::PackFn<T> pack;
  int64_t width;
  T* panels;
};

// One weight_grad_gemm task: filters [m0, m0 + rows) of group grp, taps [j0, j0 + cols),
// reduction chunk c, summed over the chunk's items. The gathered input's tap rows are
// packed as `taps`, the gradient's filter rows as `grad`. Not transposed: C = dY * im2col^T
// (grad is A, taps are B) accumulated straight into out (row stride kd). Transposed
// (WeightTiles::transposed): C^T = im2col * dY^T (taps are A, grad is B) accumulated in ct,
// then stored transposed into out.
template <class T>
void weight_grad_task(const GemmKernel<T>& gk, const Conv2dParams& q, const WeightPlan& wp,
                      const WeightTiles& wt, bool pointwise, const T* g, const T* x,
                      int64_t grp, int64_t m0, int64_t rows, int64_t j0, int64_t cols,
                      int64_t c, T* gathered, PackedOperand<T> taps, PackedOperand<T> grad,
                      bool transposed, T* ct, T* out) {
  const int64_t P = q.out_h() * q.out_w(), HW = q.H * q.W;
  const int64_t Cg = q.C / q.groups, Kg = q.K / q.groups, kd = Cg * q.R * q.S;
  const PackedOperand<T>& a = transposed ? taps : grad;
  const PackedOperand<T>& b = transposed ? grad : taps;
  const int64_t first = wp.items * c / wp.chunks, last = wp.items * (c + 1) / wp.chunks;
  for (int64_t it = first; it < last; ++it) {
    // Images [n0, n0 + imgs), pixels [q0, q0 + kn) of each: image i's part of the
    // reduction is k rows [i*kn, (i + 1)*kn) of both packed operands.
    const int64_t n0 = it / wp.items_per_image * wp.images;
    const int64_t imgs = std::min(wp.images, q.N - n0);
    const int64_t q0 = it % wp.items_per_image * wp.item_len;
    const int64_t kn = wp.images > 1 ? P : std::min(wp.item_len, P - q0), kc = imgs * kn;
    for (int64_t i = 0; i < imgs; ++i) {
      const int64_t n = n0 + i;
      const T* xg = x + (n * q.C + grp * Cg) * HW;
      // pointwise: the gathered rows would be a copy of the input's channel rows
      const T* src = xg + j0 * P + q0;
      int64_t ld = P;
      if (!pointwise) {
        im2col_gather(q, xg, j0, cols, q0, kn, wt.ld, gathered);
        src = gathered, ld = wt.ld;
      }
      for (int64_t jj = 0; jj < cols; jj += taps.width)
        taps.pack(src + jj * ld, ld, std::min(taps.width, cols - jj), kn, 0,
                  taps.panels + jj * kc + i * kn * taps.width);
      const T* gy = g + (n * q.K + grp * Kg + m0) * P + q0;
      for (int64_t r0 = 0; r0 < rows; r0 += grad.width)
        grad.pack(gy + r0 * P, P, std::min(grad.width, rows - r0), kn, 0,
                  grad.panels + r0 * kc + i * kn * grad.width);
    }
    auto a_src = [&](int64_t i0, int64_t, int64_t k0, int64_t) {
      return Panels<T>{a.panels + i0 * kc + k0 * a.width, a.width * kc, a.width};
    };
    auto b_src = [&](int64_t k0, int64_t) {
      return Panels<T>{b.panels + k0 * b.width, b.width * kc, b.width};
    };
    if (transposed)
      gemm_tile(gk, cols, rows, kc, a_src, b_src, ct, rows, static_cast<const T*>(nullptr),
                false, Activation{}, it != first);
    else
      gemm_tile(gk, rows, cols, kc, a_src, b_src, out, kd, static_cast<const T*>(nullptr),
                false, Activation{}, it != first);
  }
  if (transposed)
    for (int64_t m = 0; m < rows; ++m)
      for (int64_t j = 0; j < cols; ++j) out[m * kd + j] = ct[j * rows + m];
}

template <class T>
void weight_grad_gemm(const GemmKernel<T>& gk, const Conv2dParams& q, const WeightPlan& wp,
                      const T* g, const T* x, T* gw, T* partial) {
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t Cg = q.C / q.groups, Kg = q.K / q.groups, kd = Cg * q.R * q.S;
  const int64_t wsize = q.K * kd;
  const WeightTiles wt = weight_tiles(gk, q, wp.item_len);
  const int64_t tasks = q.groups * wt.mblocks * wt.cblocks * wp.chunks;
  // 1x1, stride 1, no padding: B's columns are the input's channel rows, packed in place.
  const bool pointwise = q.R == 1 && q.S == 1 && q.stride_h == 1 && q.stride_w == 1 &&
                         q.pad_top == 0 && q.pad_bottom == 0 && q.pad_left == 0 &&
                         q.pad_right == 0;
  parallel_for(tasks, [&](int64_t t) {
    const int64_t c = t % wp.chunks, cb = (t / wp.chunks) % wt.cblocks;
    const int64_t mb = (t / (wp.chunks * wt.cblocks)) % wt.mblocks;
    const int64_t grp = t / (wp.chunks * wt.cblocks * wt.mblocks);
    const int64_t m0 = mb * wt.mrows, rows = std::min(wt.mrows, Kg - m0);
    const int64_t j0 = cb * wt.ncols, cols = std::min(wt.ncols, kd - j0);
    if (rows <= 0 || cols <= 0) return;
    T* buf = static_cast<T*>(thread_scratch(static_cast<size_t>(wt.scratch) * sizeof(T)));
    T* out = chunk_target(gw, partial, wsize, c) + (grp * Kg + m0) * kd + j0;
    // Scratch (weight_tiles): the gathered rows, then the two operands' panels (and C^T).
    T* first = buf + wt.ncols * wt.ld;
    if (wt.transposed) {
      T* second = first + round_up(wt.ncols, MR) * wp.item_len;
      T* ct = second + round_up(wt.mrows, NR) * wp.item_len;
      weight_grad_task(gk, q, wp, wt, pointwise, g, x, grp, m0, rows, j0, cols, c, buf,
                       PackedOperand<T>{gk.pack_a, MR, first}, PackedOperand<T>{gk.pack, NR, second},
                       true, ct, out);
    } else {
      T* second = first + wt.ncols * wp.item_len;
      weight_grad_task(gk, q, wp, wt, pointwise, g, x, grp, m0, rows, j0, cols, c, buf,
                       PackedOperand<T>{gk.pack, NR, first}, PackedOperand<T>{gk.pack_a, MR, second},
                       false, static_cast<T*>(nullptr), out);
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
        out[r * q.S + s] += lane_dot(gy + i * Wo + lo, xr, hi - lo);
      }
    }
}

// Stride 1: the zero-padded input rows an item of output rows [i0, i1) reads (xp, rows
// Wp = W + pad_left + pad_right long, then dw*(S-1) zeros), so that with the item's
// grad_output rows zero-extended to Wp each tap is one long dot product: the gradient's
// flat index against xp's shifted by r*dh*Wp + s*dw (products past a row's end meet the
// gradient's zeros). False when the rows hold a NaN or infinity: 0 * inf would turn those
// products into NaN (rows_item_exact then).
template <class T>
bool pad_item_rows(const Conv2dParams& q, const T* xc, int64_t i0, int64_t i1, T* xp) {
  const int64_t Wp = q.W + q.pad_left + q.pad_right;
  const int64_t xrows = i1 - i0 + q.dilation_h * (q.R - 1), tail = q.dilation_w * (q.S - 1);
  for (int64_t u = 0; u < xrows; ++u) {
    T* row = xp + u * Wp;
    const int64_t ih = i0 + u - q.pad_top;
    const int64_t left = ih < 0 || ih >= q.H ? Wp : q.pad_left;
    std::fill(row, row + left, T(0));
    if (left == Wp) continue;
    std::copy(xc + ih * q.W, xc + (ih + 1) * q.W, row + left);
    std::fill(row + left + q.W, row + Wp, T(0));
  }
  std::fill(xp + xrows * Wp, xp + xrows * Wp + tail, T(0));
  // One check over the whole buffer (the padding is finite): per row, short rows spent
  // more time in the check's tail than the dot products took.
  return all_finite(xp, xrows * Wp);
}

// Scratch of one weight_grad_rows task: stride 1, the group's Kg zero-extended gradient
// rows of an item and one channel's padded input rows; else one strided row.
int64_t rows_scratch(const Conv2dParams& q, int64_t item_len) {
  const int64_t Wo = q.out_w(), rows_max = item_len / Wo;
  if (q.stride_h != 1 || q.stride_w != 1) return Wo;
  const int64_t Wp = q.W + q.pad_left + q.pad_right;
  return q.K / q.groups * rows_max * Wp + (rows_max + q.dilation_h * (q.R - 1)) * Wp +
         q.dilation_w * (q.S - 1);
}

// Few output channels per group (depthwise, one-channel filtering, a handful of filters
// on one input channel): the GEMM would fill few rows of its tile, so each tap is a dot
// product of rows instead, stride 1 on the kernel table's tap_dots (a block of gradient
// rows against every tap of one input channel); tasks (group, chunk).
template <class T>
void weight_grad_rows(const kernels::Kernel<kernels::TapDotsFn<T>>& dots, const Conv2dParams& q,
                      const WeightPlan& wp, const T* g, const T* x, T* gw, T* partial) {
  const int64_t Ho = q.out_h(), Wo = q.out_w(), P = Ho * Wo, HW = q.H * q.W;
  const int64_t Cg = q.C / q.groups, Kg = q.K / q.groups, RS = q.R * q.S, kd = Cg * RS;
  const int64_t wsize = q.K * kd;
  const bool flat = q.stride_h == 1 && q.stride_w == 1;
  const int64_t Wp = q.W + q.pad_left + q.pad_right, rows_max = wp.item_len / Wo;
  const int64_t g_ld = rows_max * Wp, gp_elems = Kg * g_ld;
  const int64_t scratch = rows_scratch(q, wp.item_len), KB = dots.mr;
  std::vector<int64_t> off(static_cast<size_t>(RS));
  for (int64_t r = 0; r < q.R; ++r)
    for (int64_t s = 0; s < q.S; ++s) off[r * q.S + s] = r * q.dilation_h * Wp + s * q.dilation_w;
  parallel_for(q.groups * wp.chunks, [&](int64_t t) {
    const int64_t c = t % wp.chunks, grp = t / wp.chunks;
    T* out = chunk_target(gw, partial, wsize, c) + grp * Kg * kd;
    std::fill(out, out + Kg * kd, T(0));
    T* buf = static_cast<T*>(thread_scratch(static_cast<size_t>(scratch) * sizeof(T)));
    T* xp = buf + gp_elems;
    const int64_t first = wp.items * c / wp.chunks, last = wp.items * (c + 1) / wp.chunks;
    for (int64_t it = first; it < last; ++it) {
      const int64_t n = it / wp.items_per_image;
      const int64_t i0 = it % wp.items_per_image * rows_max, i1 = std::min(Ho, i0 + rows_max);
      const T* gy = g + (n * q.K + grp * Kg) * P;
      if (flat)
        for (int64_t k = 0; k < Kg; ++k)
          for (int64_t i = i0; i < i1; ++i) {
            T* row = buf + k * g_ld + (i - i0) * Wp;
            std::copy(gy + k * P + i * Wo, gy + k * P + (i + 1) * Wo, row);
            std::fill(row + Wo, row + Wp, T(0));
          }
      for (int64_t cc = 0; cc < Cg; ++cc) {
        const T* xc = x + (n * q.C + grp * Cg + cc) * HW;
        if (flat && pad_item_rows(q, xc, i0, i1, xp)) {
          for (int64_t k0 = 0; k0 < Kg; k0 += KB)
            dots.fn(buf + k0 * g_ld, g_ld, std::min(KB, Kg - k0), xp, off.data(), RS,
                    (i1 - i0) * Wp, out + k0 * kd + cc * RS, kd);
          continue;
        }
        for (int64_t k = 0; k < Kg; ++k)
          rows_item_exact(q, gy + k * P, xc, i0, i1, flat ? xp : buf, out + k * kd + cc * RS);
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
  // Per row: the edge columns through their source index, the W columns between them
  // added as one run (in column order, as a cell-by-cell fold: the same sums).
  const std::vector<int64_t> edge = edge_columns(p);
  const int64_t* left = edge.data();
  const int64_t* right = left + p.pad_left;
  parallel_for(p.N * p.C, p.N * p.C * Hp * Wp, [&](int64_t plane) {
    const T* src = gp + plane * Hp * Wp;
    T* dst = gi + plane * p.H * p.W;
    std::fill(dst, dst + p.H * p.W, T(0));
    for (int64_t u = 0; u < Hp; ++u) {
      const int64_t ih = source_index(u - p.pad_top, p.H, p.padding_mode);
      if (ih < 0 || ih >= p.H) continue;
      const T* s = src + u * Wp;
      T* d = dst + ih * p.W;
      for (int64_t v = 0; v < p.pad_left; ++v)
        if (left[v] >= 0 && left[v] < p.W) d[left[v]] += s[v];
      s += p.pad_left;
      for (int64_t v = 0; v < p.W; ++v) d[v] += s[v];
      s += p.W;
      for (int64_t v = 0; v < p.pad_right; ++v)
        if (right[v] >= 0 && right[v] < p.W) d[right[v]] += s[v];
    }
  });
}

// Stride 1: the forward convolution of grad_output with the flipped, transposed weights,
// on the forward plan of entry `id`. The forward problem; `direct` when it writes dx itself
// (padding no larger than the kernel's span), else the padded input's gradient (cropped).
Conv2dParams transposed_params(const Conv2dParams& p, Algorithm id, bool& direct) {
  const int64_t eh = p.dilation_h * (p.R - 1), ew = p.dilation_w * (p.S - 1);
  direct = p.pad_top <= eh && p.pad_bottom <= eh && p.pad_left <= ew && p.pad_right <= ew;
  Conv2dParams f;
  f.N = p.N, f.C = p.K, f.H = p.out_h(), f.W = p.out_w();
  f.K = p.C, f.R = p.R, f.S = p.S;
  f.dilation_h = p.dilation_h, f.dilation_w = p.dilation_w;
  f.groups = p.groups;
  f.pad_top = direct ? eh - p.pad_top : eh;
  f.pad_bottom = direct ? eh - p.pad_bottom : eh;
  f.pad_left = direct ? ew - p.pad_left : ew;
  f.pad_right = direct ? ew - p.pad_right : ew;
  f.algorithm = id;
  return f;
}

template <class T>
class TransposedDataPlan final : public ConvPlan<T> {
 public:
  TransposedDataPlan(const PlanRequest<T>& r, Algorithm id)
      : p_(r.problem), f_(transposed_params(p_, id, direct_)) {
    const int64_t Cg = p_.C / p_.groups, Kg = p_.K / p_.groups, RS = p_.R * p_.S;
    if (r.weight != nullptr) {  // wt[g*Cg + c, k, R-1-r, S-1-s] = w[g*Kg + k, c, r, s]
      wt_ = Buffer<T>(checked_product("conv2d_backward weights", p_.K, Cg, RS));
      const T* w = r.weight;
      T* wt = wt_.get();
      parallel_for(p_.K, [&](int64_t kk) {
        const int64_t grp = kk / Kg, k = kk % Kg;
        for (int64_t c = 0; c < Cg; ++c) {
          const T* src = w + (kk * Cg + c) * RS;
          T* dst = wt + ((grp * Cg + c) * Kg + k) * RS;
          for (int64_t t = 0; t < RS; ++t) dst[RS - 1 - t] = src[t];
        }
      });
    }
    // The plan lives as long as wt_: it may read it in place (one-shot).
    fwd_ = make_plan<T>(f_, Pass::forward, r.kernels, wt_.get(), nullptr, true);
  }
  void run(const ConvTensors<T>& t) const override {
    ConvTensors<T> f;
    f.N = t.N;
    f.x = t.dy;
    if (direct_) {
      f.y = t.dx;
      fwd_->run(f);
      return;
    }
    Conv2dParams p = p_;
    p.N = t.N;
    Buffer<T> gp(checked_product("conv2d_backward padded gradient", t.N, p.C, f_.out_h(),
                                 f_.out_w()));
    f.y = gp.get();
    fwd_->run(f);
    fold_padding(p, gp.get(), t.dx);  // zero padding: a crop
  }
  int64_t workspace_bytes(int64_t N, int threads) const override {
    const int64_t wt = checked_product("conv2d weight", p_.K, p_.C / p_.groups, p_.R, p_.S,
                                       int64_t{sizeof(T)});
    const int64_t crop = direct_ ? 0 : checked_product("conv2d_backward padded gradient", N, p_.C,
                                                        f_.out_h(), f_.out_w(), int64_t{sizeof(T)});
    return wt + crop + fwd_->workspace_bytes(N, threads);
  }

 private:
  Conv2dParams p_;
  bool direct_ = false;
  Conv2dParams f_;
  Buffer<T> wt_;
  std::unique_ptr<ConvPlan<T>> fwd_;
};

// Any stride: GEMM into column blocks, col2im in bands (header). q: zero padding (the
// padded sizes for other modes); the target t (Ht x Wt planes) holds padded coordinate
// (u, v) at (u - off_h, v - off_w), cells outside dropped.
template <class T>
class Col2imDataPlan final : public ConvPlan<T> {
 public:
  explicit Col2imDataPlan(const PlanRequest<T>& r) : q_(r.problem), gk_(gemm_kernel(r.kernels)) {
    const int64_t MR = gk_.mr, NR = gk_.nr;
    const int64_t Cg = q_.C / q_.groups, Kg = q_.K / q_.groups;
    kd_ = Cg * q_.R * q_.S;
    per_group_ = checked_product("conv2d_backward packed weights", ceil_div(kd_, MR), MR, Kg);
    np_max_ = std::max<int64_t>(NR, kColBytes / static_cast<int64_t>(sizeof(T)) / kd_ / NR * NR);
    scratch_ = kd_ * np_max_ + gemm_kc(Kg) * NR;
    if (r.weight == nullptr) return;
    // A = W_g^T (kd x Kg) in MR-row panels: panel i at i*MR*Kg, element (kk, i) at kk*MR + i.
    a_ = Buffer<T>(checked_mul(per_group_, q_.groups, "conv2d_backward packed weights"));
    const T* w = r.weight;
    parallel_for(q_.groups, [&](int64_t grp) {
      const T* wg = w + grp * Kg * kd_;
      T* out = a_.get() + grp * per_group_;
      for (int64_t i0 = 0; i0 < kd_; i0 += MR, out += MR * Kg) {
        const int64_t m = std::min(MR, kd_ - i0);
        for (int64_t kk = 0; kk < Kg; ++kk) {
          std::copy(wg + kk * kd_ + i0, wg + kk * kd_ + i0 + m, out + kk * MR);
          std::fill(out + kk * MR + m, out + (kk + 1) * MR, T(0));
        }
      }
    });
  }
  void run(const ConvTensors<T>& t) const override;
  int64_t workspace_bytes(int64_t, int threads) const override {
    return checked_product("conv2d_backward workspace", int64_t{threads}, scratch_,
                           int64_t{sizeof(T)}) +
           checked_product("conv2d_backward packed weights", per_group_, q_.groups,
                           int64_t{sizeof(T)});
  }

 private:
  Conv2dParams q_;
  GemmKernel<T> gk_;
  int64_t kd_, per_group_, np_max_, scratch_;
  Buffer<T> a_;
};

template <class T>
void Col2imDataPlan<T>::run(const ConvTensors<T>& t) const {
  const Conv2dParams& q = q_;
  const auto& gk = gk_;
  const int64_t MR = gk.mr, NR = gk.nr, kd = kd_, np_max = np_max_;
  const int64_t Ho = q.out_h(), Wo = q.out_w(), P = Ho * Wo, N = t.N;
  const int64_t Cg = q.C / q.groups, Kg = q.K / q.groups, RS = q.R * q.S;
  const int64_t Ht = q.H, Wt = q.W, off_h = q.pad_top, off_w = q.pad_left;
  const T* g = t.dy;
  T* tgt = t.dx;
  const int64_t band = std::min(
      Ho, std::max({int64_t{1}, q.dilation_h * (q.R - 1) / q.stride_h, ceil_div(kBandPixels, Wo)}));
  const int64_t bands = ceil_div(Ho, band);
  parallel_for(N * q.C, [&](int64_t plane) {
    std::fill(tgt + plane * Ht * Wt, tgt + (plane + 1) * Ht * Wt, T(0));
  });
  for (int64_t phase = 0; phase < 2; ++phase) {
    const int64_t nb = (bands - phase + 1) / 2;  // bands phase, phase + 2, ...
    if (nb <= 0) continue;
    parallel_for(N * q.groups * nb, [&](int64_t task) {
      const int64_t b = (task % nb) * 2 + phase, grp = (task / nb) % q.groups;
      const int64_t n = task / (nb * q.groups);
      T* col = static_cast<T*>(thread_scratch(static_cast<size_t>(scratch_) * sizeof(T)));
      T* edge = col + kd * np_max;
      const T* gy = g + (n * q.K + grp * Kg) * P;
      const T* ag = a_.get() + grp * per_group_;
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
        gemm_tile(gk, kd, np, Kg, a_src, b_src, col, np, static_cast<const T*>(nullptr), false,
                  Activation{});
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

// Whether conv2d_backward runs its two passes (grad_input, grad_weight) side by side, one
// thread each, instead of one after the other, each split over the pool: on two threads
// (the two passes cost about the same, and one synchronisation replaces the several of
// each pass's steps: padding, GEMM, partial sums, fold), or when a pass is too small to
// give every thread more than an inline call's work (the classify CNN's 8x8 layers).
bool split_passes(const Conv2dParams& p) {
  const int threads = pool_threads();
  if (threads < 2) return false;
  const int64_t pass_macs = p.N * p.K * p.out_h() * p.out_w() * (p.C / p.groups) * p.R * p.S;
  return threads == 2 || macs_work(pass_macs) < kInlineWork * threads;
}

// backward_weights: dw (and db when asked) by the GEMM (im2col) or by rows (direct).
template <class T>
class WeightsPlan final : public ConvPlan<T> {
 public:
  WeightsPlan(const PlanRequest<T>& r, bool rows)
      : q_(r.problem), gk_(gemm_kernel(r.kernels)), dots_(r.kernels.tap_dots), rows_(rows) {}
  void run(const ConvTensors<T>& t) const override {
    Conv2dParams q = q_;
    q.N = t.N;
    if (t.db != nullptr) channel_sums(t.dy, t.N, q.K, q.out_h() * q.out_w(), t.db);
    const int64_t wsize = q.K * (q.C / q.groups) * q.R * q.S;
    const WeightPlan wp = weight_plan(q, sizeof(T));
    Buffer<T> partial(std::max<int64_t>(1, (wp.chunks - 1) * wsize));
    if (rows_)
      weight_grad_rows(dots_, q, wp, t.dy, t.x, t.dw, partial.get());
    else
      weight_grad_gemm(gk_, q, wp, t.dy, t.x, t.dw, partial.get());
    add_partials(t.dw, partial.get(), wsize, wp.chunks);
  }
  int64_t workspace_bytes(int64_t N, int threads) const override {
    Conv2dParams q = q_;
    q.N = N;
    const int64_t e = sizeof(T);
    const WeightPlan wp = weight_plan(q, e);
    const int64_t wsize = q.K * (q.C / q.groups) * q.R * q.S;
    int64_t per_thread;
    if (rows_)
      per_thread = rows_scratch(q, wp.item_len);
    else
      per_thread = weight_tiles(gk_, q, wp.item_len).scratch;
    return ((wp.chunks - 1) * wsize + threads * per_thread) * e;
  }

 private:
  Conv2dParams q_;
  GemmKernel<T> gk_;
  kernels::Kernel<kernels::TapDotsFn<T>> dots_;
  bool rows_;
};

// The public call: validation, the padding modes (a padded input for the weights, the
// padded input's gradient folded back), then "plan, run" for each pass asked for.
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
  if (gw != nullptr && x == nullptr)
    throw value_error("conv2d_backward: input must not be null");
  // Small problems on the calling thread (each pass does the forward's multiply-adds).
  const double macs = static_cast<double>(p.N) * p.K * p.out_h() * p.out_w() *
                      (p.C / p.groups) * p.R * p.S * ((gi != nullptr) + (gw != nullptr));
  std::optional<InlineScope> inline_scope;
  if (macs < static_cast<double>(kInlineWork * kMacsPerWork)) inline_scope.emplace();
  Conv2dParams q = inner_params(p);
  q.algorithm = Algorithm::automatic;
  const bool padded = p.padding_mode != PaddingMode::zeros;
  auto weights_pass = [&] {
    ConvTensors<T> t;
    t.N = p.N, t.dy = g, t.dw = gw, t.db = gb;
    Buffer<T> xp;
    if (gw != nullptr && padded) {
      xp = Buffer<T>(checked_product("conv2d_backward padded input", p.N, p.C, q.H, q.W));
      pad_planes(p, x, xp.get());
    }
    t.x = padded ? xp.get() : x;
    if (gw != nullptr)
      make_plan<T>(q, Pass::backward_weights, kernels<T>(), nullptr, nullptr, true)->run(t);
    else
      channel_sums(g, p.N, p.K, p.out_h() * p.out_w(), gb);
  };
  auto data_pass = [&] {
    ConvTensors<T> t;
    t.N = p.N, t.dy = g;
    Buffer<T> gp;
    if (padded)
      gp = Buffer<T>(checked_product("conv2d_backward padded gradient", p.N, p.C, q.H, q.W));
    t.dx = padded ? gp.get() : gi;
    make_plan<T>(q, Pass::backward_data, kernels<T>(), w, nullptr, true)->run(t);
    if (padded) fold_padding(p, gp.get(), gi);
  };
  const bool weights = gw != nullptr || gb != nullptr;
  if (weights && gi != nullptr && !inline_scope && split_passes(p)) {
    // The two passes side by side, each on one thread (inline inside its task): they
    // read the same arrays and write different ones, and each computes what it computes
    // alone, so the bits do not change.
    parallel_for(2, [&](int64_t task) {
      InlineScope one_thread;
      if (task == 0)
        weights_pass();
      else
        data_pass();
    });
    return;
  }
  if (weights) weights_pass();
  if (gi != nullptr) data_pass();
}

}  // namespace

bool backward_supports(Algorithm id, const Conv2dParams& p, Pass pass) {
  const bool stride1 = p.stride_h == 1 && p.stride_w == 1;
  if (pass == Pass::backward_data) return id == Algorithm::im2col || stride1;
  if (pass == Pass::backward_weights) return id == Algorithm::im2col || per_row_weight_grad(p);
  return false;
}

int backward_auto_rank(Algorithm id, const Conv2dParams& p, Pass pass, DType dtype) {
  if (pass == Pass::backward_weights)
    return id == Algorithm::direct || !per_row_weight_grad(p) ? kAutoPreferred : kAutoDefault + 1;
  if (p.stride_h != 1 || p.stride_w != 1) return kAutoPreferred;  // im2col only
  bool direct;
  const Conv2dParams f = transposed_params(p, id, direct);
  return conv_algorithm(id).auto_rank(f, Pass::forward, dtype);
}

template <class T>
std::unique_ptr<ConvPlan<T>> backward_plan(Algorithm id, const PlanRequest<T>& r) {
  if (r.pass == Pass::backward_weights)
    return std::make_unique<WeightsPlan<T>>(r, id == Algorithm::direct);
  if (r.problem.stride_h == 1 && r.problem.stride_w == 1)
    return std::make_unique<TransposedDataPlan<T>>(r, id);
  return std::make_unique<Col2imDataPlan<T>>(r);
}
template std::unique_ptr<ConvPlan<float>> backward_plan(Algorithm, const PlanRequest<float>&);
template std::unique_ptr<ConvPlan<double>> backward_plan(Algorithm, const PlanRequest<double>&);

}  // namespace convcore::detail

namespace convcore {

int64_t conv2d_backward_workspace_bytes(const Conv2dParams& p, int dtype_bytes, bool grad_input,
                                        bool grad_weight) {
  p.validate();
  if (dtype_bytes != 4 && dtype_bytes != 8)
    throw value_error("conv2d_backward_workspace_bytes: dtype_bytes must be 4 or 8, got " +
                      std::to_string(dtype_bytes));
  if (p.N == 0) return 0;
  using namespace detail;
  Conv2dParams q = inner_params(p);
  q.algorithm = Algorithm::automatic;
  const int threads = pool_threads();
  const int64_t padded = p.padding_mode == PaddingMode::zeros
                             ? 0
                             : checked_product("conv2d padded input", p.N, p.C, q.H, q.W,
                                               int64_t{dtype_bytes});
  auto plan_bytes = [&](Pass pass) {
    return dtype_bytes == 4
               ? make_plan<float>(q, pass, detail::kernels<float>(), nullptr, nullptr, true)
                     ->workspace_bytes(p.N, threads)
               : make_plan<double>(q, pass, detail::kernels<double>(), nullptr, nullptr, true)
                     ->workspace_bytes(p.N, threads);
  };
  int64_t total = 0;
  if (grad_weight) total += padded + plan_bytes(Pass::backward_weights);
  if (grad_input) total += padded + plan_bytes(Pass::backward_data);
  return total;
}

void conv2d_backward(const Conv2dParams& p, const float* g, const float* x, const float* w,
                     float* gi, float* gw, float* gb) {
  detail::backward(p, g, x, w, gi, gw, gb);
}
void conv2d_backward(const Conv2dParams& p, const double* g, const double* x, const double* w,
                     double* gi, double* gw, double* gb) {
  detail::backward(p, g, x, w, gi, gw, gb);
}

}  // namespace convcore
