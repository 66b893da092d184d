// im2col.cpp — the `im2col` algorithm (algorithm.hpp): convolution as GEMM, Y_g (Kg x P) =
// W_g (Kg x Cg*R*S) * X_g (Cg*R*S x P) per image n and group g (groups are independent
// GEMMs), P = Ho*Wo output pixels, on the driver of gemm.hpp. Its registry entry, its
// forward plan and driver.
//
// A = the weights in MR-row panels of the plan's GEMM kernel: packed once by a lasting plan
// (Conv2dOp), or, in a one-shot plan (the one-call conv2d), read from the caller's array
// and packed into scratch: a row block's panels whole, once per call and thread, when
// they are small (kIm2colWholeABytes: the layers of few channels, whose many pixel tiles
// would each re-pack them), else per MC x KC block. B = the im2col matrix, never materialised:
// the gather is fused into
// B's packing, one KC x NC block at a time (NC output pixels, about kGemmBlockBytes,
// stored row-major so that the copies are long and the kernel reads its panels in
// place), so the extra memory is one such block and one A block per thread whatever the
// image size (at most kIm2colBudget in all). A 1x1 stride-1 unpadded convolution's B is
// the input itself (channel rows of P pixels): the kernel reads it in place, and only a
// partial last panel is copied. Tasks: (image, group, pixel tile, and row blocks of the
// output channels when there are fewer pixel tiles than threads); their count depends on
// the thread count, their arithmetic never.
#include <algorithm>
#include <atomic>
#include <numeric>
#include <vector>

#include "checked.hpp"
#include "ops/algorithm.hpp"
#include "ops/conv_backward.hpp"
#include "ops/conv_pieces.hpp"
#include "ops/gemm.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

// All threads' im2col scratch together, whatever the image size.
constexpr int64_t kIm2colBudget = 16 << 20;
// One-call conv2d: a row block of weights whose panels take at most this is packed whole
// once per call and thread, then read by every pixel tile the thread runs (a's 64 x 576
// float weights, 158 KiB of panels, were re-packed for each of its 14 tiles: 4% of the
// call). Beside a 256 KiB B block it stays in the 1 MiB L2 of Zen 4 and Zen 5.
constexpr int64_t kIm2colWholeABytes = 192 << 10;

// How a call is cut into tasks; a function of the sizes and the thread count only.
struct Im2colTiling {
  int64_t kc;               // KC block length
  int64_t nc, tiles;        // pixels per tile, tiles per (image, group)
  int64_t mpanels, mblocks; // MR-row panels of output channels per group, row blocks
  int64_t mrows;            // output channels of the largest row block
  bool in_place;            // 1x1 stride 1, no padding: B is the input
  bool whole_a;             // one-call conv2d packs a row block's weights whole (else per block)
  int64_t a_block_elems;    // the row block's panels (whole_a) or one MC x KC block of them
  int64_t scratch_elems;    // per task: the B block (or partial panel), then the A block
};

// Row length of a gathered B block of np pixels: whole NR-wide panels, and an odd number
// of cache lines (one line more when even; NR may be two lines, AVX-512), so that the KC
// rows of one panel spread over every L1 set (with an even number the rows of a 288-long
// panel hit half the sets and no longer fit the 8 ways).
int64_t gather_ld(int64_t np, int64_t NR, size_t elem) {
  const int64_t ld = ceil_div(np, NR) * NR;
  const int64_t line = 64 / static_cast<int64_t>(elem);  // NR is whole lines
  return (ld / line) % 2 == 1 ? ld : ld + line;
}

template <class T>
Im2colTiling tiling(const Conv2dParams& p, int64_t MR, int64_t NR, int64_t threads) {
  Im2colTiling pl;
  const int64_t P = p.out_h() * p.out_w(), Kg = p.K / p.groups;
  const int64_t kd = p.C / p.groups * p.R * p.S;
  pl.kc = gemm_kc(kd);
  pl.in_place = p.R == 1 && p.S == 1 && p.stride_h == 1 && p.stride_w == 1 &&
                p.pad_top == 0 && p.pad_bottom == 0 && p.pad_left == 0 && p.pad_right == 0;
  // B block: kGemmBlockBytes, less when many threads would take more than the budget
  // (each also holds an A block and the odd-line panel of gather_ld), never under a panel.
  const int64_t elem = static_cast<int64_t>(sizeof(T));
  const int64_t a_most = std::max(gemm_mc<T>() / MR * MR * pl.kc * elem, kIm2colWholeABytes);
  const int64_t share = kIm2colBudget / threads - a_most - NR * pl.kc * elem;
  const int64_t block = std::clamp(share, pl.kc * NR * elem, kGemmBlockBytes);
  const int64_t nc_cache = std::max<int64_t>(1, block / elem / pl.kc / NR) * NR;
  const int64_t base = p.N * p.groups;
  // Enough tiles that the tasks divide evenly over the threads (balanced tiles).
  const int64_t even = threads / std::gcd(base, threads);
  const int64_t tiles0 = ceil_div(ceil_div(P, nc_cache), even) * even;
  const int64_t tiles1 = std::min(tiles0, ceil_div(P, NR));
  pl.nc = ceil_div(ceil_div(P, tiles1), NR) * NR;
  pl.tiles = ceil_div(P, pl.nc);
  // Few pixels (deep layers): split the output channels too.
  const int64_t want = ceil_div(threads, base * pl.tiles);
  pl.mpanels = ceil_div(Kg, MR);
  pl.mblocks = std::min(want, pl.mpanels);
  pl.mrows = ceil_div(pl.mpanels, pl.mblocks) * MR;
  pl.whole_a = pl.mrows * kd * elem <= kIm2colWholeABytes;
  pl.a_block_elems = pl.whole_a ? pl.mrows * kd : std::min(gemm_mc<T>() / MR * MR, pl.mrows) * pl.kc;
  pl.scratch_elems =
      pl.kc * (pl.in_place ? NR : gather_ld(pl.nc, NR, sizeof(T))) + pl.a_block_elems;
  return pl;
}

}  // namespace

// B block: rows [k0, k0 + kc) of the im2col matrix (row kk = (c, r, s)) for output pixels
// [p0, p0 + np), row-major with row length ld >= np (columns past np zero); the kernel
// reads its NR-wide panels in place (panel p at b + p*NR, rows ld apart). Rows rather than
// NR-wide panels keep the copies long: the pixels of one output row form a segment, and
// for each tap a segment reads input row ih at iw0, iw0 + sw, ...: taps outside [0, W)
// are zero, the others one branch-free strided (for stride 1, contiguous) copy.
template <class T>
void im2col_gather(const Conv2dParams& p, const T* xg, int64_t k0, int64_t kc, int64_t p0,
                   int64_t np, int64_t ld, T* b) {
  const int64_t Wo = p.out_w(), RS = p.R * p.S, sw = p.stride_w;
  struct Seg {
    int64_t j, count, ih0, iw0;
  };
  std::vector<Seg> segs;
  for (int64_t j = 0; j < np;) {
    const int64_t pix = p0 + j, oh = pix / Wo, ow = pix % Wo;
    const int64_t count = std::min(np - j, Wo - ow);
    segs.push_back({j, count, oh * p.stride_h - p.pad_top, ow * sw - p.pad_left});
    j += count;
  }
  // Strided, undilated: tap s sees what tap s - sw saw one pixel later, so when that row
  // is in this block, all but a segment's last value are a contiguous copy of it.
  const bool shift = sw > 1 && p.dilation_w == 1;
  // Undilated rows, likewise: tap row r sees what tap row r - stride_h saw one output row
  // (Wo pixels) later, so all but the block's last Wo pixels are one contiguous copy of
  // that B row (S*stride_h rows up) when it is in this block; the rest is gathered. For
  // AlexNet's 11x11 stride-4 layer this leaves 4 of 11 tap rows to gather whole.
  const bool above = p.dilation_h == 1 && np > Wo;
  const int64_t up = p.stride_h * p.S;  // B rows between tap rows r and r - stride_h
  // Stride 1 with output rows as long as the input's ("same" padding): pixel pix of tap
  // (r, s) reads the plane at pix + (r*dh - pad_top)*W + s*dw - pad_left, so a row of B
  // is one copy of a span of the plane, then zeros where the tap falls in the padding
  // (one long copy instead of one per output row: 14-pixel rows made the copies' calls
  // cost as much as the copying).
  const bool flat = p.stride_h == 1 && sw == 1 && Wo == p.W;
  const int64_t plane = p.H * p.W;
  int64_t c = k0 / RS, r = (k0 % RS) / p.S, s = k0 % p.S;
  for (int64_t kk = 0; kk < kc; ++kk) {
    T* row = b + kk * ld;
    const T* xc = xg + c * plane;
    const bool from_prev = shift && s >= sw && kk >= sw;
    // The pixels [0, first) copied from the row `up` rows above; segments start there.
    int64_t first_px = 0;
    if (!flat && above && r >= p.stride_h && kk >= up) {
      first_px = np - Wo;
      const T* src = row - up * ld + Wo;
      std::copy(src, src + first_px, row);
    }
    if (flat) {
      const int64_t first =
          p0 + (r * p.dilation_h - p.pad_top) * p.W + s * p.dilation_w - p.pad_left;
      const int64_t lo = std::clamp<int64_t>(-first, 0, np);
      const int64_t hi = std::clamp<int64_t>(plane - first, lo, np);
      std::fill(row, row + lo, T(0));
      std::copy(xc + (first + lo), xc + (first + hi), row + lo);
      std::fill(row + hi, row + np, T(0));
    }
    for (const Seg& sg : segs) {
      if (sg.j + sg.count <= first_px) continue;
      // This segment's pixels t in [t0, count) are still to fill.
      const int64_t t0 = std::max<int64_t>(0, first_px - sg.j);
      T* out = row + sg.j;
      const int64_t ih = sg.ih0 + r * p.dilation_h;
      const int64_t iw0 = sg.iw0 + s * p.dilation_w;
      if (ih < 0 || ih >= p.H) {
        std::fill(out + t0, out + sg.count, T(0));
        continue;
      }
      const T* src = xc + ih * p.W + iw0;
      // Taps t in [lo, hi) are inside the row: iw0 + t*sw in [0, W).
      // (stride 1 without the divisions: two per segment showed in small images' profiles)
      const int64_t lo = iw0 >= 0 ? 0
                         : std::min(sg.count, sw == 1 ? -iw0 : (-iw0 + sw - 1) / sw);
      const int64_t hi =
          std::clamp<int64_t>(sw == 1 ? p.W - iw0 : (p.W - iw0 + sw - 1) / sw, lo, sg.count);
      if (flat) {  // copied above: zero the taps in the padding (a few, mostly none)
        for (int64_t t = 0; t < lo; ++t) out[t] = T(0);
        for (int64_t t = hi; t < sg.count; ++t) out[t] = T(0);
        continue;
      }
      if (from_prev) {
        const T* prev = out - sw * ld;
        std::copy(prev + t0 + 1, prev + sg.count, out + t0);
        const int64_t t = sg.count - 1;
        out[t] = t >= lo && t < hi ? src[t * sw] : T(0);
        continue;
      }
      const int64_t in0 = std::max(lo, t0), in1 = std::max(hi, t0);
      // Short segments (small images: LeNet's 10-pixel rows) as plain loops: a library
      // call per few elements cost more than the copying (a third of the weight
      // gradient's time on LeNet's second layer).
      if (sg.count <= 32) {
        for (int64_t t = t0; t < in0; ++t) out[t] = T(0);
        if (sw == 1)
          for (int64_t t = in0; t < in1; ++t) out[t] = src[t];
        else
          for (int64_t t = in0; t < in1; ++t) out[t] = src[t * sw];
        for (int64_t t = in1; t < sg.count; ++t) out[t] = T(0);
        continue;
      }
      std::fill(out + t0, out + in0, T(0));
      if (sw == 1)
        std::copy(src + in0, src + in1, out + in0);
      else
        for (int64_t t = in0; t < in1; ++t) out[t] = src[t * sw];
      std::fill(out + in1, out + sg.count, T(0));
    }
    std::fill(row + np, row + ld, T(0));
    if (++s == p.S) {
      s = 0;
      if (++r == p.R) r = 0, ++c;
    }
  }
}

template void im2col_gather(const Conv2dParams&, const float*, int64_t, int64_t, int64_t,
                            int64_t, int64_t, float*);
template void im2col_gather(const Conv2dParams&, const double*, int64_t, int64_t, int64_t,
                            int64_t, int64_t, double*);

namespace {

// A panels of every group, for the plan's GEMM kernel (its MR).
template <class T>
struct Im2colWeights {
  Buffer<T> a;
  int64_t per_group = 0;  // elements of one group's panels
};

template <class T>
void im2col_pack(const Conv2dParams& p, const GemmKernel<T>& gk, const T* w,
                 Im2colWeights<T>* packed) {
  const int64_t MR = gk.mr;
  const int64_t Kg = p.K / p.groups, kd = p.C / p.groups * p.R * p.S;
  packed->per_group = checked_product("im2col packed weights", ceil_div(Kg, MR), MR, kd);
  packed->a = Buffer<T>(checked_mul(packed->per_group, p.groups, "im2col packed weights"));
  for (int64_t g = 0; g < p.groups; ++g)
    pack_panels(gk, w + g * Kg * kd, kd, Kg, 0, kd, packed->a.get() + g * packed->per_group);
}

// Which weights this thread's scratch holds (whole_a in run_tasks): the call (a
// counter, so a later call never takes it for its own), group, row block, where. Between
// two tasks of one call a thread runs nothing else (the pool serves one parallel_for at a
// time; im2col tasks call no op), so the block cannot have been overwritten.
struct ABlockKey {
  uint64_t call = 0;
  int64_t g = -1, mblk = -1;
  const void* at = nullptr;
  bool is(uint64_t c, int64_t gr, int64_t mb, const void* p) const {
    return call == c && g == gr && mblk == mb && at == p;
  }
};
thread_local ABlockKey a_block_cached;
std::atomic<uint64_t> a_block_calls{0};

// The tasks of one call. Weights come from `packed` (Conv2dOp: panels packed once) or,
// when it is null, from the raw weights w, packed per MC x KC block into the task's
// scratch (the one-call conv2d: packing all weights up front would be a pass over them
// and a fresh buffer per call, which costs up to a fifth of a deep layer's time).
template <class T>
void run_tasks(const Conv2dParams& p, const GemmKernel<T>& gk, const Im2colWeights<T>* packed,
               const T* w, const T* x, const T* bias, T* y) {
  const int64_t MR = gk.mr, NR = gk.nr;
  const int64_t P = p.out_h() * p.out_w();
  const int64_t Cg = p.C / p.groups, Kg = p.K / p.groups, kd = Cg * p.R * p.S;
  const Im2colTiling pl = tiling<T>(p, MR, NR, pool_threads());
  const int64_t per_image = pl.tiles * pl.mblocks;
  // One-call conv2d with small weights (pl.whole_a): a row block's panels are the same
  // for every pixel tile, so a thread packs them once per call and row block instead of
  // once per task (e's 64 x 256 weights were packed 13 times, 5% of the layer's time).
  const bool whole = packed == nullptr && pl.whole_a;
  const uint64_t call = ++a_block_calls;

  parallel_for(p.N * p.groups * per_image, [&](int64_t t) {
    const int64_t mblk = t % pl.mblocks, tile = (t / pl.mblocks) % pl.tiles;
    const int64_t g = (t / per_image) % p.groups, n = t / (per_image * p.groups);
    const int64_t p0 = tile * pl.nc, np = std::min(pl.nc, P - p0);
    // Row block mblk: panels [mblk*mpanels/mblocks, (mblk+1)*mpanels/mblocks), so the
    // blocks differ by at most one panel (with MR = 14, 256 channels in whole blocks of
    // a uniform size would split 140 + 116).
    const int64_t m0 = pl.mpanels * mblk / pl.mblocks * MR;
    const int64_t rows = std::min(Kg, pl.mpanels * (mblk + 1) / pl.mblocks * MR) - m0;
    T* buf = static_cast<T*>(
        thread_scratch(static_cast<size_t>(pl.scratch_elems) * sizeof(T)));
    T* abuf = buf + pl.scratch_elems - pl.a_block_elems;
    const T* xg = x + (n * p.C + g * Cg) * p.H * p.W;
    const T* ag = packed != nullptr ? packed->a.get() + g * packed->per_group + m0 * kd
                                    : w + (g * Kg + m0) * kd;
    auto a_src = [&](int64_t i0, int64_t mc, int64_t k0, int64_t kc) {
      if (packed != nullptr) return Panels<T>{ag + i0 * kd + k0 * MR, MR * kd, MR};
      if (whole) {  // the layout of Im2colWeights: panels of MR rows x kd
        if (!a_block_cached.is(call, g, mblk, abuf)) {
          pack_panels(gk, ag, kd, rows, 0, kd, abuf);
          a_block_cached = {call, g, mblk, abuf};
        }
        return Panels<T>{abuf + i0 * kd + k0 * MR, MR * kd, MR};
      }
      pack_panels(gk, ag + i0 * kd, kd, mc, k0, kc, abuf, k0 + kc < kd ? kc : 0);
      return Panels<T>{abuf, MR * kc, MR};
    };
    const int64_t ld = gather_ld(np, NR, sizeof(T));
    auto gather_src = [&](int64_t k0, int64_t kc) {
      im2col_gather(p, xg, k0, kc, p0, np, ld, buf);
      return Panels<T>{buf, NR, ld};
    };
    auto in_place_src = [&](int64_t k0, int64_t kc) {
      const int64_t full = np / NR;
      if (full * NR < np) im2col_gather(p, xg, k0, kc, p0 + full * NR, np - full * NR, NR, buf);
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

// The forward plan: the GEMM kernel of the table it was made with, the bias, and the
// weights packed into its A panels, or, one-shot, the caller's weights read in place and
// packed block by block inside the GEMM (packing all of them up front would be a pass over
// them and a fresh buffer per call: up to a fifth of a deep layer's time).
template <class T>
class Im2colPlan final : public ConvPlan<T> {
 public:
  explicit Im2colPlan(const PlanRequest<T>& r)
      : p_(r.problem), gk_(gemm_kernel(r.kernels)), bias_(r.bias, p_.K, r.one_shot) {
    if (r.one_shot || r.weight == nullptr)
      raw_ = r.weight;
    else
      im2col_pack(p_, gk_, r.weight, &packed_);
  }
  void run(const ConvTensors<T>& t) const override {
    Conv2dParams p = p_;
    p.N = t.N;
    run_tasks<T>(p, gk_, raw_ != nullptr ? nullptr : &packed_, raw_, t.x, bias_.get(), t.y);
  }
  int64_t workspace_bytes(int64_t N, int threads) const override {
    Conv2dParams p = p_;
    p.N = N;
    const Im2colTiling pl = tiling<T>(p, gk_.mr, gk_.nr, threads);
    const int64_t tasks = checked_product("im2col tasks", N, p.groups, pl.tiles, pl.mblocks);
    return checked_product("im2col workspace", std::min<int64_t>(threads, tasks),
                           pl.scratch_elems, static_cast<int64_t>(sizeof(T)));
  }

 private:
  Conv2dParams p_;
  GemmKernel<T> gk_;
  Im2colWeights<T> packed_;
  const T* raw_ = nullptr;  // one-shot: the caller's weights
  PlanBias<T> bias_;
};

bool im2col_supports(const Conv2dParams& p, Pass pass, DType) {
  return pass == Pass::forward || backward_supports(Algorithm::im2col, p, pass);
}

// `auto` (README.md "How auto chooses"): the GEMM when C/groups > 1 and (R*S == 1 or
// C/groups > kAutoMaxDirectChannels), else direct (direct.cpp: the fallback). With one
// input channel per group (depthwise, one-channel filtering) the reduction is only R*S
// terms and the GEMM cannot amortise anything. A 1x1 convolution is a plain GEMM reading
// the input in place. Otherwise the GEMM pays for gathering R*S copies of the input and
// for packing, and earns it back by cache-blocking a long reduction over many input
// channels (deep layers); with few input channels per group the direct kernels stream the
// input once per block of output channels and win (stems, LeNet-like layers, depthwise,
// one-channel filtering). The threshold is the best fit to the measurements of
// benchmarks/auto_rule.py over convcore.testing.SHAPES; re-run it after changing either
// algorithm.
constexpr int64_t kAutoMaxDirectChannels = 64;

int im2col_auto_rank(const Conv2dParams& p, Pass pass, DType dtype) {
  if (pass != Pass::forward) return backward_auto_rank(Algorithm::im2col, p, pass, dtype);
  const int64_t cg = p.C / p.groups;
  const bool gemm = cg > 1 && ((p.R == 1 && p.S == 1) || cg > kAutoMaxDirectChannels);
  return gemm ? kAutoPreferred : kAutoDefault + 1;
}

template <class T>
std::unique_ptr<ConvPlan<T>> im2col_plan(const PlanRequest<T>& r) {
  if (r.pass != Pass::forward) return backward_plan(Algorithm::im2col, r);
  return std::make_unique<Im2colPlan<T>>(r);
}

}  // namespace

extern const ConvAlgorithm im2col_algorithm;
const ConvAlgorithm im2col_algorithm = {"im2col", Algorithm::im2col, &im2col_supports,
                                        &im2col_auto_rank, &im2col_plan<float>,
                                        &im2col_plan<double>};

}  // namespace convcore::detail
