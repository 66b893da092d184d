// pool.cpp — 2D max / average pooling driver: validation and output sizes as PyTorch's
// pooling_output_shape, the average's divisors, and tasks of (plane, block of output
// rows), each row computed by a pool_row kernel with a per-thread scratch row.
#include "convcore/pool.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "checked.hpp"
#include "dispatch.hpp"
#include "ops/pool_window.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {

using detail::checked_add;
using detail::checked_mul;
using detail::checked_product;
using detail::window_count;

namespace {

std::string pair(int64_t a, int64_t b) {
  return "(" + std::to_string(a) + ", " + std::to_string(b) + ")";
}

int64_t floor_div(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

// PyTorch's pooling_output_shape along one axis.
int64_t pooled_size(int64_t in, int64_t k, int64_t pad, int64_t stride, int64_t dilation,
                    bool ceil_mode) {
  const int64_t span = checked_add(checked_mul(dilation, k - 1, "dilation"), 1, "dilation");
  int64_t num = checked_add(in, checked_mul(2, pad, "padding"), "padding") - span;
  if (ceil_mode) num += stride - 1;
  int64_t out = floor_div(num, stride) + 1;
  if (ceil_mode && (out - 1) * stride >= in + pad) --out;
  return out;
}

constexpr int64_t kTaskWork = 1 << 15;  // input elements read per task, about

template <class T>
void run(const Pool2dParams& p, const T* x, T* y, bool avg) {
  const char* f = avg ? "avg_pool2d: " : "max_pool2d: ";
  p.validate(avg ? "avg_pool2d" : "max_pool2d");
  if (p.N == 0 || p.C == 0) return;
  if (x == nullptr || y == nullptr) throw value_error(std::string(f) + "input and output must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  const int64_t tw = (Wo - 1) * p.stride_w + (p.S - 1) * p.dilation_w + 1;
  std::vector<T> col_count;
  if (avg) {
    col_count.resize(static_cast<size_t>(Wo));
    for (int64_t j = 0; j < Wo; ++j)
      col_count[j] = static_cast<T>(window_count(j, p.W, p.S, p.pad_w, p.stride_w, p.count_include_pad));
  }
  const int64_t rows = std::max<int64_t>(1, kTaskWork / std::max<int64_t>(1, p.R * tw));
  const int64_t blocks = detail::ceil_div(Ho, rows);
  const auto& table = detail::kernels<T>();
  const auto max_row = table.max_pool_row.fn;
  const auto avg_row = table.avg_pool_row.fn;
  detail::parallel_for(p.N * p.C * blocks, p.N * p.C * Ho * Wo * p.R * p.S, [&](int64_t t) {
    const int64_t plane = t / blocks, b = t % blocks;
    T* tmp = static_cast<T*>(detail::thread_scratch(static_cast<size_t>(tw) * sizeof(T)));
    kernels::PoolRowArgs a{p.H, p.W, p.R, p.S, 0, Wo, p.stride_h, p.stride_w,
                           p.dilation_h, p.dilation_w, p.pad_h, p.pad_w};
    const T* xp = x + plane * p.H * p.W;
    for (int64_t oh = b * rows; oh < std::min(Ho, (b + 1) * rows); ++oh) {
      a.oh = oh;
      T* yr = y + (plane * Ho + oh) * Wo;
      if (avg)
        avg_row(a, xp, yr, tmp,
                static_cast<T>(window_count(oh, p.H, p.R, p.pad_h, p.stride_h, p.count_include_pad)),
                col_count.data());
      else
        max_row(a, xp, yr, tmp);
    }
  });
}

}  // namespace

int64_t Pool2dParams::out_h() const {
  return pooled_size(H, R, pad_h, stride_h, dilation_h, ceil_mode);
}
int64_t Pool2dParams::out_w() const {
  return pooled_size(W, S, pad_w, stride_w, dilation_w, ceil_mode);
}

void Pool2dParams::validate_parameters(const char* op) const {
  const std::string f = std::string(op) + ": ";
  if (R < 1 || S < 1)
    throw value_error(std::string(f) + "kernel_size must be >= 1, got " + pair(R, S));
  if (stride_h < 1 || stride_w < 1)
    throw value_error(std::string(f) + "stride must be >= 1, got " + pair(stride_h, stride_w));
  if (dilation_h < 1 || dilation_w < 1)
    throw value_error(std::string(f) + "dilation must be >= 1, got " + pair(dilation_h, dilation_w));
  if (pad_h < 0 || pad_w < 0)
    throw value_error(std::string(f) + "padding must be >= 0, got " + pair(pad_h, pad_w));
  if (pad_h > R / 2 || pad_w > S / 2)
    throw value_error(std::string(f) + "padding should be at most half of the kernel size, got padding " +
                      pair(pad_h, pad_w) + " for kernel_size " + pair(R, S));
  if (std::string(op) == "avg_pool2d" && (dilation_h != 1 || dilation_w != 1))
    throw value_error(f + "dilation must be 1, got " + pair(dilation_h, dilation_w));
}

void Pool2dParams::validate(const char* op) const {
  validate_parameters(op);
  const std::string f = std::string(op) + ": ";
  if (N < 0 || C < 0 || H < 1 || W < 1)
    throw value_error(std::string(f) + "input (N, C, H, W) = (" + std::to_string(N) + ", " +
                      std::to_string(C) + ", " + std::to_string(H) + ", " + std::to_string(W) +
                      ") must have H, W >= 1");
  checked_product("pool2d input", N, C, H, W);
  const int64_t ho = out_h(), wo = out_w();
  if (ho < 1 || wo < 1)
    throw value_error(std::string(f) + "output size " + pair(ho, wo) + " is too small for input " +
                      pair(H, W) + ", kernel_size " + pair(R, S) + ", padding " + pair(pad_h, pad_w) +
                      ", dilation " + pair(dilation_h, dilation_w));
  checked_product("pool2d output", N, C, ho, wo);
  checked_add(checked_mul(wo - 1, stride_w, "pool2d row"),
              checked_mul(S - 1, dilation_w, "pool2d row"), "pool2d row");
}

void max_pool2d(const Pool2dParams& p, const float* x, float* y) { run(p, x, y, false); }
void max_pool2d(const Pool2dParams& p, const double* x, double* y) { run(p, x, y, false); }
void avg_pool2d(const Pool2dParams& p, const float* x, float* y) { run(p, x, y, true); }
void avg_pool2d(const Pool2dParams& p, const double* x, double* y) { run(p, x, y, true); }

}  // namespace convcore
