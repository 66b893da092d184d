// geometry.cpp — ConvGeometry (convcore/geometry.hpp): the output size and the rules every
// convolution-shaped operation shares, with the one message each rule gives.
#include "convcore/geometry.hpp"

#include <string>

#include "checked.hpp"

namespace convcore {

using detail::checked_add;
using detail::checked_mul;
using detail::checked_product;

namespace {

std::string tuple(std::initializer_list<int64_t> v) {
  std::string s = "(";
  for (int64_t x : v) s += (s.size() > 1 ? ", " : "") + std::to_string(x);
  return s + ")";
}

[[noreturn]] void fail(const char* op, const std::string& what) {
  throw value_error(std::string(op) + ": " + what);
}

}  // namespace

int64_t ConvGeometry::out_h() const {
  return (H + pad_top + pad_bottom - dilation_h * (R - 1) - 1) / stride_h + 1;
}
int64_t ConvGeometry::out_w() const {
  return (W + pad_left + pad_right - dilation_w * (S - 1) - 1) / stride_w + 1;
}

void ConvGeometry::validate_parameters(const char* op) const {
  if (C < 1) fail(op, "in_channels must be >= 1, got C = " + std::to_string(C));
  if (K < 1 || R < 1 || S < 1)
    fail(op, "out_channels and kernel_size must be >= 1, got (K, R, S) = " + tuple({K, R, S}));
  if (stride_h < 1 || stride_w < 1)
    fail(op, "stride must be >= 1, got stride=" + tuple({stride_h, stride_w}));
  if (dilation_h < 1 || dilation_w < 1)
    fail(op, "dilation must be >= 1, got dilation=" + tuple({dilation_h, dilation_w}));
  if (pad_top < 0 || pad_bottom < 0 || pad_left < 0 || pad_right < 0)
    fail(op, "padding must be >= 0, got padding (top, bottom, left, right) = " +
                 tuple({pad_top, pad_bottom, pad_left, pad_right}));
  if (groups < 1) fail(op, "groups must be >= 1, got " + std::to_string(groups));
  if (C % groups != 0 || K % groups != 0)
    fail(op, "groups=" + std::to_string(groups) + " must divide in_channels=" +
                 std::to_string(C) + " and out_channels=" + std::to_string(K));
}

void ConvGeometry::validate(const char* op) const {
  validate_parameters(op);
  if (N < 0) fail(op, "batch size must be >= 0, got N = " + std::to_string(N));
  if (H < 1 || W < 1)
    fail(op, "input height and width must be >= 1, got input (N, C, H, W) = " +
                 tuple({N, C, H, W}));
  const std::string name(op);
  checked_product((name + " input").c_str(), N, C, H, W);
  checked_product((name + " weight").c_str(), K, C / groups, R, S);
  const int64_t hp = checked_add(checked_add(H, pad_top, "padding"), pad_bottom, "padding");
  const int64_t wp = checked_add(checked_add(W, pad_left, "padding"), pad_right, "padding");
  const int64_t eh = checked_add(checked_mul(dilation_h, R - 1, "dilation"), 1, "dilation");
  const int64_t ew = checked_add(checked_mul(dilation_w, S - 1, "dilation"), 1, "dilation");
  if (eh > hp || ew > wp)
    fail(op, "kernel_size " + tuple({R, S}) + " with dilation " + tuple({dilation_h, dilation_w}) +
                 " spans " + tuple({eh, ew}) + ", larger than the padded input " + tuple({hp, wp}) +
                 " (input (H, W) = " + tuple({H, W}) + ", padding (top, bottom, left, right) = " +
                 tuple({pad_top, pad_bottom, pad_left, pad_right}) + ")");
  checked_product((name + " output").c_str(), N, K, out_h(), out_w());
  checked_product((name + " work").c_str(), N, K, out_h(), out_w(), C / groups, R, S);
}

}  // namespace convcore
