// direct.cpp — the `direct` algorithm (algorithm.hpp): its registry entry, its forward
// plan and driver (NCHW in and out, zero padding).
//
// Weights are packed once into panels of KB output channels ([group][block][c][tap][KB],
// zero-filled past the group's last channel). A run splits the work into tasks of
// (image, group, band of output rows). Each task copies the input rows its band reads
// into a per-thread buffer — zero padding made explicit and, for stride_w > 1, each row
// split into stride_w phases so that every tap reads consecutive elements — and then
// calls the kernel once per channel block. Kernel choice, by shape: one output channel
// per group (depthwise with multiplier 1, one-channel filtering) -> direct_plane (KB = 1,
// wide rows); otherwise the plan's layout (layout_for): channels in the vector lanes ->
// direct_nchwc (KB = 32 floats: NCHW16c register tiles on AVX-512), else vectors along
// rows -> direct_tile (KB = 4, 8 on AVX-512: few input channels, depth multipliers). A direct_plane kernel that reads the input in place (its
// slot's `in_place`, the AVX-512 one) gets no band when stride_w == 1: it masks the
// padding itself; direct_nchwc reads unpadded input with stride_w > 1 in place, pixels
// stride_w apart (nchwc_in_place). Each output is computed whole by one task, in a fixed order, so results
// are bitwise the same for any thread count, any band size, band or in place. Depthwise
// layers with outputs at most 28 wide get depthwise.cpp's plan instead (channels in
// the lanes, the same bits).
#include <algorithm>
#include <atomic>
#include <cstring>
#include <string>
#include <vector>

#include "checked.hpp"
#include "dispatch.hpp"
#include "ops/algorithm.hpp"
#include "ops/conv_backward.hpp"
#include "ops/depthwise.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

// Packed band geometry: a band row holds stride_w phases of `phase_len` elements; phase
// q, element u is padded column u*stride_w + q. Output column j, tap column s reads
// phase (s*dw) % sw at u = j + (s*dw) / sw, so every tap reads consecutive elements.
// phase_len covers the kernels' reads up to round_up(Wo, 8).
struct Band {
  int64_t phase_len, row_len;
  explicit Band(const Conv2dParams& p)
      : phase_len(ceil_div(p.out_w(), 8) * 8 + (p.S - 1) * p.dilation_w / p.stride_w),
        row_len(checked_mul(p.stride_w, phase_len, "direct band")) {}
};

// The packed weights and tap offsets, for one kernel (its KB = mr).
template <class T>
struct DirectWeights {
  bool plane = false;
  int64_t kb = 0, blocks = 0;  // channels per panel, panels per group
  Buffer<T> w;                 // [group][block][c][tap][kb]
  std::vector<int64_t> taps;   // tap offsets in a band (Band)
  // For in-place reading (DirectTileArgs): each tap's input row offset r*dilation_h and
  // column offset s*dilation_w - pad_left from an output pixel's row origin and column.
  std::vector<int64_t> tap_row, tap_col;
  // direct_nchwc reading unpadded input in place (nchwc_in_place): each tap's offset in
  // the NCHW plane, r*dilation_h*W + s*dilation_w; empty when the plan keeps the band.
  std::vector<int64_t> plane_taps;
};

// Zeroes d[0, n). Padding is a few elements: a conditional store per element up to 8
// (a plain loop would become a memset call, which costs more than the stores).
template <class T>
void zero_pad(T* d, int64_t n) {
  if (n > 8) {
    std::fill(d, d + n, T(0));
    return;
  }
  for (int k = 0; k < 8; ++k)
    if (k < n) d[k] = T(0);
}

// d[q*ld + u] = s[u*SW + q] for u < n, q < SW: with SW known the compiler vectorises the
// de-interleave.
template <int SW, class T>
void deinterleave(const T* s, int64_t n, int64_t ld, T* d) {
  for (int64_t u = 0; u < n; ++u)
    for (int q = 0; q < SW; ++q) d[q * ld + u] = s[u * SW + q];
}
template <class T>
void deinterleave(const T* s, int64_t n, int64_t sw, int64_t ld, T* d) {
  if (sw == 2) return deinterleave<2>(s, n, ld, d);
  if (sw == 4) return deinterleave<4>(s, n, ld, d);
  for (int64_t u = 0; u < n; ++u)
    for (int64_t q = 0; q < sw; ++q) d[q * ld + u] = s[u * sw + q];
}

// Copies rows [ih0, ih0 + rows) of one padded input channel into the band layout.
template <class T>
void pack_rows(const Conv2dParams& p, const Band& b, const T* src, int64_t ih0, int64_t rows,
               T* dst) {
  const int64_t sw = p.stride_w;
  if (sw == 1) {
    // One phase: [pad_left zeros][the row][zeros]. Short rows: one fill for the whole
    // piece, then the rows (a library call per few padding elements costs more than
    // refilling the row); long rows: fill only the padding.
    const int64_t left = std::min(p.pad_left, b.row_len);
    const int64_t n = std::clamp<int64_t>(b.row_len - left, 0, p.W);
    const int64_t r0 = std::clamp<int64_t>(-ih0, 0, rows), r1 = std::clamp<int64_t>(p.H - ih0, 0, rows);
    const bool short_rows = b.row_len * static_cast<int64_t>(sizeof(T)) <= 2048;
    if (short_rows) {
      std::fill(dst, dst + rows * b.row_len, T(0));
    } else {
      std::fill(dst, dst + r0 * b.row_len, T(0));
      std::fill(dst + r1 * b.row_len, dst + rows * b.row_len, T(0));
    }
    for (int64_t row = r0; row < r1; ++row) {
      T* d = dst + row * b.row_len;
      if (!short_rows) {
        zero_pad(d, left);
        zero_pad(d + left + n, b.row_len - left - n);
      }
      std::memcpy(d + left, src + (ih0 + row) * p.W, static_cast<size_t>(n) * sizeof(T));
    }
    return;
  }
  for (int64_t row = 0; row < rows; ++row, dst += b.row_len) {
    const int64_t ih = ih0 + row;
    if (ih < 0 || ih >= p.H) {
      std::fill(dst, dst + b.row_len, T(0));
      continue;
    }
    const T* s = src + ih * p.W;
    // Elements u0..u1-1 of every phase are in the image (column u*sw + q - pad_left):
    // there the row is de-interleaved in one pass (a test per element cost 7-9% of the
    // 7x7 stride-2 and 11x11 stride-4 stems' time), the ends element by element.
    const int64_t u0 = std::min(ceil_div(p.pad_left, sw), b.phase_len);
    const int64_t u1 = std::clamp((p.W + p.pad_left) / sw, u0, b.phase_len);
    for (int64_t q = 0; q < sw; ++q) {
      T* d = dst + q * b.phase_len;
      const auto at = [&](int64_t u) {
        const int64_t col = u * sw + q - p.pad_left;
        return col >= 0 && col < p.W ? s[col] : T(0);
      };
      for (int64_t u = 0; u < u0; ++u) d[u] = at(u);
      for (int64_t u = u1; u < b.phase_len; ++u) d[u] = at(u);
    }
    deinterleave(s + u0 * sw - p.pad_left, u1 - u0, sw, b.phase_len, dst + u0);
  }
}


// Rows [ct0, ct1) of a weight panel of KB channels (KB = 0: kb, known at run time only)
// from the channels' rows (row elements apart), channels from `live` on zero: one panel
// row, KB consecutive stores, at a time (the column-at-a-time order stored KB apart and
// cost about 1 ns a weight: a third of a GoogLeNet 5x5 layer's one-call time on 7x7
// images).
template <int KB, class T>
void panel_rows(const T* src, int64_t row, int64_t live, int64_t ct0, int64_t ct1, T* dst,
                int64_t kb = KB) {
  const int64_t n = KB > 0 ? KB : kb;
  for (int64_t ct = ct0; ct < ct1; ++ct) {
    T* d = dst + ct * n;
    for (int64_t k = 0; k < n; ++k) d[k] = k < live ? src[k * row + ct] : T(0);
  }
}

// Packs w (K, C/groups, R, S) into panels of `kernel`'s KB channels (w null: sizing only,
// no weights) and computes the tap offsets. A panel is the transpose of its channels'
// rows (channel k's C/groups * R * S weights are consecutive in w, KB apart in the panel):
// through the table's pack_nr (register transposes) when its width is KB (direct_nchwc
// on AVX-512: 32 floats, 16 doubles), else a panel row at a time. Pieces of panels run in
// parallel: the one-call conv2d packs on every call, and packing AlexNet's first layer in
// one loop took 3-4% of its time, on 2 threads all of it serial; element by element a
// weight cost about 1 ns (a strided gather), as much as a GoogLeNet 5x5 layer's
// arithmetic on 7x7 images.
template <class T>
void direct_pack(const Conv2dParams& p, const kernels::Kernel<kernels::DirectTileFn<T>>& kernel,
                 const kernels::Kernel<kernels::PackFn<T>>& transpose, bool plane,
                 bool in_place, const T* w, DirectWeights<T>* packed) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, taps = p.R * p.S;
  packed->plane = plane;
  packed->kb = kernel.mr;
  packed->blocks = ceil_div(Kg, packed->kb);
  const int64_t kb = packed->kb, blocks = packed->blocks, row = Cg * taps;
  const int64_t n = checked_product("direct weights", p.groups, blocks, kb, Cg, taps);
  if (w != nullptr) {
    packed->w = Buffer<T>(n);
    T* out = packed->w.get();
    const bool transposes = transpose.nr == kb;
    // Pieces of 256 (c, tap) positions (32 KiB of a 32-channel float panel). A weight
    // moved to its panel costs about 1 ns element by element (AlexNet's first layer:
    // 35 us for 35 K), some 4 of the element operations the inline rule counts
    // (kInlineWork); through the transposes about a tenth of that.
    constexpr int64_t kPiece = 256;
    const int64_t move_work = transposes ? 1 : 4;
    const int64_t pieces = ceil_div(row, kPiece);
    parallel_for(p.groups * blocks * pieces, checked_mul(n, move_work, "direct weights"),
                 [&](int64_t task) {
      const int64_t panel = task / pieces, ct0 = task % pieces * kPiece;
      const int64_t ct1 = std::min(row, ct0 + kPiece);
      const int64_t g = panel / blocks, blk = panel % blocks;
      T* dst = out + panel * kb * row;
      const T* src = w + (g * Kg + blk * kb) * row;
      const int64_t live = std::min(kb, Kg - blk * kb);  // channels past the group's: zero
      if (transposes)
        transpose.fn(src + ct0, row, live, ct1 - ct0, 0, dst + ct0 * kb);
      else if (kb == 8)
        panel_rows<8>(src, row, live, ct0, ct1, dst);
      else if (kb == 4)
        panel_rows<4>(src, row, live, ct0, ct1, dst);
      else
        panel_rows<0>(src, row, live, ct0, ct1, dst, kb);
    });
  }
  const Band band(p);
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t s = 0; s < p.S; ++s) {
      const int64_t col = s * p.dilation_w;
      packed->taps.push_back(r * p.dilation_h * band.row_len +
                             (col % p.stride_w) * band.phase_len + col / p.stride_w);
      packed->tap_row.push_back(r * p.dilation_h);
      packed->tap_col.push_back(col - p.pad_left);
    }
  if (in_place)
    for (int64_t r = 0; r < p.R; ++r)
      for (int64_t s = 0; s < p.S; ++s)
        packed->plane_taps.push_back(r * p.dilation_h * p.W + s * p.dilation_w);
}


// Output rows per task of the drivers that read the input in place: whole planes,
// unless more tasks are needed to feed the threads (no band to keep cache-resident).
int64_t in_place_rows(const Conv2dParams& p) {
  const int64_t Ho = p.out_h(), want = 4 * pool_threads();
  return p.N * p.groups < want ? ceil_div(Ho, ceil_div(want, p.N * p.groups)) : Ho;
}

// direct_plane on a kernel that reads the input in place (stride_w == 1): no band is
// copied, the kernel masks the padding itself. Tasks are (image, group, band of output
// rows), bands whole planes unless more tasks are needed to feed the threads (the
// kernel's tiles stream the rows; there is no band to keep cache-resident).
template <class T>
void plane_in_place(const Conv2dParams& p, const DirectWeights<T>& pw,
                    const kernels::Kernel<kernels::DirectTileFn<T>>& kernel, const T* x,
                    const T* bias, T* y) {
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  const int64_t Cg = p.C / p.groups, taps = p.R * p.S;
  int64_t rows = in_place_rows(p);
  if (rows > 4 && rows < Ho) rows -= rows % 4;  // whole 4-row tiles
  const int64_t bands = ceil_div(Ho, rows);
  parallel_for(p.N * p.groups * bands, [&](int64_t task) {
    const int64_t b = task % bands, g = (task / bands) % p.groups, n = task / (bands * p.groups);
    const int64_t oh0 = b * rows;
    kernels::DirectTileArgs a{Cg, taps, p.S, pw.taps.data(), p.H * p.W, 0,
                              std::min(rows, Ho - oh0), Wo, 1, 0, Wo};
    a.in_h = p.H;
    a.in_w = p.W;
    a.row0 = oh0 * p.stride_h - p.pad_top;
    a.row_step = p.stride_h;
    a.tap_row = pw.tap_row.data();
    a.tap_col = pw.tap_col.data();
    kernel.fn(a, x + (n * p.C + g * Cg) * p.H * p.W, pw.w.get() + g * Cg * taps,
              bias != nullptr ? bias + g : nullptr, y + ((n * p.K + g) * Ho + oh0) * Wo,
              p.activation);
  });
}


// One band's output rows oh0.. of image n, group g: the kernel once per block of pw.kb
// filters (a: the band's tile arguments; its kn is set here).
template <class T>
void filter_blocks(const Conv2dParams& p, const DirectWeights<T>& pw,
                   const kernels::Kernel<kernels::DirectTileFn<T>>& kernel,
                   kernels::DirectTileArgs& a, const T* xg, const T* bias, T* y, int64_t n,
                   int64_t g, int64_t oh0) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, taps = p.R * p.S;
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  for (int64_t blk = 0; blk < pw.blocks; ++blk) {
    const int64_t k0 = g * Kg + blk * pw.kb;
    a.kn = std::min(pw.kb, Kg - blk * pw.kb);
    kernel.fn(a, xg, pw.w.get() + (g * pw.blocks + blk) * pw.kb * Cg * taps,
              bias != nullptr ? bias + k0 : nullptr, y + ((n * p.K + k0) * Ho + oh0) * Wo,
              p.activation);
  }
}

// direct_nchwc on unpadded input read in place: no band, the kernel reads the NCHW
// planes, output pixels stride_w apart (DirectTileArgs::col_step). Tasks are (image,
// group, band of output rows), whole planes unless more tasks are needed to feed the
// threads; the kernel's own tile groups and channel chunks keep its working set in L1.
template <class T>
void nchwc_in_place(const Conv2dParams& p, const DirectWeights<T>& pw,
                    const kernels::Kernel<kernels::DirectTileFn<T>>& kernel, const T* x,
                    const T* bias, T* y) {
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  const int64_t Cg = p.C / p.groups, taps = p.R * p.S;
  const int64_t rows = in_place_rows(p);
  const int64_t bands = ceil_div(Ho, rows);
  parallel_for(p.N * p.groups * bands, [&](int64_t task) {
    const int64_t b = task % bands, g = (task / bands) % p.groups, n = task / (bands * p.groups);
    const int64_t oh0 = b * rows;
    kernels::DirectTileArgs a{Cg, taps, p.S, pw.plane_taps.data(), p.H * p.W,
                              p.stride_h * p.W, std::min(rows, Ho - oh0), Wo, 0, Ho * Wo, Wo};
    a.col_step = p.stride_w;
    const T* xg = x + (n * p.C + g * Cg) * p.H * p.W + oh0 * p.stride_h * p.W;
    filter_blocks(p, pw, kernel, a, xg, bias, y, n, g, oh0);
  });
}

template <class T>
void direct_run(const Conv2dParams& p, const DirectWeights<T>& pw,
                const kernels::Kernel<kernels::DirectTileFn<T>>& kernel, const T* x,
                const T* bias, T* y) {
  if (pw.plane && kernel.in_place && p.stride_w == 1) {
    plane_in_place(p, pw, kernel, x, bias, y);
    return;
  }
  if (!pw.plane_taps.empty()) {
    nchwc_in_place(p, pw, kernel, x, bias, y);
    return;
  }
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  const int64_t Cg = p.C / p.groups, taps = p.R * p.S;
  const Band band(p);
  // Bands of about 64 KiB of packed input (L2-resident while the channel blocks run;
  // measured best on the one-channel 1024x1024 filter), and enough tasks to keep every
  // thread busy.
  const int64_t per_row = checked_product("direct band", Cg, p.stride_h, band.row_len);
  int64_t rows = std::clamp<int64_t>(int64_t(65536 / sizeof(T)) / per_row, 1, Ho);
  // direct_tile takes a band's rows as one sequence of vectors: with many channels the
  // budget allows one row, whose tail tile is short; 4 rows (L2 still holds them) measured
  // 16% faster on the 256-channel pointwise layer.
  if (!pw.plane) rows = std::min<int64_t>(Ho, std::max<int64_t>(rows, 4));
  const int64_t want = 4 * pool_threads();
  if (p.N * p.groups * ceil_div(Ho, rows) < want)
    rows = std::max<int64_t>(1, ceil_div(Ho, ceil_div(want, p.N * p.groups)));
  if (rows > 4 && rows < Ho) rows -= rows % 4;  // whole 4-row groups (direct_plane)
  // Several threads: a split whose busiest thread gets over 10% more than an even share
  // (14 rows as 7 bands of 2 on 2 threads: 4 bands + 3) takes the widest thinner bands
  // that split evenly (14 bands of 1: 7 + 7). Tasks are claimed dynamically; the count
  // of band rows per thread is what the busiest one computes.
  if (const int threads = pool_threads(); threads > 1) {
    const int64_t units = p.N * p.groups;
    const auto busiest = [&](int64_t r) { return ceil_div(units * ceil_div(Ho, r), threads) * r; };
    const int64_t even = ceil_div(units * Ho, threads);
    for (int64_t r = rows; r >= 1 && 10 * busiest(rows) > 11 * even; --r)
      if ((r <= 4 || r % 4 == 0) && 10 * busiest(r) <= 11 * even) rows = r;
  }
  // One thread, direct_tile: 6 rows where the budget gives 4, if their band stays within
  // 128 KiB: 1.5% faster on the 64-channel 3x3 layer (42 vectors of 56-wide rows: 14
  // whole tiles; 28 end in a 2 + 2 tail) and on AlexNet's first layer. Not with more
  // threads: 6-row bands split 55-56 rows unevenly (30 + 26), 1-4% slower on 2.
  if (!pw.plane && pool_threads() == 1 && rows < 6 && rows < Ho) {
    const int64_t rin6 = 5 * p.stride_h + (p.R - 1) * p.dilation_h + 1;
    if (Cg * rin6 * band.row_len * int64_t(sizeof(T)) <= 131072) rows = std::min<int64_t>(Ho, 6);
  }
  const int64_t bands = ceil_div(Ho, rows);
  const int64_t rin = (rows - 1) * p.stride_h + (p.R - 1) * p.dilation_h + 1;
  const int64_t scratch = checked_product("direct band", Cg, rin, band.row_len);
  parallel_for(p.N * p.groups * bands, [&](int64_t task) {
    const int64_t b = task % bands, g = (task / bands) % p.groups, n = task / (bands * p.groups);
    const int64_t oh0 = b * rows, nrows = std::min(rows, Ho - oh0);
    T* xb = static_cast<T*>(thread_scratch(static_cast<size_t>(scratch) * sizeof(T)));
    const int64_t rin_used = (nrows - 1) * p.stride_h + (p.R - 1) * p.dilation_h + 1;
    for (int64_t c = 0; c < Cg; ++c)
      pack_rows(p, band, x + ((n * p.C + g * Cg + c) * p.H) * p.W,
                oh0 * p.stride_h - p.pad_top, rin_used, xb + c * rin * band.row_len);
    kernels::DirectTileArgs a{Cg, taps, p.S, pw.taps.data(), rin * band.row_len,
                              p.stride_h * band.row_len, nrows, Wo, 0, Ho * Wo, Wo};
    filter_blocks(p, pw, kernel, a, xb, bias, y, n, g, oh0);
  });
}

std::atomic<int> forced_layout{static_cast<int>(DirectLayout::automatic)};

// The layout rule (README.md "How auto chooses", fitted by benchmarks/auto_rule.py):
// channels in the lanes where the table has a direct_nchwc kernel of its own ISA (the
// scalar table's is the twin; the AVX2 table keeps the width-vectorised kernels), the
// group has at least 16 output channels (a full vector; with 6 or 8 the lanes stay
// mostly empty: LeNet's layers 1.2-1.4x slower) and rows of at least 8 outputs (a tile
// of 7 pixels holds too few accumulators: 7x7 layers 1.2x slower) — unless the rows are
// 32 or more wide with their 8-float vectors pairing up (112, 224), where direct_tile runs
// whole zmm vectors too and measured faster (the 7x7 stem 1.19x, VGG's 224-wide layer
// 1.10x). Measured on a Zen 4: a, b at parity, AlexNet's layers 0.88-0.94x the time,
// the 14- and 28-wide deep layers 0.92-0.97x; where direct_tile would run ymm vectors
// (rows of 55, 56: an odd count of 8-float vectors) a full-width AVX-512 machine gains
// the most, since direct_nchwc issues only zmm FMAs.
template <class T>
DirectLayout layout_for(const Conv2dParams& p, const kernels::KernelTable<T>& table) {
  if (p.K == p.groups) return DirectLayout::nchw;  // direct_plane
  const auto forced = static_cast<DirectLayout>(forced_layout.load());
  if (forced != DirectLayout::automatic) return forced;
  if (std::strcmp(table.direct_nchwc.isa, table.isa) != 0) return DirectLayout::nchw;
  const int64_t Kg = p.K / p.groups, Wo = p.out_w();
  const bool zmm_rows = Wo >= 32 && ceil_div(Wo, 8) % 2 == 0;
  return Kg >= 16 && Wo >= 8 && !zmm_rows ? DirectLayout::nchwc : DirectLayout::nchw;
}

template <class T>
const kernels::Kernel<kernels::DirectTileFn<T>>& kernel_for(const Conv2dParams& p,
                                                            const kernels::KernelTable<T>& table) {
  if (p.K == p.groups) return table.direct_plane;
  return layout_for(p, table) == DirectLayout::nchwc ? table.direct_nchwc : table.direct_tile;
}

// direct_nchwc reads the input in place, without a band, where there is no padding to
// make explicit and the band would de-interleave strided rows (stride_w > 1: AlexNet's
// 11x11 stride-4 layer spent 4-5% of its time copying bands; its broadcasts read four
// cache lines per 14 pixels in place instead of one, all in L1 over the 11 taps of a row).
template <class T>
bool nchwc_reads_in_place(const Conv2dParams& p, const kernels::KernelTable<T>& table) {
  const bool unpadded = p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
  return p.K != p.groups && layout_for(p, table) == DirectLayout::nchwc && unpadded &&
         (p.stride_w > 1 || p.R * p.S == 1);
}

// The forward plan: the kernel (direct_plane for one output channel per group, else
// direct_nchwc or direct_tile by the layout rule) of the table it was made with, the
// weights packed for it, the bias.
template <class T>
class DirectPlan final : public ConvPlan<T> {
 public:
  explicit DirectPlan(const PlanRequest<T>& r)
      : p_(r.problem),
        kernel_(kernel_for(p_, r.kernels)),
        bias_(r.bias, p_.K, r.one_shot) {
    direct_pack(p_, kernel_, r.kernels.pack_nr, p_.K == p_.groups,
                nchwc_reads_in_place(p_, r.kernels), r.weight, &weights_);
  }
  void run(const ConvTensors<T>& t) const override {
    Conv2dParams p = p_;
    p.N = t.N;
    direct_run(p, weights_, kernel_, t.x, bias_.get(), t.y);
  }
  // The band buffers (thread_scratch) are the kernels' working set, not counted (conv2d.hpp).
  int64_t workspace_bytes(int64_t, int) const override { return 0; }

 private:
  Conv2dParams p_;
  kernels::Kernel<kernels::DirectTileFn<T>> kernel_;
  DirectWeights<T> weights_;
  PlanBias<T> bias_;
};

bool direct_supports(const Conv2dParams& p, Pass pass, DType) {
  return pass == Pass::forward || backward_supports(Algorithm::direct, p, pass);
}

// The general fallback of the measured rule (README.md "How auto chooses"): wherever the
// GEMM is not the measured choice (im2col.cpp), direct is.
int direct_auto_rank(const Conv2dParams& p, Pass pass, DType dtype) {
  return pass == Pass::forward ? kAutoDefault : backward_auto_rank(Algorithm::direct, p, pass, dtype);
}

template <class T>
std::unique_ptr<ConvPlan<T>> direct_plan(const PlanRequest<T>& r) {
  if (r.pass != Pass::forward) return backward_plan(Algorithm::direct, r);
  if (auto plan = depthwise_nchwc_plan(r)) return plan;  // depthwise.cpp's rule
  return std::make_unique<DirectPlan<T>>(r);
}

}  // namespace

extern const ConvAlgorithm direct_algorithm;
const ConvAlgorithm direct_algorithm = {"direct", Algorithm::direct, &direct_supports,
                                        &direct_auto_rank, &direct_plan<float>,
                                        &direct_plan<double>};

}  // namespace convcore::detail

namespace convcore {

DirectLayout direct_layout_from_name(const char* name) {
  const std::string s(name);
  if (s == "auto") return DirectLayout::automatic;
  if (s == "nchw") return DirectLayout::nchw;
  if (s == "nchwc") return DirectLayout::nchwc;
  throw value_error("direct layout must be one of 'auto', 'nchw', 'nchwc', got '" + s + "'");
}

const char* direct_layout_name(DirectLayout layout) {
  switch (layout) {
    case DirectLayout::automatic: return "auto";
    case DirectLayout::nchw: return "nchw";
    case DirectLayout::nchwc: return "nchwc";
  }
  return "auto";
}

void set_direct_layout(DirectLayout layout) {
  detail::forced_layout.store(static_cast<int>(layout));
}

DirectLayout get_direct_layout() {
  return static_cast<DirectLayout>(detail::forced_layout.load());
}

DirectLayout direct_layout(const Conv2dParams& p) {
  return detail::layout_for(p, detail::kernels<float>());
}

}  // namespace convcore
