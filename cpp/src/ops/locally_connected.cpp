// locally_connected.cpp — the locally connected layer's driver. One task per output row:
// it copies the input rows that output row reads, zero-padded, into its scratch, then
// runs a kernel per position with the position's filter bank as the user laid it out.
//   - Blocks of 8 images: the rows are stored with the 8 images innermost, and the
//     locally_connected_rows kernel reads every tap of the 8 images as one vector
//     straight from them (no gather; each weight loaded once per 8 images).
//   - The remaining N % 8 images (all of them when N < 8, or when 8 images' rows would
//     exceed kRows8Bytes): the rows as they are (a block of images bounded by
//     kRowsBytes), each position's patches gathered into (n, c, r, s) rows for the
//     locally_connected kernel's dot products.
#include "convcore/locally_connected.hpp"

#include <algorithm>
#include <optional>
#include <string>

#include "checked.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"
#include "workspace.hpp"

namespace convcore {

using detail::checked_add;
using detail::checked_mul;
using detail::checked_product;

namespace {

constexpr int64_t kRowsBytes = 1 << 20;   // bound on a task's padded rows (dot path)
constexpr int64_t kRows8Bytes = 1 << 24;  // the rows path needs 8 images' rows at once

// rows[((n*C + c)*R + r)*Wp + pad_left + w] = x[n0 + n, c, ih(r), w], zero where the padding
// or a row outside the input is: the R input rows output row i reads, padded once so that
// gathering a patch needs no bounds test.
template <class T>
void pad_rows(const LocallyConnected2dParams& p, const T* x, int64_t n0, int64_t nb, int64_t i,
              int64_t Wp, T* rows) {
  for (int64_t n = 0; n < nb; ++n)
    for (int64_t c = 0; c < p.C; ++c) {
      const T* xc = x + ((n0 + n) * p.C + c) * p.H * p.W;
      for (int64_t r = 0; r < p.R; ++r, rows += Wp) {
        const int64_t ih = i * p.stride_h + r * p.dilation_h - p.pad_top;
        std::fill(rows, rows + Wp, T(0));
        if (ih >= 0 && ih < p.H) std::copy(xc + ih * p.W, xc + (ih + 1) * p.W, rows + p.pad_left);
      }
    }
}

// rows[((c*R + r)*Wp + pad_left + w)*8 + n] = x[n0 + n, c, ih(r), w] for n < 8, zero in
// the padding and in rows outside the input: pad_rows with the 8 images innermost.
template <class T>
void pad_rows8(const LocallyConnected2dParams& p, const T* x, int64_t n0, int64_t i, int64_t Wp,
               T* rows) {
  std::fill(rows, rows + p.C * p.R * Wp * 8, T(0));
  for (int64_t c = 0; c < p.C; ++c)
    for (int64_t r = 0; r < p.R; ++r) {
      const int64_t ih = i * p.stride_h + r * p.dilation_h - p.pad_top;
      if (ih < 0 || ih >= p.H) continue;
      T* dst = rows + ((c * p.R + r) * Wp + p.pad_left) * 8;
      for (int64_t n = 0; n < 8; ++n) {
        const T* src = x + (((n0 + n) * p.C + c) * p.H + ih) * p.W;
        for (int64_t w = 0; w < p.W; ++w) dst[w * 8 + n] = src[w];
      }
    }
}

// patches[n*kd + (c*R + r)*S + s] = the padded row (n, c, r) at column j*stride_w + s*dilation_w.
template <class T>
void gather(const LocallyConnected2dParams& p, const T* rows, int64_t nrows, int64_t Wp, int64_t j,
            T* patches) {
  const T* src = rows + j * p.stride_w;
  for (int64_t q = 0; q < nrows; ++q, src += Wp)
    for (int64_t s = 0; s < p.S; ++s) *patches++ = src[s * p.dilation_w];
}

template <class T>
void run(const LocallyConnected2dParams& p, const T* x, const T* w, const T* bias, T* y) {
  p.validate();
  if (p.N == 0) return;
  if (x == nullptr || w == nullptr || y == nullptr)
    throw value_error("locally_connected2d: input, weight and output must not be null");
  const int64_t Ho = p.out_h(), Wo = p.out_w(), P = Ho * Wo;
  const int64_t kd = p.C * p.R * p.S;
  const int64_t Wp = p.W + p.pad_left + p.pad_right;
  std::optional<detail::InlineScope> inline_scope;  // small layers on the calling thread
  if (static_cast<double>(p.N) * P * p.K * kd <
      static_cast<double>(detail::kInlineWork * detail::kMacsPerWork))
    inline_scope.emplace();
  const int64_t per_image = checked_product("locally_connected2d rows", p.C, p.R, Wp);
  // Images that go through the rows kernel (none when 8 images' rows would not fit).
  const bool rows_fit = per_image <= kRows8Bytes / 8 / static_cast<int64_t>(sizeof(T));
  const int64_t n8 = rows_fit ? p.N / 8 * 8 : 0;
  const int64_t rest = p.N - n8;
  const int64_t nb_max =
      std::clamp<int64_t>(kRowsBytes / static_cast<int64_t>(sizeof(T)) / per_image, 1, std::max<int64_t>(rest, 1));
  const int64_t rows_len = checked_mul(std::max<int64_t>(nb_max, n8 > 0 ? 8 : 0), per_image,
                                       "locally_connected2d rows");
  const size_t scratch = static_cast<size_t>(checked_add(rows_len, checked_mul(nb_max, kd, "patches"),
                                                         "patches")) * sizeof(T);
  const auto& table = detail::kernels<T>();
  const auto dot = table.locally_connected.fn;
  const auto rows8 = table.locally_connected_rows.fn;
  // One task per output row: its positions share the padded input rows.
  detail::parallel_for(Ho, [&](int64_t i) {
    T* rows = static_cast<T*>(detail::thread_scratch(scratch));
    T* patches = rows + rows_len;
    for (int64_t n0 = 0; n0 < n8; n0 += 8) {
      pad_rows8(p, x, n0, i, Wp, rows);
      const kernels::LocallyConnectedRowsArgs a{p.C * p.R, p.S, Wp * 8, p.dilation_w * 8,
                                                p.K,       8,   P,      P,
                                                p.K * P};
      for (int64_t j = 0; j < Wo; ++j) {
        const int64_t pos = i * Wo + j;
        rows8(a, w + pos * p.K * kd, rows + j * p.stride_w * 8,
              bias != nullptr ? bias + pos : nullptr, y + n0 * p.K * P + pos, p.activation);
      }
    }
    for (int64_t n0 = n8; n0 < p.N; n0 += nb_max) {
      const int64_t nb = std::min(nb_max, p.N - n0);
      pad_rows(p, x, n0, nb, i, Wp, rows);
      const kernels::LocallyConnectedArgs a{kd, p.K, nb, P, P, p.K * P};
      for (int64_t j = 0; j < Wo; ++j) {
        const int64_t pos = i * Wo + j;
        gather(p, rows, nb * p.C * p.R, Wp, j, patches);
        dot(a, w + pos * p.K * kd, patches, bias != nullptr ? bias + pos : nullptr,
            y + n0 * p.K * P + pos, p.activation);
      }
    }
  });
}

}  // namespace

void LocallyConnected2dParams::validate() const {
  ConvGeometry::validate("locally_connected2d");
  if (groups != 1)
    throw value_error("locally_connected2d: groups must be 1, got " + std::to_string(groups));
  checked_product("locally_connected2d weight", out_h(), out_w(), K, C, R, S);
}

void locally_connected2d(const LocallyConnected2dParams& p, const float* x, const float* w,
                         const float* bias, float* y) {
  run(p, x, w, bias, y);
}
void locally_connected2d(const LocallyConnected2dParams& p, const double* x, const double* w,
                         const double* bias, double* y) {
  run(p, x, w, bias, y);
}

}  // namespace convcore
