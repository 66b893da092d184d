// pool_backward.cpp — gradients of max and average pooling (PyTorch's CPU semantics):
// each output's gradient goes to its window's maximum (max) or is spread over the window's
// taps inside the input (avg). One task per plane accumulates into that plane only, in
// output order: the same bits for any thread count.
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "checked.hpp"
#include "convcore/backward.hpp"
#include "ops/pool_window.hpp"
#include "threadpool.hpp"

namespace convcore {
namespace {

// First tap of a window inside the input, along one axis (PyTorch steps by the dilation).
int64_t first_inside(int64_t start, int64_t dilation) {
  while (start < 0) start += dilation;
  return start;
}

// The index (into base) of the window's winning tap, taps at base + off[t] in row-major
// window order. As PyTorch: strictly greater replaces (ties keep the first), a NaN always
// does (so the last NaN wins). Without a NaN that is the first tap equal to the window's
// maximum: the maximum (maxss) and the first match (integer arithmetic) are short
// dependency chains, where a running compare-and-select was one long chain plus a
// mispredicted branch per window or so (4x the forward's time). NT > 0: NT taps, unrolled.
template <int NT, class T>
int64_t window_argmax(const T* base, const int64_t* off, int64_t taps) {
  const int64_t n = NT > 0 ? NT : taps;
  T mx = base[off[0]];
  bool nan = false;
  for (int64_t t = 0; t < n; ++t) {
    const T v = base[off[t]];
    mx = v > mx ? v : mx;
    nan |= v != v;
  }
  int64_t best = off[0];
  if (!nan) {
    // best += hit * (off - best): arithmetic, as the compiler turns a select on a float
    // equality into branches (mispredicted: which tap wins is data).
    for (int64_t t = n - 1; t >= 0; --t) {
      const int64_t hit = base[off[t]] == mx;
      best += hit * (off[t] - best);
    }
  } else {
    for (int64_t t = 0; t < n; ++t) best = base[off[t]] != base[off[t]] ? off[t] : best;
  }
  return best;
}

// Stride 1, no padding or dilation (the classify CNN's 2x2 pooling of stride 1), a plane
// without NaN: the windows as one flat range, window i = oh*W + ow at cell i (positions
// with ow >= Wo are not windows: their gradient is taken as 0), taps at i + off[t], so
// that each step is one loop over the plane that the compiler vectorises (rows of 7
// windows were too short to). The windows' maximum over the taps; per tap, in row-major
// window order, the window's gradient where that tap is the first equal to the maximum,
// else 0 (sel); then each tap's selections added to the cells, taps from the last: every
// cell receives its windows' gradients in output order, as the scalar path adds them
// (the added zeros change no sum: one that starts at +0 never becomes -0).
// work: (taps + 2) * ((Ho - 1) * W + Wo) elements.
template <class T>
void max_grad_flat(const Pool2dParams& p, const int64_t* off, const T* xp, const T* gp, T* out,
                   T* work) {
  const int64_t W = p.W, Ho = p.out_h(), Wo = p.out_w(), taps = p.R * p.S;
  const int64_t L = (Ho - 1) * W + Wo;
  T* gf = work;
  T* mx = gf + L;
  T* sel = mx + L;
  for (int64_t oh = 0; oh < Ho; ++oh) {
    std::copy(gp + oh * Wo, gp + (oh + 1) * Wo, gf + oh * W);
    if (oh + 1 < Ho) std::fill(gf + oh * W + Wo, gf + (oh + 1) * W, T(0));
  }
  std::copy(xp, xp + L, mx);
  for (int64_t t = 1; t < taps; ++t) {
    const T* v = xp + off[t];
    for (int64_t i = 0; i < L; ++i) mx[i] = v[i] > mx[i] ? v[i] : mx[i];
  }
  // left: the gradient still to place (0 once a tap took it); two selects on one
  // comparison, no branch (a "first match" flag and && compiled to branches).
  for (int64_t t = 0; t < taps; ++t) {
    const T* v = xp + off[t];
    T* st = sel + t * L;
    for (int64_t i = 0; i < L; ++i) {
      const bool hit = v[i] == mx[i];
      st[i] = hit ? gf[i] : T(0);
      gf[i] = hit ? T(0) : gf[i];
    }
  }
  std::fill(out, out + p.H * W, T(0));
  for (int64_t t = taps - 1; t >= 0; --t) {
    const T* st = sel + t * L;
    T* o = out + off[t];
    for (int64_t i = 0; i < L; ++i) o[i] += st[i];
  }
}

template <class T>
bool has_nan(const T* v, int64_t n) {
  bool nan = false;
  for (int64_t i = 0; i < n; ++i) nan |= v[i] != v[i];
  return nan;
}

template <class T>
void max_grad(const Pool2dParams& p, const T* g, const T* x, T* gi) {
  p.validate();
  if (p.N == 0 || p.C == 0) return;
  if (g == nullptr || x == nullptr || gi == nullptr)
    throw value_error("max_pool2d_backward: arrays must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w(), H = p.H, W = p.W;
  const int64_t taps = p.R * p.S;
  std::vector<int64_t> off(static_cast<size_t>(taps));  // a whole window's taps
  for (int64_t r = 0; r < p.R; ++r)
    for (int64_t s = 0; s < p.S; ++s) off[r * p.S + s] = r * p.dilation_h * W + s * p.dilation_w;
  const int64_t span_h = (p.R - 1) * p.dilation_h + 1, span_w = (p.S - 1) * p.dilation_w + 1;
  const bool disjoint = p.stride_h >= span_h && p.stride_w >= span_w;
  // Two passes per plane: every window's winner first, then the gradients added in
  // output order. Adding in the same loop made each load of out[best] wait on a store
  // whose address was not yet known (the argmax of the window before); overlapping
  // windows (stride 1) often share their winner, so the load was replayed once the
  // store's address came out equal: about 50 cycles a window.
  const bool rows = p.stride_h == 1 && p.stride_w == 1 && p.pad_h == 0 && p.pad_w == 0 &&
                    p.dilation_h == 1 && p.dilation_w == 1;
  detail::parallel_for(p.N * p.C, p.N * p.C * Ho * Wo * taps, [&](int64_t plane) {
    const T* xp = x + plane * H * W;
    const T* gp = g + plane * Ho * Wo;
    T* out = gi + plane * H * W;
    if (rows && !has_nan(xp, H * W)) {
      std::vector<T> work(static_cast<size_t>((taps + 2) * ((Ho - 1) * W + Wo)));
      max_grad_flat(p, off.data(), xp, gp, out, work.data());
      return;
    }
    std::vector<int64_t> winner(static_cast<size_t>(Ho * Wo));
    std::vector<int64_t> part;  // the taps of a window cut by the border
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const int64_t h0 = oh * p.stride_h - p.pad_h;
      const int64_t h1 = std::min(h0 + span_h, H);
      const int64_t hs = first_inside(h0, p.dilation_h);
      const bool rows_inside = h0 >= 0 && h0 + span_h <= H;
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t w0 = ow * p.stride_w - p.pad_w;
        int64_t best;
        if (rows_inside && w0 >= 0 && w0 + span_w <= W) {
          const T* base = xp + h0 * W + w0;
          best = h0 * W + w0 + (taps == 4   ? window_argmax<4>(base, off.data(), taps)
                                : taps == 9 ? window_argmax<9>(base, off.data(), taps)
                                            : window_argmax<0>(base, off.data(), taps));
        } else {
          const int64_t w1 = std::min(w0 + span_w, W);
          const int64_t ws = first_inside(w0, p.dilation_w);
          part.clear();
          for (int64_t ih = hs; ih < h1; ih += p.dilation_h)
            for (int64_t iw = ws; iw < w1; iw += p.dilation_w) part.push_back(ih * W + iw);
          best = window_argmax<0>(xp, part.data(), static_cast<int64_t>(part.size()));
        }
        winner[oh * Wo + ow] = best;
      }
    }
    std::fill(out, out + H * W, T(0));
    // Disjoint windows (stride >= span: LeNet's 2x2 pools) reach each cell at most once:
    // a store, not a load-add-store (+ 0 keeps the bits of 0 + g, -0 included).
    if (disjoint)
      for (int64_t i = 0; i < Ho * Wo; ++i) out[winner[i]] = gp[i] + T(0);
    else
      for (int64_t i = 0; i < Ho * Wo; ++i) out[winner[i]] += gp[i];
  });
}

template <class T>
void avg_grad(const Pool2dParams& p, const T* g, T* gi) {
  p.validate();
  if (p.dilation_h != 1 || p.dilation_w != 1)
    throw value_error("avg_pool2d_backward: dilation must be 1");
  if (p.N == 0 || p.C == 0) return;
  if (g == nullptr || gi == nullptr)
    throw value_error("avg_pool2d_backward: arrays must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w(), H = p.H, W = p.W;
  std::vector<T> col_count(static_cast<size_t>(Wo));
  for (int64_t j = 0; j < Wo; ++j)
    col_count[j] = static_cast<T>(
        detail::window_count(j, W, p.S, p.pad_w, p.stride_w, p.count_include_pad));
  detail::parallel_for(p.N * p.C, p.N * p.C * Ho * Wo * p.R * p.S, [&](int64_t plane) {
    const T* gp = g + plane * Ho * Wo;
    T* out = gi + plane * H * W;
    std::fill(out, out + H * W, T(0));
    for (int64_t oh = 0; oh < Ho; ++oh) {
      const T rows = static_cast<T>(
          detail::window_count(oh, H, p.R, p.pad_h, p.stride_h, p.count_include_pad));
      const int64_t h0 = std::max<int64_t>(oh * p.stride_h - p.pad_h, 0);
      const int64_t h1 = std::min(oh * p.stride_h - p.pad_h + p.R, H);
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const T delta = gp[oh * Wo + ow] / (rows * col_count[ow]);
        const int64_t w0 = std::max<int64_t>(ow * p.stride_w - p.pad_w, 0);
        const int64_t w1 = std::min(ow * p.stride_w - p.pad_w + p.S, W);
        for (int64_t ih = h0; ih < h1; ++ih)
          for (int64_t iw = w0; iw < w1; ++iw) out[ih * W + iw] += delta;
      }
    }
  });
}

}  // namespace

void max_pool2d_backward(const Pool2dParams& p, const float* g, const float* x, float* gi) {
  max_grad(p, g, x, gi);
}
void max_pool2d_backward(const Pool2dParams& p, const double* g, const double* x, double* gi) {
  max_grad(p, g, x, gi);
}
void avg_pool2d_backward(const Pool2dParams& p, const float* g, float* gi) { avg_grad(p, g, gi); }
void avg_pool2d_backward(const Pool2dParams& p, const double* g, double* gi) {
  avg_grad(p, g, gi);
}

}  // namespace convcore
