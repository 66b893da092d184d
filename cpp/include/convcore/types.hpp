// convcore/types.hpp — value types shared by every public convcore call.
//
// Errors: every convcore function reports bad arguments by throwing
//   convcore::value_error  (derives std::invalid_argument) — shapes, values, names;
//   convcore::type_error   (derives std::invalid_argument) — dtypes (Python bindings only);
//   std::bad_alloc                                         — a workspace that cannot be had
//                                  (also for requests larger than physical memory);
//   std::system_error                                      — threads that cannot start;
//   convcore::interrupted  (derives std::runtime_error)    — stopped by the interrupt handler.
// Size products are computed with overflow checks; an overflow is a value_error. A call
// that throws has checked its arguments before writing any output, except for
// std::bad_alloc, std::system_error and interrupted, after which the output's contents
// are unspecified. Catch std::invalid_argument for the argument errors, std::exception
// for all of them.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace convcore {

struct value_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
struct type_error : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};
// Thrown when the interrupt handler (runtime.hpp) asked a running call to stop.
struct interrupted : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A point-wise function applied to every output element inside the kernel's store.
// alpha and beta are used only by the kinds that name them below.
//   none        y = x
//   relu        y = max(x, 0)            (NaN stays NaN)
//   sigmoid     y = 1 / (1 + exp(-alpha * (x - beta)))   (the lecture's a, b)
//   tanh        y = tanh(x)
//   abs         y = |x|
//   square      y = x * x
//   leaky_relu  y = x >= 0 ? x : alpha * x               (alpha = negative slope)
struct Activation {
  enum Kind : int { none = 0, relu, sigmoid, tanh, abs, square, leaky_relu };
  Kind kind = none;
  double alpha = 1.0;
  double beta = 0.0;

  static Activation Sigmoid(double a = 1.0, double b = 0.0) { return {sigmoid, a, b}; }
  static Activation LeakyReLU(double slope = 0.01) { return {leaky_relu, slope, 0.0}; }
};

// Parses "relu", "sigmoid", ... ("none" or "" for none); throws value_error otherwise.
Activation::Kind activation_kind(const std::string& name);
const char* activation_name(Activation::Kind kind);

}  // namespace convcore
