// test_errors.cpp — every documented error is the documented exception type, thrown
// before anything is computed: convcore::value_error (a std::invalid_argument) for bad
// sizes, values and names, std::bad_alloc for a workspace larger than memory.
#include <new>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "check.hpp"
#include "convcore/convcore.hpp"

using convcore::Activation;
using convcore::Conv2dOp;
using convcore::Conv2dParams;
using convcore::PaddingMode;
using convcore::value_error;

static_assert(std::is_base_of<std::invalid_argument, convcore::value_error>::value, "");
static_assert(std::is_base_of<std::invalid_argument, convcore::type_error>::value, "");

namespace {

Conv2dParams good() {
  Conv2dParams p;
  p.N = 2, p.C = 4, p.H = 6, p.W = 6, p.K = 4, p.R = 3, p.S = 3;
  return p;
}

// p.validate(), Conv2dOp's constructor and conv2d all reject p with value_error.
void rejected(const Conv2dParams& p, const char* what) {
  check::context() = what;
  const std::vector<float> w(64 * 64, 0.0f), x(4096, 0.0f);
  std::vector<float> y(4096);
  CHECK_THROWS(p.validate(), value_error);
  CHECK_THROWS(Conv2dOp<float>(p, w.data(), nullptr), value_error);
  CHECK_THROWS(convcore::conv2d(p, x.data(), w.data(), nullptr, y.data()), value_error);
}

void params() {
  CHECK_NOTHROW(good().validate());
  Conv2dParams p;
  p = good(), p.N = -1, rejected(p, "negative batch");
  p = good(), p.C = 0, rejected(p, "no input channels");
  p = good(), p.H = 0, rejected(p, "zero height");
  p = good(), p.W = -3, rejected(p, "negative width");
  p = good(), p.K = 0, rejected(p, "no output channels");
  p = good(), p.R = 0, rejected(p, "zero kernel rows");
  p = good(), p.stride_h = 0, rejected(p, "zero stride");
  p = good(), p.stride_w = -1, rejected(p, "negative stride");
  p = good(), p.dilation_w = 0, rejected(p, "zero dilation");
  p = good(), p.pad_left = -1, rejected(p, "negative padding");
  p = good(), p.groups = 0, rejected(p, "zero groups");
  p = good(), p.groups = 3, rejected(p, "groups not dividing C and K");
  p = good(), p.K = 6, p.groups = 4, rejected(p, "groups not dividing K");
  p = good(), p.R = 7, rejected(p, "kernel taller than the input");
  p = good(), p.dilation_h = 3, rejected(p, "dilated kernel taller than the input");
  p = good(), p.padding_mode = PaddingMode::reflect, p.pad_top = 6,
  rejected(p, "reflect padding == input size");
  p = good(), p.padding_mode = PaddingMode::circular, p.pad_right = 7,
  rejected(p, "circular padding > input size");
  p = good(), p.N = int64_t{1} << 40, p.C = int64_t{1} << 30, rejected(p, "input size overflows");
  p = good(), p.dilation_h = int64_t{1} << 62, rejected(p, "dilation overflows");

  // The boundaries that are allowed.
  check::context() = "allowed boundaries";
  p = good(), p.padding_mode = PaddingMode::reflect, p.pad_top = 5;
  CHECK_NOTHROW(p.validate());
  p = good(), p.padding_mode = PaddingMode::circular, p.pad_right = 6;
  CHECK_NOTHROW(p.validate());
  p = good(), p.R = 6, p.S = 6;  // kernel == input: one output pixel
  CHECK_NOTHROW(p.validate());
  p = good(), p.N = 0;
  CHECK_NOTHROW(p.validate());
}

// What `f` throws, as value_error's message ("" when it throws nothing or something else).
template <class F>
std::string message_of(F&& f) {
  try {
    f();
  } catch (const value_error& e) {
    return e.what();
  } catch (...) {
  }
  return "";
}

// One rule, one message, whichever entry point: validate(), the operator, the one-call
// conv2d. tests/test_errors.py checks that the Python function and layer give this same
// text for the same problem.
void one_message() {
  check::context() = "one message";
  Conv2dParams p;
  p.N = 1, p.C = 4, p.H = 3, p.W = 3, p.K = 2;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 4;
  p.padding_mode = PaddingMode::reflect;
  const std::string expected =
      "conv2d: padding_mode='reflect' needs padding < the input size, got padding "
      "(top, bottom, left, right) = (4, 4, 4, 4) for input (H, W) = (3, 3)";
  const std::vector<float> w(8, 0.0f), x(36, 0.0f);
  std::vector<float> y(1024);
  CHECK(message_of([&] { p.validate(); }) == expected);
  CHECK(message_of([&] { Conv2dOp<float>(p, w.data(), nullptr); }) == expected);
  CHECK(message_of([&] { convcore::conv2d(p, x.data(), w.data(), nullptr, y.data()); }) ==
        expected);
}

void pointers_and_batch() {
  check::context() = "pointers";
  const Conv2dParams p = good();
  const std::vector<float> w(4 * 4 * 9, 1.0f), x(2 * 4 * 36, 1.0f);
  std::vector<float> y(2 * 4 * 16);
  CHECK_THROWS(Conv2dOp<float>(p, nullptr, nullptr), value_error);
  const Conv2dOp<float> op(p, w.data(), nullptr);
  CHECK_THROWS(op.run(1, nullptr, y.data()), value_error);
  CHECK_THROWS(op.run(1, x.data(), nullptr), value_error);
  CHECK_THROWS(op.run(-1, x.data(), y.data()), value_error);
  CHECK_THROWS(op.run(int64_t{1} << 62, x.data(), y.data()), value_error);  // N*C*H*W overflows
  CHECK_NOTHROW(op.run(2, x.data(), y.data()));
  CHECK(y[0] == 36.0f);  // a 3x3x4 window of ones
}

void names() {
  check::context() = "names";
  CHECK_THROWS(convcore::padding_mode_from_name("mirror"), value_error);
  CHECK_THROWS(convcore::algorithm_from_name("fft"), value_error);
  CHECK(convcore::algorithm_from_name("winograd") == convcore::Algorithm::winograd);
  CHECK_THROWS(convcore::algorithm_from_name("automatic"), value_error);
  CHECK_THROWS(convcore::activation_kind("gelu"), value_error);
  CHECK_THROWS(convcore::activation_kind("ReLU"), value_error);
}

// Winograd outside its geometry: a value_error naming the constraint, from the operator
// and the one call alike (the problem itself is valid).
void winograd_geometry() {
  check::context() = "winograd geometry";
  const std::vector<float> w(4 * 4 * 25, 0.0f), x(2 * 4 * 36, 0.0f);
  std::vector<float> y(2 * 4 * 36);
  const auto message = [&](const Conv2dParams& p) -> std::string {
    try {
      Conv2dOp<float> op(p, w.data(), nullptr);
    } catch (const value_error& e) {
      return e.what();
    }
    return "";
  };
  Conv2dParams p = good();
  p.algorithm = convcore::Algorithm::winograd;
  CHECK_NOTHROW(convcore::conv2d(p, x.data(), w.data(), nullptr, y.data()));
  p.R = p.S = 5;
  CHECK(message(p).find("needs a 3x3 kernel, got 5x5") != std::string::npos);
  CHECK_THROWS(convcore::conv2d(p, x.data(), w.data(), nullptr, y.data()), value_error);
  p = good();
  p.algorithm = convcore::Algorithm::winograd;
  p.stride_w = 2;
  CHECK(message(p).find("needs stride 1") != std::string::npos);
  p = good();
  p.algorithm = convcore::Algorithm::winograd;
  p.groups = 2;
  CHECK(message(p).find("at least 4 input channels per group") != std::string::npos);
}

void runtime() {
  check::context() = "runtime";
  const std::string before = convcore::isa();
  CHECK_THROWS(convcore::set_isa("avx9000"), value_error);
  CHECK_THROWS(convcore::set_isa(""), value_error);
  CHECK(convcore::isa() == before);  // a rejected name changes nothing
  for (const auto& s : convcore::isas_compiled()) {
    bool ok = false;
    for (const auto& t : convcore::isas_supported()) ok |= s == t;
    if (!ok) CHECK_THROWS(convcore::set_isa(s), value_error);  // compiled, not runnable
  }
  const int threads = convcore::get_num_threads();
  CHECK_THROWS(convcore::set_num_threads(0), value_error);
  CHECK_THROWS(convcore::set_num_threads(-2), value_error);
  CHECK_THROWS(convcore::set_num_threads(1025), value_error);
  CHECK(convcore::get_num_threads() == threads);
  const float x[2] = {1, 2};
  float y[2];
  CHECK_THROWS(convcore::activate(Activation{Activation::relu}, x, y, -1), value_error);
}

// Workspaces larger than physical memory: std::bad_alloc, not a crash at first touch.
void memory() {
  check::context() = "memory";
  Conv2dParams p;
  p.C = int64_t{1} << 20, p.K = int64_t{1} << 20;  // 2^40 weights: 4 TiB packed
  const float w = 0;
  CHECK_THROWS(Conv2dOp<float>(p, &w, nullptr), std::bad_alloc);
  // Non-zero padding materialises the padded batch: 2^40 elements here.
  Conv2dParams q = good();
  q.padding_mode = PaddingMode::replicate, q.pad_top = q.pad_bottom = 1;
  const std::vector<float> wq(4 * 4 * 9, 1.0f);
  const Conv2dOp<float> op(q, wq.data(), nullptr);
  const float x = 0;
  float y = 0;
  CHECK_THROWS(op.run(int64_t{1} << 35, &x, &y), std::bad_alloc);
}

}  // namespace

int main() {
  params();
  one_message();
  pointers_and_batch();
  names();
  winograd_geometry();
  runtime();
  memory();
  return check::finish("test_errors");
}
