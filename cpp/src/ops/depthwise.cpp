// depthwise.cpp — depthwise convolution (C == K == groups) with the channels in the vector
// lanes: a plan of the direct algorithm (direct.cpp asks here first).
//
// The per-plane kernel (direct_plane) vectorises along an output row, so a 7-wide row
// fills 7 of 16 lanes, and a stride-2 row first goes through a de-interleaved band. Here a
// block of L channels (the table's depthwise_nchwc mr, which is pack_nr's width) of one
// image is packed by pack_nr — a transpose — into pixels of L lanes with the padding made
// explicit, and the kernel runs every tap as whole vectors whatever the width or the
// stride, storing its tiles back into the NCHW rows. Tasks are (image, channel block,
// band of output rows); each output is computed whole by one task in a fixed order (the
// taps, then the bias: the same bits as direct_plane), so results do not depend on the
// thread count or the bands.
#include "ops/depthwise.hpp"

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "checked.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

template <class T>
class DepthwiseNchwcPlan final : public ConvPlan<T> {
 public:
  explicit DepthwiseNchwcPlan(const PlanRequest<T>& r)
      : p_(r.problem), kernel_(r.kernels.depthwise_nchwc), pack_(r.kernels.pack_nr) {
    if (pack_.nr != kernel_.mr)
      throw std::logic_error("depthwise_nchwc: the kernel's block differs from pack_nr's width");
    const int64_t L = kernel_.mr, taps = p_.R * p_.S, blocks = ceil_div(p_.C, L);
    // Padded column u holds image column u - pad_left: the band's columns [cl_, cr_) come
    // from the image. A row is packed 8 columns at a time (pack_nr's transposes; a column
    // tail would go element by element), reading up to 7 elements past it in the plane
    // (the next image rows), which land past cr_ and are zeroed again: the band rows are
    // wide enough for them.
    const int64_t wp = (p_.out_w() - 1) * p_.stride_w + (p_.S - 1) * p_.dilation_w + 1;
    cl_ = std::min(p_.pad_left, wp);
    cr_ = std::clamp(p_.pad_left + p_.W, cl_, wp);
    wrow_ = std::max(wp, cl_ + ceil_div(cr_ - cl_, 8) * 8);
    for (int64_t r = 0; r < p_.R; ++r)
      for (int64_t s = 0; s < p_.S; ++s)
        tap_.push_back((r * p_.dilation_h * wrow_ + s * p_.dilation_w) * L);
    if (r.weight == nullptr) return;
    // [block][tap][L], lanes past the last channel zero: each block's (channel, tap)
    // rows transposed by pack_nr, as the input.
    w_ = Buffer<T>(checked_product("depthwise weights", blocks, taps, L));
    for (int64_t b = 0; b < blocks; ++b)
      pack_.fn(r.weight + b * L * taps, taps, std::min(L, p_.C - b * L), taps, 0,
               w_.get() + b * taps * L);
    if (r.bias != nullptr) {
      bias_ = Buffer<T>(blocks * L);
      std::fill(bias_.get(), bias_.get() + blocks * L, T(0));
      std::copy(r.bias, r.bias + p_.C, bias_.get());
    }
  }

  void run(const ConvTensors<T>& t) const override {
    const Conv2dParams& p = p_;
    const int64_t N = t.N, L = kernel_.mr, blocks = ceil_div(p.C, L);
    const int64_t Ho = p.out_h(), Wo = p.out_w(), HW = p.H * p.W;
    // Bands of output rows whose packed input stays within about 128 KiB (L2-resident
    // while the kernel reads each input pixel up to R*S times), and enough tasks for
    // every thread.
    const auto band_bytes = [&](int64_t rows) {
      return ((rows - 1) * p.stride_h + (p.R - 1) * p.dilation_h + 1) * wrow_ * L *
             int64_t(sizeof(T));
    };
    int64_t rows = Ho;
    while (rows > 1 && band_bytes(rows) > 131072) rows = ceil_div(rows, 2);
    const int64_t want = 4 * pool_threads();
    if (N * blocks * ceil_div(Ho, rows) < want)
      rows = std::max<int64_t>(1, ceil_div(Ho, ceil_div(want, N * blocks)));
    const int64_t bands = ceil_div(Ho, rows);
    const int64_t rin_max = (rows - 1) * p.stride_h + (p.R - 1) * p.dilation_h + 1;
    const size_t scratch =
        static_cast<size_t>(checked_product("depthwise band", rin_max, wrow_, L)) * sizeof(T);
    const int64_t cols = cr_ - cl_, cols8 = ceil_div(cols, 8) * 8;
    const int64_t work = N * p.C * Ho * Wo * p.R * p.S;
    parallel_for(N * blocks * bands, work, [&](int64_t task) {
      const int64_t band = task % bands, blk = (task / bands) % blocks, n = task / (bands * blocks);
      const int64_t oh0 = band * rows, nrows = std::min(rows, Ho - oh0);
      const int64_t c0 = blk * L, kn = std::min(L, p.C - c0);
      const int64_t ih0 = oh0 * p.stride_h - p.pad_top;
      const int64_t rin = (nrows - 1) * p.stride_h + (p.R - 1) * p.dilation_h + 1;
      T* xb = static_cast<T*>(thread_scratch(scratch));
      const T* src = t.x + (n * p.C + c0) * HW + cl_ - p.pad_left;
      for (int64_t row = 0; row < rin; ++row) {
        T* d = xb + row * wrow_ * L;
        const int64_t ih = ih0 + row;
        if (ih < 0 || ih >= p.H || cols == 0) {
          std::fill(d, d + wrow_ * L, T(0));
          continue;
        }
        // Where the over-read would leave the plane (its last rows): exact columns.
        pack_.fn(src + ih * p.W, HW, kn, ih * p.W + cols8 <= HW ? cols8 : cols, 0, d + cl_ * L);
        std::fill(d, d + cl_ * L, T(0));
        std::fill(d + cr_ * L, d + wrow_ * L, T(0));
      }
      kernels::DepthwiseArgs a{p.R * p.S, tap_.data(), p.stride_h * wrow_ * L, p.stride_w * L,
                               nrows, Wo, kn, Ho * Wo, Wo};
      kernel_.fn(a, xb, w_.get() + blk * p.R * p.S * L,
                 bias_.get() != nullptr ? bias_.get() + c0 : nullptr,
                 t.y + ((n * p.K + c0) * Ho + oh0) * Wo, p.activation);
    });
  }
  // The band buffers (thread_scratch) are the kernel's working set, not counted (as direct's).
  int64_t workspace_bytes(int64_t, int) const override { return 0; }

 private:
  Conv2dParams p_;
  kernels::Kernel<kernels::DepthwiseFn<T>> kernel_;
  kernels::Kernel<kernels::PackFn<T>> pack_;
  int64_t cl_ = 0, cr_ = 0;   // a band row's columns from the image
  int64_t wrow_ = 0;          // pixels a band row holds
  std::vector<int64_t> tap_;  // tap offsets in a band
  Buffer<T> w_, bias_;
};

}  // namespace

bool depthwise_nchwc_rule(const Conv2dParams& p) {
  if (!(p.C == p.groups && p.K == p.groups)) return false;
  // Wider outputs keep direct_plane: at stride 2 its band measured as fast or faster
  // (MobileNet's 112x112 stride-2 layers; README.md "How auto chooses"). So do taller
  // ones: a channel block's unused lanes cost per output row, and on tall narrow planes
  // (the side strips of a Dask block: 1 channel, 1024x24 outputs) direct_plane measured
  // 20-30x faster, at 32 channels of 256x20 2x (Zen 4, AVX-512 table).
  return p.out_w() <= 28 && p.out_h() <= 28;
}

template <class T>
std::unique_ptr<ConvPlan<T>> depthwise_nchwc_plan(const PlanRequest<T>& r) {
  if (r.pass != Pass::forward || !depthwise_nchwc_rule(r.problem)) return nullptr;
  return std::make_unique<DepthwiseNchwcPlan<T>>(r);
}

template std::unique_ptr<ConvPlan<float>> depthwise_nchwc_plan(const PlanRequest<float>&);
template std::unique_ptr<ConvPlan<double>> depthwise_nchwc_plan(const PlanRequest<double>&);

}  // namespace convcore::detail
