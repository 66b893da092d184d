// winograd.cpp — the `winograd` algorithm (algorithm.hpp): 3x3, stride 1, dilation 1
// convolutions as Winograd F(m x m, 3x3), m = 4 (F(2x2, 3x3) for outputs of at most
// kSmallTileMax pixels a side, where 4x4 tiles would waste too much of the image's edge).
// Its registry entry, the switch (set_winograd, CONVCORE_WINOGRAD), its forward plan and
// driver; the transforms are kernel-table slots (winograd_input, winograd_output), the
// element-wise stage the GEMM micro-kernel (gemm.hpp).
//
// Per image n and group g, the output is cut into m x m tiles (tile t = ti*TW + tj) and
// the tiles into blocks of nt (in L2: the block's transformed input V and products M take
// about kWinogradBlockBytes). For one block:
//   1. input transform: for each tile row piece, the band of alpha = m + 2 input rows of
//      every channel of the group, packed in phases (column m*j + q at phase q, element j;
//      zero outside the image; the winograd_pack kernel), then V[pos][c][t] =
//      (BT d BT^T)[pos] by the winograd_input kernel;
//   2. alpha^2 GEMMs M[pos] (Kg x nt) = U[pos] (Kg x Cg) * V[pos] (Cg x nt), U the
//      transformed weights G g G^T (the winograd_weights kernel), packed into the GEMM
//      kernel's A panels once per plan (a Conv2dOp: once; the one-call conv2d: per call);
//   3. output transform: act(bias + AT M AT^T) per output channel into a phase buffer,
//      copied into the output rows by the winograd_unpack kernel (edge tiles clipped).
// Tasks: (image, group, block, row block of the output channels; each row block repeats
// the block's input transform), the block size and the row blocks chosen by a cost model
// of the busiest thread (busiest_thread: GEMM vectors, transform vectors, the claim
// order), so that few tiles still keep every thread busy. Every output is computed by one fixed sequence of operations whatever the blocking (the GEMM's KC blocks
// depend on Cg only), so the bits do not depend on the thread count.
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convcore/runtime.hpp"
#include "kernels/winograd_transform.hpp"
#include "ops/algorithm.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {
namespace {

// CONVCORE_WINOGRAD=0 switches Winograd off for `auto` at start; anything else keeps it on.
bool winograd_from_env() {
  const char* env = std::getenv("CONVCORE_WINOGRAD");
  return env == nullptr || std::string(env) != "0";
}
std::atomic<bool>& winograd_switch() {
  static std::atomic<bool> on{winograd_from_env()};
  return on;
}

}  // namespace

void set_winograd(bool on) { winograd_switch().store(on); }
bool get_winograd() { return winograd_switch().load(); }

}  // namespace convcore

namespace convcore::detail {
namespace {

// F(2x2, 3x3) when the output is at most this many pixels a side (measured:
// benchmarks/auto_rule.py; README.md "How auto chooses").
constexpr int64_t kSmallTileMax = 14;
// V and M of one block of tiles: half of Zen 4's L2 (1 MiB), so U's panels stream beside it.
constexpr int64_t kWinogradBlockBytes = 512 << 10;
// ... or up to the size of one group's transformed weights U, at most this: every block
// streams all of U from L3, so a block whose V and M are smaller than U moves more bytes
// than spilling V and M to L3 would (deep layers on small images: 1x256x14x14 reads 4.2 MB
// of U per block for 1.6 MB of V and M for the whole image: one block, not four).
constexpr int64_t kWinogradBlockMaxBytes = 4 << 20;

int tile_size(const Conv2dParams& p) {
  return p.out_h() <= kSmallTileMax && p.out_w() <= kSmallTileMax ? 2 : 4;
}

// How a call is cut into tasks, and the scratch of one; a function of the sizes and the
// thread count only.
struct WinogradTiling {
  int m, alpha, a2;
  int64_t th, tw, tiles;        // tile rows, columns, tiles per image
  int64_t nt, blocks;           // tiles per block, blocks per (image, group)
  int64_t mpanels, mblocks, mrows;
  int64_t ld;                   // row length of V and M (whole NR panels, odd cache lines)
  int64_t seg;                  // longest piece of a tile row in a block
  int64_t phase, row, chan;     // band strides (phase, row, channel)
  int64_t vpos, mpos;           // position strides of V and M (odd cache lines)
  int64_t band_elems, v_elems, m_elems, out_elems, scratch_elems;
};

int64_t round_up(int64_t a, int64_t b) { return ceil_div(a, b) * b; }

// GEMM cost of n columns in vectors of L = NR/2 (AVX-512: 16 floats): per NR panel its
// vectors, a last one of at most L/2 columns counted as half (the kernels' 256-bit tail).
double gemm_vectors(int64_t n, int64_t NR) {
  const int64_t L = std::max<int64_t>(1, NR / 2);
  double v = 0;
  for (int64_t j = 0; j < n; j += NR) {
    const int64_t w = std::min(NR, n - j), full = (w - 1) / L, rest = w - full * L;
    v += static_cast<double>(full) + (rest <= L / 2 ? 0.5 : 1.0);
  }
  return v;
}

// Transform vectors (of `lanes` tiles) of the block of nt tiles from tile t0: each piece
// of a tile row in the block is a call, its vectors full but the last.
int64_t transform_vectors(int64_t t0, int64_t nt, int64_t tiles, int64_t tw, int64_t lanes) {
  int64_t v = 0;
  for (int64_t t = t0; t < std::min(tiles, t0 + nt);) {
    const int64_t len = std::min(tw - t % tw, t0 + nt - t);
    v += ceil_div(len, lanes);
    t += len;
  }
  return v;
}

// Estimated time of the busiest thread when (image, group) pairs are cut into blocks of
// nt tiles and mb row blocks of the output channels, the tasks claimed in order by
// whichever thread is free. A task's time, in units of one multiply-add of its GEMMs per
// output channel, input channel, position and GEMM vector: its GEMM vectors (plus the
// streaming of its rows of U), its input transform (every channel, whatever mb) and
// output transform (its rows); the weights measured on Zen 4 (a and d of ANCHORS.md: an
// input transform vector costs ~28 GEMM vectors of one output channel, an output one ~16).
double busiest_thread(const WinogradTiling& w, const Conv2dParams& p, int64_t elem, int64_t nt,
                      int64_t mb, int64_t MR, int64_t NR, int64_t lanes, int64_t threads) {
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, blocks = ceil_div(w.tiles, nt);
  // Streaming the task's rows of U: from L2 a quarter vector; larger than L2 (twice the
  // block budget), from L3 or memory, as much as a vector (measured: two threads each
  // streaming all of the 7x7 512-channel layer's 16.8 MB of U took as long as one thread
  // doing all the work).
  const int64_t u_bytes = w.a2 * Cg * Kg * static_cast<int64_t>(elem);
  const double stream = u_bytes > 2 * kWinogradBlockBytes ? 1.0 : 0.25;
  std::vector<double> cost(static_cast<size_t>(blocks * mb));
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t t0 = b * nt;
    const double gv = gemm_vectors(std::min(nt, w.tiles - t0), NR);
    const double tv = static_cast<double>(transform_vectors(t0, nt, w.tiles, w.tw, lanes));
    for (int64_t r = 0; r < mb; ++r) {
      const int64_t m0 = w.mpanels * r / mb * MR;
      const double rows = static_cast<double>(std::min(Kg, w.mpanels * (r + 1) / mb * MR) - m0);
      cost[b * mb + r] = rows * Cg * (gv + stream) + 28.0 * Cg * tv + 16.0 * rows * tv;
    }
  }
  // Claimed in order: task i goes to the thread that frees first. Many tasks or threads:
  // whole rounds of the mean task.
  const int64_t tasks = p.N * p.groups * blocks * mb;
  if (threads > 64 || tasks > 8 * threads) {
    double total = 0;
    for (double c : cost) total += c;
    return static_cast<double>(ceil_div(tasks, threads)) * total / static_cast<double>(blocks * mb);
  }
  std::vector<double> load(static_cast<size_t>(threads), 0.0);
  for (int64_t i = 0; i < tasks; ++i) {
    auto free = std::min_element(load.begin(), load.end());
    *free += cost[static_cast<size_t>(i % (blocks * mb))];
  }
  return *std::max_element(load.begin(), load.end());
}

template <class T>
WinogradTiling tiling(const Conv2dParams& p, int64_t MR, int64_t NR, int64_t lanes,
                      int64_t threads) {
  WinogradTiling w;
  w.m = tile_size(p);
  w.alpha = w.m + 2;
  w.a2 = w.alpha * w.alpha;
  w.th = ceil_div(p.out_h(), w.m);
  w.tw = ceil_div(p.out_w(), w.m);
  w.tiles = w.th * w.tw;
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, elem = sizeof(T);
  const int64_t per_tile = w.a2 * (Cg + Kg) * elem;
  const int64_t u_bytes = w.a2 * Cg * Kg * elem;
  const int64_t budget = std::max(kWinogradBlockBytes, std::min(u_bytes, kWinogradBlockMaxBytes));
  const int64_t fit = std::max<int64_t>(1, budget / per_tile);
  // Blocks of whole tile rows when a row fits (the transforms then run whole rows of
  // tiles, full vectors but the row's last), else of whole NR-wide GEMM panels: every
  // size up to the budget is a candidate, with the output channels split in 1 to
  // `threads` row blocks; the one with the least estimated time of the busiest thread
  // wins.
  const int64_t unit = w.tw <= fit ? w.tw : NR;
  const int64_t most = std::min(ceil_div(w.tiles, unit), std::max<int64_t>(1, fit / unit));
  w.mpanels = ceil_div(Kg, MR);
  double best = -1;
  // The largest blocks and up to 15 smaller ones (with more blocks, the threads balance).
  for (int64_t units = most; units >= std::max<int64_t>(1, most - 15); --units) {
    const int64_t nt = std::min(w.tiles, units * unit);
    for (int64_t mb = 1; mb <= std::min<int64_t>(threads, w.mpanels); ++mb) {
      const double t = busiest_thread(w, p, elem, nt, mb, MR, NR, lanes, threads);
      if (best < 0 || t < best) {
        best = t;
        w.nt = nt;
        w.mblocks = mb;
      }
    }
  }
  w.blocks = ceil_div(w.tiles, w.nt);
  w.mrows = ceil_div(w.mpanels, w.mblocks) * MR;
  const int64_t line = 64 / elem;
  w.ld = round_up(w.nt, NR);
  if ((w.ld / line) % 2 == 0) w.ld += line;  // rows spread over every L1 set (im2col.cpp)
  w.seg = std::min(w.tw, w.nt);
  w.phase = round_up(w.seg + 1, line);
  w.row = w.m * w.phase;
  w.chan = w.alpha * w.row;
  w.band_elems = Cg * w.chan;
  // The transforms write (read) all a2 positions of a tile at once: position strides of
  // an odd number of lines, or Cg * ld (a multiple of 4 KiB for 64 or 256 channels) puts
  // all 16 or 36 streams in one L1 set.
  const auto odd_lines = [&](int64_t n) { return (n / line) % 2 == 0 ? n + line : n; };
  w.vpos = odd_lines(checked_product("winograd workspace", Cg, w.ld));
  w.mpos = odd_lines(checked_product("winograd workspace", w.mrows, w.ld));
  w.v_elems = checked_product("winograd workspace", w.a2, w.vpos);
  w.m_elems = checked_product("winograd workspace", w.a2, w.mpos);
  w.out_elems = w.m * w.row;
  w.scratch_elems = w.band_elems + w.v_elems + w.m_elems + w.out_elems;
  return w;
}

// Band of tile row ti, tile columns [tj0, tj0 + n), every channel of the group (xg): channel
// c, row r, phase q, element j (j <= n) = input (ti*m - pad_top + r, (tj0 + j)*m + q -
// pad_left), zero outside the image. The elements whose m phases are all inside the row
// (all but the edges) by the table's pack kernel, all channels of a row in one call; the
// edges and the rows outside the image here.
template <int M, class T>
void pack_band(const Conv2dParams& p, const WinogradTiling& w, kernels::WinogradPackFn<T> pack,
               const T* xg, int64_t ti, int64_t tj0, int64_t n, T* band) {
  const int64_t Cg = p.C / p.groups, plane = p.H * p.W;
  const int64_t iw0 = tj0 * M - p.pad_left;  // column of phase 0, element 0
  // Elements [lo, hi) have all M phases inside the row: iw0 + j*M >= 0, iw0 + j*M + M <= W.
  const int64_t lo = std::min<int64_t>(n + 1, ceil_div(std::max<int64_t>(-iw0, 0), M));
  const int64_t hi = std::clamp<int64_t>(
      iw0 + M > p.W ? 0 : (p.W - iw0 - M) / M + 1, lo, n + 1);
  for (int r = 0; r < w.alpha; ++r) {
    const int64_t ih = ti * M - p.pad_top + r;
    if (ih < 0 || ih >= p.H) {
      for (int64_t c = 0; c < Cg; ++c) {
        T* row = band + c * w.chan + r * w.row;
        for (int q = 0; q < M; ++q) std::fill(row + q * w.phase, row + q * w.phase + n + 1, T(0));
      }
      continue;
    }
    const T* src = xg + ih * p.W;
    if (hi > lo)
      pack(kernels::WinogradPackArgs{M, hi - lo, Cg, plane, w.chan, w.phase}, src + iw0 + lo * M,
           band + r * w.row + lo);
    if (lo == 0 && hi == n + 1) continue;
    for (int64_t c = 0; c < Cg; ++c) {
      const T* s = src + c * plane;
      T* row = band + c * w.chan + r * w.row;
      const auto edge = [&](int64_t j) {
        for (int q = 0; q < M; ++q) {
          const int64_t iw = iw0 + j * M + q;
          row[q * w.phase + j] = iw >= 0 && iw < p.W ? s[iw] : T(0);
        }
      };
      for (int64_t j = 0; j < lo; ++j) edge(j);
      for (int64_t j = hi; j <= n; ++j) edge(j);
    }
  }
}

// U = G g G^T of every filter (the table's winograd_weights kernel), packed for the GEMM:
// group g, position pos, then the MR-row A panels of that position's Kg x Cg matrix (rows
// past Kg zero). One task per panel of MR output channels: the panel's filters copied
// tap-major in the panel's own order (element (c, i) at c*MR + i, as pack_mr lays it out),
// so one kernel call, its lanes running over the whole panel, writes every position's
// panel in place: no per-channel calls, no packing pass.
template <class T>
void transform_weights(const Conv2dParams& p, int m, const GemmKernel<T>& gk,
                       kernels::WinogradWeightsFn<T> fn, const T* w, T* u, int64_t per_pos) {
  const int64_t MR = gk.mr;
  const int64_t a2 = (m + 2) * (m + 2);
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, panels = ceil_div(Kg, MR);
  const int64_t n = MR * Cg;  // one panel's filters
  parallel_for(p.groups * panels, [&](int64_t task) {
    const int64_t g = task / panels, k0 = (task % panels) * MR;
    const int64_t rows = std::min(MR, Kg - k0);
    T* ft = static_cast<T*>(thread_scratch(static_cast<size_t>(9 * n) * sizeof(T)));
    // Channel outer, filter inner: each tap's writes run along the panel (9 streams),
    // the reads along the panel's rows 9 taps at a time.
    const T* src = w + (g * Kg + k0) * Cg * 9;
    for (int64_t c = 0; c < Cg; ++c)
      for (int64_t i = 0; i < rows; ++i)
        for (int t = 0; t < 9; ++t) ft[t * n + c * MR + i] = src[(i * Cg + c) * 9 + t];
    // Rows past Kg: zero filters, so zero panel rows.
    for (int t = 0; t < 9 && rows < MR; ++t)
      for (int64_t c = 0; c < Cg; ++c)
        std::fill(ft + t * n + c * MR + rows, ft + t * n + c * MR + MR, T(0));
    fn(kernels::WinogradWeightsArgs{m, n, n, per_pos}, ft, u + g * a2 * per_pos + k0 * Cg);
  });
}

// The forward plan: the kernels of the table it was made with, the transformed weights
// (packed per plan; none for a plan made only for workspace_bytes), the bias.
template <class T>
class WinogradPlan final : public ConvPlan<T> {
 public:
  explicit WinogradPlan(const PlanRequest<T>& r)
      : p_(r.problem),
        gk_(gemm_kernel(r.kernels)),
        pack_(r.kernels.winograd_pack.fn),
        input_(r.kernels.winograd_input.fn),
        lanes_(std::max(1, r.kernels.winograd_input.nr)),
        output_(r.kernels.winograd_output.fn),
        unpack_(r.kernels.winograd_unpack.fn),
        bias_(r.bias, p_.K, r.one_shot) {
    if (r.weight == nullptr) return;
    const int m = tile_size(p_), a2 = (m + 2) * (m + 2);
    const int64_t Cg = p_.C / p_.groups, Kg = p_.K / p_.groups;
    per_pos_ = checked_product("winograd weights", ceil_div(Kg, gk_.mr), gk_.mr, Cg);
    const int64_t total = checked_product("winograd weights", per_pos_, a2, p_.groups);
    // One-shot (the one-call conv2d): the calling thread's kept buffer, no fresh pages.
    T* u = r.one_shot ? static_cast<T*>(thread_plan_scratch(static_cast<size_t>(total) * sizeof(T)))
                      : nullptr;
    if (u == nullptr) {
      owned_ = Buffer<T>(total);
      u = owned_.get();
    }
    u_ = u;
    transform_weights<T>(p_, m, gk_, r.kernels.winograd_weights.fn, r.weight, u, per_pos_);
  }

  void run(const ConvTensors<T>& t) const override {
    Conv2dParams p = p_;
    p.N = t.N;
    const WinogradTiling w = tiling<T>(p, gk_.mr, gk_.nr, lanes_, pool_threads());
    const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, MR = gk_.mr;
    const int64_t Ho = p.out_h(), Wo = p.out_w(), per_image = w.blocks * w.mblocks;
    const T* bias = bias_.get();
    parallel_for(p.N * p.groups * per_image, [&](int64_t task) {
      const int64_t mblk = task % w.mblocks, blk = (task / w.mblocks) % w.blocks;
      const int64_t g = (task / per_image) % p.groups, n = task / (per_image * p.groups);
      const int64_t t0 = blk * w.nt, nb = std::min(w.nt, w.tiles - t0);
      const int64_t m0 = w.mpanels * mblk / w.mblocks * MR;
      const int64_t rows = std::min(Kg, w.mpanels * (mblk + 1) / w.mblocks * MR) - m0;
      T* band = static_cast<T*>(thread_scratch(static_cast<size_t>(w.scratch_elems) * sizeof(T)));
      T* v = band + w.band_elems;
      T* mm = v + w.v_elems;
      T* out = mm + w.m_elems;
      const T* xg = t.x + (n * p.C + g * Cg) * p.H * p.W;

      // 1. Input transform, one piece of a tile row at a time.
      for (int64_t tt = t0; tt < t0 + nb;) {
        const int64_t ti = tt / w.tw, tj0 = tt % w.tw, len = std::min(w.tw - tj0, t0 + nb - tt);
        if (w.m == 4)
          pack_band<4>(p, w, pack_, xg, ti, tj0, len, band);
        else
          pack_band<2>(p, w, pack_, xg, ti, tj0, len, band);
        const kernels::WinogradInputArgs a{w.m, len, w.row, w.phase, w.vpos};
        for (int64_t c = 0; c < Cg; ++c) input_(a, band + c * w.chan, v + c * w.ld + (tt - t0));
        tt += len;
      }
      // 2. The element-wise stage: alpha^2 GEMMs over the channels.
      const T* ug = u_ + g * w.a2 * per_pos_ + m0 * Cg;
      const T* no_bias = nullptr;
      for (int pos = 0; pos < w.a2; ++pos) {
        const T* upos = ug + pos * per_pos_;
        const T* vpos = v + pos * w.vpos;
        auto a_src = [&](int64_t i0, int64_t, int64_t k0, int64_t) {
          return Panels<T>{upos + i0 * Cg + k0 * MR, MR * Cg, MR};
        };
        auto b_src = [&](int64_t k0, int64_t) { return Panels<T>{vpos + k0 * w.ld, gk_.nr, w.ld}; };
        gemm_tile(gk_, rows, nb, Cg, a_src, b_src, mm + pos * w.mpos, w.ld, no_bias,
                  false, Activation{});
      }
      // 3. Output transform per output channel, into the output rows.
      for (int64_t tt = t0; tt < t0 + nb;) {
        const int64_t ti = tt / w.tw, tj0 = tt % w.tw, len = std::min(w.tw - tj0, t0 + nb - tt);
        const kernels::WinogradOutputArgs a{w.m, len, w.mpos, w.row, w.phase};
        const int64_t oh0 = ti * w.m, nrows = std::min<int64_t>(w.m, Ho - oh0);
        // The output columns from tj0*m, those past Wo dropped.
        const kernels::WinogradUnpackArgs u{w.m, len, nrows, std::min(len * w.m, Wo - tj0 * w.m),
                                            w.row, w.phase, Wo};
        for (int64_t kk = 0; kk < rows; ++kk) {
          const int64_t k = g * Kg + m0 + kk;
          output_(a, mm + kk * w.ld + (tt - t0), bias != nullptr ? bias + k : nullptr, out,
                  p.activation);
          unpack_(u, out, t.y + ((n * p.K + k) * Ho + oh0) * Wo + tj0 * w.m);
        }
        tt += len;
      }
    });
  }

  int64_t workspace_bytes(int64_t N, int threads) const override {
    Conv2dParams p = p_;
    p.N = N;
    const WinogradTiling w = tiling<T>(p, gk_.mr, gk_.nr, lanes_, threads);
    const int64_t tasks = checked_product("winograd tasks", N, p.groups, w.blocks, w.mblocks);
    return checked_product("winograd workspace", std::min<int64_t>(threads, tasks),
                           w.scratch_elems, static_cast<int64_t>(sizeof(T)));
  }

 private:
  Conv2dParams p_;
  GemmKernel<T> gk_;
  kernels::WinogradPackFn<T> pack_;
  kernels::WinogradInputFn<T> input_;
  int64_t lanes_;  // tiles per vector of the transforms
  kernels::WinogradOutputFn<T> output_;
  kernels::WinogradUnpackFn<T> unpack_;
  Buffer<T> owned_;    // the transformed weights of a lasting plan (Conv2dOp)
  const T* u_ = nullptr;  // those, or a one-shot plan's in thread_plan_scratch
  int64_t per_pos_ = 0;  // elements of one position's panels
  PlanBias<T> bias_;
};

// Why Winograd cannot run this problem ("" when it can).
std::string winograd_unsupported(const Conv2dParams& p, Pass pass, DType) {
  if (pass != Pass::forward)
    return std::string("algorithm 'winograd' computes the forward pass only, not ") +
           pass_name(pass) + " (the backward passes use direct or im2col)";
  const auto n = [](int64_t v) { return std::to_string(v); };
  if (p.R != 3 || p.S != 3)
    return "algorithm 'winograd' needs a 3x3 kernel, got " + n(p.R) + "x" + n(p.S);
  if (p.stride_h != 1 || p.stride_w != 1)
    return "algorithm 'winograd' needs stride 1, got (" + n(p.stride_h) + ", " + n(p.stride_w) + ")";
  if (p.dilation_h != 1 || p.dilation_w != 1)
    return "algorithm 'winograd' needs dilation 1, got (" + n(p.dilation_h) + ", " +
           n(p.dilation_w) + ")";
  if (p.C / p.groups < 4)
    return "algorithm 'winograd' needs at least 4 input channels per group (C/groups), got " +
           n(p.C / p.groups);
  return "";
}

bool winograd_supports(const Conv2dParams& p, Pass pass, DType dtype) {
  return winograd_unsupported(p, pass, dtype).empty();
}

// `auto` (README.md "How auto chooses"): float32 only (its error bound is larger than the
// summation bound, which float64 users choose for), never when switched off
// (set_winograd(false), CONVCORE_WINOGRAD=0); ahead of the GEMM and direct where
// benchmarks/auto_rule.py measured it faster: at least kAutoMinChannels input channels
// per group (with fewer the transforms cost more than the multiplications saved) and at
// least kAutoMinPixels output pixels in the batch (with fewer, the weight transform — per
// call in the functional conv2d — and the transformed weights, 16/9 or 36/9 times the
// weights, are paid for too few tiles: measured, 7x7 outputs of one image lost to direct
// or im2col by 10-55%; 14x14 with 128 and 256 channels won by 4-15%, 64 channels were
// within 6% of direct; 28x28 and larger won). Outputs of at most 16x16 per image
// (batches of small images: the classify CNN's 15x15 and 16x16 maps) also need at least
// kAutoMinChannelsSmall input channels per group: their 4x4 tiles overhang the map by up
// to a third and the transforms cost more per multiply-add saved; measured (Zen 4, 1
// thread, batch 32) winograd took 1.47x direct's time at 16 channels, 1.32x at 32, 1.09x
// at 64 (16x16 and 15x15, 14x14 outputs), and won at 256 (14x14, shape d).
constexpr int64_t kAutoMinChannels = 16, kAutoMinPixels = 14 * 14;
constexpr int64_t kSmallImagePixels = 16 * 16, kAutoMinChannelsSmall = 128;

int winograd_auto_rank(const Conv2dParams& p, Pass pass, DType dtype) {
  if (pass != Pass::forward || dtype != DType::f32 || !get_winograd()) return kAutoNever;
  const int64_t image = p.out_h() * p.out_w();
  const int64_t min_channels = image <= kSmallImagePixels ? kAutoMinChannelsSmall
                                                          : kAutoMinChannels;
  const bool faster = p.C / p.groups >= min_channels && p.N * image >= kAutoMinPixels;
  return faster ? kAutoPreferred - 1 : kAutoNever;
}

template <class T>
std::unique_ptr<ConvPlan<T>> winograd_plan(const PlanRequest<T>& r) {
  return std::make_unique<WinogradPlan<T>>(r);
}

}  // namespace

extern const ConvAlgorithm winograd_algorithm;
const ConvAlgorithm winograd_algorithm = {"winograd",           Algorithm::winograd,
                                          &winograd_supports,   &winograd_auto_rank,
                                          &winograd_plan<float>, &winograd_plan<double>,
                                          &winograd_unsupported};

}  // namespace convcore::detail
