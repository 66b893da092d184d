// winograd_transform.hpp — the Winograd F(m x m, 3x3) matrices (m = 4 and 2) and the
// transform kernels' one body, a template over each ISA's vector operations.
//
// Points (Toom-Cook, plus infinity): F(4x4, 3x3) on 0, 1, -1, 1/2, -2 — the set of
// Barabasz et al. ("Error analysis and improving the accuracy of Winograd convolution"):
// in a NumPy simulation of the float32 arithmetic over 64 channels of random data it gave
// 0.41x the largest element error of Lavin's 0, +-1, +-2 and 0.6x its relative L2 error
// (0, +-1, +-1/2: 0.83x); BT's rows
// scaled to small integers (exact in float), the fractions in G, which is applied to the
// weights once, in double. F(2x2, 3x3) on 0, 1, -1. Y = AT [(G g G^T) . (BT d BT^T)] AT^T.
//
// The kernel bodies below are instantiated by each ISA's file with its own vector type
// (internal linkage, as act_scalar.hpp): every value is the same sequence of a multiply
// (first nonzero coefficient) then FMAs in index order, so the scalar twin (std::fma) and
// the SIMD kernels give the same bits. Zero coefficients are skipped at compile time. The
// weight transform too (G's fractions rounded to the dtype: measured, its rounding adds
// little to the error of the products, README.md "Accuracy").
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>

#include "kernels/table.hpp"

namespace convcore::kernels {

template <int M>
struct WinogradMatrices;

template <>
struct WinogradMatrices<4> {
  static constexpr int m = 4, alpha = 6;
  static constexpr double BT[6][6] = {{2, -3, -4, 3, 2, 0},  {0, -2, 1, 5, 2, 0},
                                      {0, 2, -5, 1, 2, 0},   {0, -2, -1, 2, 1, 0},
                                      {0, 1, -2, -1, 2, 0},  {0, 2, -3, -4, 3, 2}};
  static constexpr double AT[4][6] = {{1, 1, 1, 1, 1, 0},
                                      {0, 1, -1, 0.5, -2, 0},
                                      {0, 1, 1, 0.25, 4, 0},
                                      {0, 1, -1, 0.125, -8, 1}};
  static constexpr double G[6][3] = {{1.0 / 2, 0, 0},
                                     {1.0 / 6, 1.0 / 6, 1.0 / 6},
                                     {-1.0 / 6, 1.0 / 6, -1.0 / 6},
                                     {-16.0 / 15, -8.0 / 15, -4.0 / 15},
                                     {1.0 / 30, -1.0 / 15, 2.0 / 15},
                                     {0, 0, 1.0 / 2}};
};

template <>
struct WinogradMatrices<2> {
  static constexpr int m = 2, alpha = 4;
  static constexpr double BT[4][4] = {{-1, 0, 1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, -1, 0, 1}};
  static constexpr double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, 1}};
  static constexpr double G[4][3] = {{-1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
};

namespace {

// Everything below inlines into one loop body per kernel (a call per lambda cost a fifth
// of the transforms' time).
#define CONVCORE_WG_INLINE [[gnu::always_inline]] inline
#define CONVCORE_WG_LAMBDA __attribute__((always_inline))

template <class F, int... I>
CONVCORE_WG_INLINE void wg_static_for(F& f, std::integer_sequence<int, I...>) {
  (f(std::integral_constant<int, I>{}), ...);
}
template <int N, class F>
CONVCORE_WG_INLINE void wg_for(F&& f) {
  wg_static_for(f, std::make_integer_sequence<int, N>{});
}

// Row `Row` of a matrix (Mat::at) times the values x(0..N-1): a multiply for the first
// nonzero coefficient, then one FMA per further nonzero one, in index order.
template <class Mat, int Row, int K>
constexpr int wg_first_nonzero() {
  if constexpr (Mat::at(Row, K) != 0)
    return K;
  else
    return wg_first_nonzero<Mat, Row, K + 1>();
}
template <class O, class Mat, int Row, int K, class X>
CONVCORE_WG_INLINE typename O::V wg_lin_rest(typename O::V acc, const X& x) {
  if constexpr (K == Mat::cols) {
    return acc;
  } else if constexpr (Mat::at(Row, K) == 0) {
    return wg_lin_rest<O, Mat, Row, K + 1>(acc, x);
  } else {
    using T = typename O::T;
    return wg_lin_rest<O, Mat, Row, K + 1>(
        O::fmadd(O::set1(static_cast<T>(Mat::at(Row, K))), x(K), acc), x);
  }
}
template <class O, class Mat, int Row, class X>
CONVCORE_WG_INLINE typename O::V wg_lin(const X& x) {
  using T = typename O::T;
  constexpr int k0 = wg_first_nonzero<Mat, Row, 0>();
  return wg_lin_rest<O, Mat, Row, k0 + 1>(
      O::mul(O::set1(static_cast<T>(Mat::at(Row, k0))), x(k0)), x);
}

template <int M>
struct WgBT {
  static constexpr int cols = WinogradMatrices<M>::alpha;
  static constexpr double at(int i, int k) { return WinogradMatrices<M>::BT[i][k]; }
};
template <int M>
struct WgAT {
  static constexpr int cols = WinogradMatrices<M>::alpha;
  static constexpr double at(int i, int k) { return WinogradMatrices<M>::AT[i][k]; }
};

template <int M>
struct WgG {
  static constexpr int cols = 3;
  static constexpr double at(int i, int k) { return WinogradMatrices<M>::G[i][k]; }
};

// u = G g G^T for O::L filters at a time (WinogradWeightsFn's contract).
template <class O, int M>
void winograd_weights_body(const WinogradWeightsArgs& a, const typename O::T* g,
                           typename O::T* u) {
  using V = typename O::V;
  constexpr int A = M + 2;
  const int64_t gs = a.g_stride, us = a.u_stride;
  for (int64_t j = 0; j < a.n; j += O::L) {
    const int64_t lanes = std::min<int64_t>(O::L, a.n - j);
    wg_for<A>([&](auto xi_c) CONVCORE_WG_LAMBDA {
      constexpr int xi = decltype(xi_c)::value;
      V t[3];
      wg_for<3>([&](auto s_c) CONVCORE_WG_LAMBDA {
        constexpr int s = decltype(s_c)::value;
        t[s] = wg_lin<O, WgG<M>, xi>(
            [&](int r) CONVCORE_WG_LAMBDA { return O::load(g + (r * 3 + s) * gs + j, lanes); });
      });
      wg_for<A>([&](auto nu_c) CONVCORE_WG_LAMBDA {
        constexpr int nu = decltype(nu_c)::value;
        O::store(u + (xi * A + nu) * us + j,
                 wg_lin<O, WgG<M>, nu>([&](int s) CONVCORE_WG_LAMBDA { return t[s]; }), lanes);
      });
    });
  }
}

// The band's phases from rows of the image (WinogradPackFn's contract): per channel, the
// row's m*n elements as m-element groups, L groups a step, split into their m phases by
// one (m = 2) or two (m = 4) rounds of even/odd unzips of vector pairs.
template <class O, int M>
void winograd_pack_body(const WinogradPackArgs& a, const typename O::T* x, typename O::T* band) {
  using V = typename O::V;
  constexpr int L = O::L;
  const int64_t total = a.n * M;
  for (int64_t c = 0; c < a.channels; ++c) {
    const typename O::T* src = x + c * a.x_stride;
    typename O::T* dst = band + c * a.band_stride;
    for (int64_t j = 0; j < a.n; j += L) {
      const int64_t lanes = std::min<int64_t>(L, a.n - j);
      V in[M];
      wg_for<M>([&](auto i_c) CONVCORE_WG_LAMBDA {
        constexpr int i = decltype(i_c)::value;
        const int64_t rest = total - j * M - i * L;
        in[i] = rest >= L ? O::load(src + j * M + i * L, L)
                          : rest > 0 ? O::load(src + j * M + i * L, rest) : O::zero();
      });
      V even, odd;
      O::unzip(in[0], in[1], even, odd);
      if constexpr (M == 2) {
        O::store(dst + j, even, lanes);
        O::store(dst + a.phase_stride + j, odd, lanes);
      } else {
        // even: elements 0, 2 (mod 4) of the first 2L groups' halves; odd: 1, 3.
        V even2, odd2;
        O::unzip(in[2], in[3], even2, odd2);
        V p0, p1, p2, p3;
        O::unzip(even, even2, p0, p2);
        O::unzip(odd, odd2, p1, p3);
        O::store(dst + j, p0, lanes);
        O::store(dst + a.phase_stride + j, p1, lanes);
        O::store(dst + 2 * a.phase_stride + j, p2, lanes);
        O::store(dst + 3 * a.phase_stride + j, p3, lanes);
      }
    }
  }
}

// The output rows from the phases (WinogradUnpackFn's contract), pack's inverse: per row,
// the m phase vectors of L tiles interleaved by one (m = 2) or two (m = 4) rounds of zips
// into m vectors of whole m-element groups, stored up to `cols`.
template <class O, int M>
void winograd_unpack_body(const WinogradUnpackArgs& a, const typename O::T* out,
                          typename O::T* y) {
  using V = typename O::V;
  constexpr int L = O::L;
  for (int64_t i = 0; i < a.rows; ++i) {
    const typename O::T* src = out + i * a.row_stride;
    typename O::T* dst = y + i * a.y_stride;
    for (int64_t j = 0; j < a.n; j += L) {
      const int64_t lanes = std::min<int64_t>(L, a.n - j);
      V ph[M], r[M];
      wg_for<M>([&](auto q_c) CONVCORE_WG_LAMBDA {
        constexpr int q = decltype(q_c)::value;
        ph[q] = O::load(src + q * a.phase_stride + j, lanes);
      });
      if constexpr (M == 2) {
        O::zip(ph[0], ph[1], r[0], r[1]);
      } else {
        V e0, e1, o0, o1;
        O::zip(ph[0], ph[2], e0, e1);
        O::zip(ph[1], ph[3], o0, o1);
        O::zip(e0, o0, r[0], r[1]);
        O::zip(e1, o1, r[2], r[3]);
      }
      wg_for<M>([&](auto v_c) CONVCORE_WG_LAMBDA {
        constexpr int v = decltype(v_c)::value;
        const int64_t rest = a.cols - j * M - v * L;
        if (rest > 0) O::store(dst + j * M + v * L, r[v], std::min<int64_t>(rest, L));
      });
    }
  }
}

// v = BT d BT^T for O::L tiles at a time (WinogradInputFn's contract). Per output row xi:
// the band's rows combined column by column (t), then t's columns combined.
template <class O, int M>
void winograd_input_body(const WinogradInputArgs& a, const typename O::T* band,
                         typename O::T* v) {
  using V = typename O::V;
  constexpr int A = M + 2;
  const int64_t rs = a.row_stride, ps = a.phase_stride, vs = a.v_stride;
  for (int64_t j = 0; j < a.n; j += O::L) {
    const int64_t lanes = std::min<int64_t>(O::L, a.n - j);
    wg_for<A>([&](auto xi_c) CONVCORE_WG_LAMBDA {
      constexpr int xi = decltype(xi_c)::value;
      V t[A];
      wg_for<A>([&](auto s_c) CONVCORE_WG_LAMBDA {
        constexpr int s = decltype(s_c)::value;
        const typename O::T* col = band + (s % M) * ps + j + s / M;
        t[s] = wg_lin<O, WgBT<M>, xi>([&](int r) CONVCORE_WG_LAMBDA { return O::load(col + r * rs, lanes); });
      });
      wg_for<A>([&](auto nu_c) CONVCORE_WG_LAMBDA {
        constexpr int nu = decltype(nu_c)::value;
        O::store(v + (xi * A + nu) * vs + j, wg_lin<O, WgBT<M>, nu>([&](int s) CONVCORE_WG_LAMBDA { return t[s]; }),
                 lanes);
      });
    });
  }
}

// out = act(bias + AT M AT^T) (WinogradOutputFn's contract).
template <class O, int M>
void winograd_output_body(const WinogradOutputArgs& a, const typename O::T* mm,
                          const typename O::T* bias, typename O::T* out, const Activation& act) {
  using V = typename O::V;
  constexpr int A = M + 2;
  const typename O::Epilogue epi(act);
  const int64_t ms = a.m_stride, rs = a.row_stride, ps = a.phase_stride;
  const V b = O::set1(bias != nullptr ? *bias : typename O::T(0));
  for (int64_t j = 0; j < a.n; j += O::L) {
    const int64_t lanes = std::min<int64_t>(O::L, a.n - j);
    wg_for<M>([&](auto i_c) CONVCORE_WG_LAMBDA {
      constexpr int i = decltype(i_c)::value;
      V t[A];
      wg_for<A>([&](auto c_c) CONVCORE_WG_LAMBDA {
        constexpr int c = decltype(c_c)::value;
        t[c] = wg_lin<O, WgAT<M>, i>(
            [&](int k) CONVCORE_WG_LAMBDA { return O::load(mm + (k * A + c) * ms + j, lanes); });
      });
      wg_for<M>([&](auto q_c) CONVCORE_WG_LAMBDA {
        constexpr int q = decltype(q_c)::value;
        V y = wg_lin<O, WgAT<M>, q>([&](int c) CONVCORE_WG_LAMBDA { return t[c]; });
        if (bias != nullptr) y = O::add(y, b);
        epi.store(out + i * rs + q * ps + j, y, lanes);
      });
    });
  }
}

// The slot functions' dispatch on the tile size.
template <class O>
void winograd_weights_any(const WinogradWeightsArgs& a, const typename O::T* g, typename O::T* u) {
  if (a.m == 4)
    winograd_weights_body<O, 4>(a, g, u);
  else
    winograd_weights_body<O, 2>(a, g, u);
}
template <class O>
void winograd_pack_any(const WinogradPackArgs& a, const typename O::T* x, typename O::T* band) {
  if (a.m == 4)
    winograd_pack_body<O, 4>(a, x, band);
  else
    winograd_pack_body<O, 2>(a, x, band);
}
template <class O>
void winograd_unpack_any(const WinogradUnpackArgs& a, const typename O::T* out, typename O::T* y) {
  if (a.m == 4)
    winograd_unpack_body<O, 4>(a, out, y);
  else
    winograd_unpack_body<O, 2>(a, out, y);
}
template <class O>
void winograd_input_any(const WinogradInputArgs& a, const typename O::T* band, typename O::T* v) {
  if (a.m == 4)
    winograd_input_body<O, 4>(a, band, v);
  else
    winograd_input_body<O, 2>(a, band, v);
}
template <class O>
void winograd_output_any(const WinogradOutputArgs& a, const typename O::T* mm,
                         const typename O::T* bias, typename O::T* out, const Activation& act) {
  if (a.m == 4)
    winograd_output_body<O, 4>(a, mm, bias, out, act);
  else
    winograd_output_body<O, 2>(a, mm, bias, out, act);
}

}  // namespace

#undef CONVCORE_WG_INLINE
#undef CONVCORE_WG_LAMBDA

}  // namespace convcore::kernels

// The ten named slot functions of one ISA (`isa`: the suffix, `Ops`: that ISA's vector
// operations template), each one call of the bodies above; used inside the ISA's namespace.
#define CONVCORE_WINOGRAD_KERNELS(isa, Ops)                                                   \
  void winograd_pack_f32_##isa(const WinogradPackArgs& a, const float* x, float* band) {      \
    winograd_pack_any<Ops<float>>(a, x, band);                                                \
  }                                                                                           \
  void winograd_pack_f64_##isa(const WinogradPackArgs& a, const double* x, double* band) {    \
    winograd_pack_any<Ops<double>>(a, x, band);                                               \
  }                                                                                           \
  void winograd_unpack_f32_##isa(const WinogradUnpackArgs& a, const float* out, float* y) {   \
    winograd_unpack_any<Ops<float>>(a, out, y);                                               \
  }                                                                                           \
  void winograd_unpack_f64_##isa(const WinogradUnpackArgs& a, const double* out, double* y) { \
    winograd_unpack_any<Ops<double>>(a, out, y);                                              \
  }                                                                                           \
  void winograd_input_f32_##isa(const WinogradInputArgs& a, const float* band, float* v) {    \
    winograd_input_any<Ops<float>>(a, band, v);                                               \
  }                                                                                           \
  void winograd_input_f64_##isa(const WinogradInputArgs& a, const double* band, double* v) {  \
    winograd_input_any<Ops<double>>(a, band, v);                                              \
  }                                                                                           \
  void winograd_output_f32_##isa(const WinogradOutputArgs& a, const float* mm,                \
                                 const float* bias, float* out, const Activation& act) {      \
    winograd_output_any<Ops<float>>(a, mm, bias, out, act);                                   \
  }                                                                                           \
  void winograd_output_f64_##isa(const WinogradOutputArgs& a, const double* mm,               \
                                 const double* bias, double* out, const Activation& act) {    \
    winograd_output_any<Ops<double>>(a, mm, bias, out, act);                                  \
  }                                                                                           \
  void winograd_weights_f32_##isa(const WinogradWeightsArgs& a, const float* g, float* u) {   \
    winograd_weights_any<Ops<float>>(a, g, u);                                                \
  }                                                                                           \
  void winograd_weights_f64_##isa(const WinogradWeightsArgs& a, const double* g, double* u) { \
    winograd_weights_any<Ops<double>>(a, g, u);                                               \
  }
