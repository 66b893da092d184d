// reference.hpp — the C++ tests' independent reference: conv2d by its definition in
// float64 (every padding mode, groups, stride, dilation, bias, activation), plus the
// bound |y - r| <= gamma(n) * sum|x*w| each output is checked against.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "convcore/convcore.hpp"

namespace ref {

inline double act(double x, const convcore::Activation& a) {
  using convcore::Activation;
  switch (a.kind) {
    case Activation::none: return x;
    case Activation::relu: return x < 0 ? 0 : x;
    case Activation::sigmoid: return 1 / (1 + std::exp(-a.alpha * (x - a.beta)));
    case Activation::tanh: return std::tanh(x);
    case Activation::abs: return std::fabs(x);
    case Activation::square: return x * x;
    case Activation::leaky_relu: return x < 0 ? a.alpha * x : x;
  }
  return x;
}

// Padded coordinate i of an axis of length n -> source index, or -1 for a zero.
inline int64_t source(int64_t i, int64_t n, convcore::PaddingMode m) {
  using convcore::PaddingMode;
  if (i >= 0 && i < n) return i;
  switch (m) {
    case PaddingMode::zeros: return -1;
    case PaddingMode::reflect: return i < 0 ? -i : 2 * (n - 1) - i;
    case PaddingMode::replicate: return i < 0 ? 0 : n - 1;
    case PaddingMode::circular: return ((i % n) + n) % n;
  }
  return -1;
}

// Output of the definition in float64 before the activation (`lin`), after it (`out`),
// and sum |x*w| + |b| per output (`mag`), all (N, K, Ho, Wo).
struct Result {
  std::vector<double> lin, out, mag;
};

template <class T>
Result conv2d(const convcore::Conv2dParams& p, const std::vector<T>& x, const std::vector<T>& w,
              const T* bias) {
  const int64_t Ho = p.out_h(), Wo = p.out_w(), Cg = p.C / p.groups, Kg = p.K / p.groups;
  Result r;
  const size_t n = static_cast<size_t>(p.N * p.K * Ho * Wo);
  r.lin.resize(n);
  r.out.resize(n);
  r.mag.resize(n);
  size_t o = 0;
  for (int64_t b = 0; b < p.N; ++b)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j, ++o) {
          double s = bias ? double(bias[k]) : 0.0, m = bias ? std::fabs(double(bias[k])) : 0.0;
          for (int64_t c = 0; c < Cg; ++c)
            for (int64_t u = 0; u < p.R; ++u)
              for (int64_t v = 0; v < p.S; ++v) {
                const int64_t yy = source(i * p.stride_h + u * p.dilation_h - p.pad_top, p.H, p.padding_mode);
                const int64_t xx = source(j * p.stride_w + v * p.dilation_w - p.pad_left, p.W, p.padding_mode);
                if (yy < 0 || xx < 0) continue;
                const int64_t ch = (k / Kg) * Cg + c;
                const double t = double(x[((b * p.C + ch) * p.H + yy) * p.W + xx]) *
                                 double(w[((k * Cg + c) * p.R + u) * p.S + v]);
                s += t;
                m += std::fabs(t);
              }
          r.lin[o] = s;
          r.out[o] = act(s, p.activation);
          r.mag[o] = m;
        }
  return r;
}

// Largest |f'| of the activation near the linear value s: how an error in the sum grows
// through the epilogue.
inline double lipschitz(const convcore::Activation& a, double s, double err) {
  using convcore::Activation;
  switch (a.kind) {
    case Activation::sigmoid: return std::fabs(a.alpha) / 4;
    case Activation::square: return 2 * std::fabs(s) + err;
    case Activation::leaky_relu: return std::fmax(1.0, std::fabs(a.alpha));
    default: return 1.0;
  }
}

// gamma(n) = n*u with n = the terms of one sum (+1 for the bias) and u the unit
// roundoff, plus the activation's own few-ulp error. Returns true when y is within.
template <class T>
bool close(double y, const Result& r, size_t o, int64_t terms, const convcore::Activation& a) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  const double lin_err = 2.0 * double(terms + 1) * u * r.mag[o];
  const double act_err = 16 * u * std::fabs(r.out[o]) + std::numeric_limits<T>::min();
  const double tol = lipschitz(a, r.lin[o], lin_err) * lin_err + act_err;
  return std::fabs(y - r.out[o]) <= tol;
}

template <class T>
std::vector<T> random_vector(int64_t n, std::mt19937& rng) {
  std::uniform_real_distribution<double> d(-1.0, 1.0);
  std::vector<T> v(static_cast<size_t>(n));
  for (auto& e : v) e = static_cast<T>(d(rng));
  return v;
}

}  // namespace ref
