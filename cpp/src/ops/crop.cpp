// crop.cpp — padding wider than the kernel reaches: no work on all-zero regions.
//
// With padding larger than the (dilated) kernel's extent, the outer output rows and
// columns read only zeros: each is act(bias) exactly. make_plan (algorithm.cpp) asks
// zero_border for them; when there are any and the weights are finite, it plans the inner
// problem (the same input, the padding cut back) with the algorithm `auto` or the caller
// picks for it, and wraps that plan here: the inner output goes to a per-thread buffer
// kept between calls (fresh pages cost more than the copy), then into place, and the
// border is filled. An all-zero window gives acc = +0 in every kernel, then act(0 + bias)
// by the epilogue; the fill value is the table's activate on 0 + bias, so the bits agree.
#include "ops/crop.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "checked.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore::detail {
namespace {

// One dimension: outputs [0, out) of windows starting at o*stride in the padded input,
// `ext` + 1 wide, the image at padded [pad_lo, pad_lo + size). Returns the all-zero
// outputs at the start and at the end, and the inner padding.
struct Side {
  int64_t lo = 0, hi = 0, pad_lo = 0, pad_hi = 0;
};
Side crop_side(int64_t size, int64_t pad_lo, int64_t pad_hi, int64_t ext, int64_t stride,
               int64_t out) {
  Side s{0, 0, pad_lo, pad_hi};
  // o*stride + ext < pad_lo; at most pad_lo / stride, so that the inner padding stays >= 0.
  if (pad_lo > ext) s.lo = std::min((pad_lo - ext - 1) / stride + 1, pad_lo / stride);
  // o*stride >= pad_lo + size
  s.hi = std::max<int64_t>(0, out - ceil_div(pad_lo + size, stride));
  if (s.lo + s.hi >= out) return Side{0, 0, pad_lo, pad_hi};
  s.pad_lo = pad_lo - s.lo * stride;
  const int64_t inner = out - s.lo - s.hi;
  if (s.hi > 0) s.pad_hi = std::max<int64_t>(0, (inner - 1) * stride + ext + 1 - size - s.pad_lo);
  return s;
}

template <class T>
class CroppedPlan final : public ConvPlan<T> {
 public:
  CroppedPlan(const Conv2dParams& p, const ZeroBorder& b, const kernels::KernelTable<T>& table,
              const T* bias, std::unique_ptr<ConvPlan<T>> inner)
      : p_(p), b_(b), inner_(std::move(inner)), fill_(p.K) {
    for (int64_t k = 0; k < p.K; ++k) fill_.get()[k] = T(0) + (bias != nullptr ? bias[k] : T(0));
    table.activate.fn(fill_.get(), fill_.get(), p.K, p.activation);
  }

  void run(const ConvTensors<T>& t) const override {
    const int64_t Ho = p_.out_h(), Wo = p_.out_w();
    const int64_t hi = Ho - b_.top - b_.bottom, wi = Wo - b_.left - b_.right;
    const int64_t n = checked_product("conv2d cropped output", t.N, p_.K, hi, wi);
    // The calling thread's buffer, kept (it is this thread's alone: the inner plan's tasks
    // write through the pointer, they do not ask for scratch of this kind).
    thread_local Buffer<T> kept;
    thread_local int64_t kept_n = 0;
    Buffer<T> fresh;
    T* inner_y;
    if (n * int64_t(sizeof(T)) > int64_t(kPlanScratchMax)) {
      fresh = Buffer<T>(n);
      inner_y = fresh.get();
    } else {
      if (kept_n < n) kept = Buffer<T>(n), kept_n = n;
      inner_y = kept.get();
    }
    ConvTensors<T> it = t;
    it.y = inner_y;
    inner_->run(it);
    const int64_t planes = t.N * p_.K;
    parallel_for(planes, planes * Ho * Wo, [&](int64_t plane) {
      const T v = fill_.get()[plane % p_.K];
      T* y = t.y + plane * Ho * Wo;
      const T* s = inner_y + plane * hi * wi;
      std::fill(y, y + b_.top * Wo, v);
      for (int64_t i = 0; i < hi; ++i) {
        T* row = y + (b_.top + i) * Wo;
        std::fill(row, row + b_.left, v);
        std::memcpy(row + b_.left, s + i * wi, static_cast<size_t>(wi) * sizeof(T));
        std::fill(row + b_.left + wi, row + Wo, v);
      }
      std::fill(y + (b_.top + hi) * Wo, y + Ho * Wo, v);
    });
  }
  int64_t workspace_bytes(int64_t N, int threads) const override {
    const int64_t hi = p_.out_h() - b_.top - b_.bottom, wi = p_.out_w() - b_.left - b_.right;
    return inner_->workspace_bytes(N, threads) +
           checked_product("conv2d cropped output", N, p_.K, hi, wi, int64_t(sizeof(T)));
  }

 private:
  Conv2dParams p_;
  ZeroBorder b_;
  std::unique_ptr<ConvPlan<T>> inner_;
  Buffer<T> fill_;  // act(0 + bias[k])
};

}  // namespace

ZeroBorder zero_border(const Conv2dParams& p, Conv2dParams* inner) {
  *inner = p;
  const Side rows = crop_side(p.H, p.pad_top, p.pad_bottom, (p.R - 1) * p.dilation_h, p.stride_h,
                              p.out_h());
  const Side cols = crop_side(p.W, p.pad_left, p.pad_right, (p.S - 1) * p.dilation_w, p.stride_w,
                              p.out_w());
  const ZeroBorder b{rows.lo, rows.hi, cols.lo, cols.hi};
  if (b.empty()) return b;
  inner->pad_top = rows.pad_lo;
  inner->pad_bottom = rows.pad_hi;
  inner->pad_left = cols.pad_lo;
  inner->pad_right = cols.pad_hi;
  if (inner->out_h() != p.out_h() - b.top - b.bottom ||
      inner->out_w() != p.out_w() - b.left - b.right)
    throw std::logic_error("zero_border: the inner problem's output does not fit");
  return b;
}

template <class T>
std::unique_ptr<ConvPlan<T>> cropped_plan(const Conv2dParams& p, const ZeroBorder& border,
                                          const kernels::KernelTable<T>& kernels, const T* bias,
                                          std::unique_ptr<ConvPlan<T>> inner) {
  return std::make_unique<CroppedPlan<T>>(p, border, kernels, bias, std::move(inner));
}

template std::unique_ptr<ConvPlan<float>> cropped_plan(const Conv2dParams&, const ZeroBorder&,
                                                       const kernels::KernelTable<float>&,
                                                       const float*,
                                                       std::unique_ptr<ConvPlan<float>>);
template std::unique_ptr<ConvPlan<double>> cropped_plan(const Conv2dParams&, const ZeroBorder&,
                                                        const kernels::KernelTable<double>&,
                                                        const double*,
                                                        std::unique_ptr<ConvPlan<double>>);

}  // namespace convcore::detail
