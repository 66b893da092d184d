// checked.hpp — 64-bit size arithmetic that throws instead of wrapping.
#pragma once

#include <cstdint>
#include <string>

#include "convcore/types.hpp"

namespace convcore::detail {

inline int64_t checked_mul(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    throw value_error(std::string(what) + ": size product overflows 64 bits");
  return r;
}

inline int64_t checked_add(int64_t a, int64_t b, const char* what) {
  int64_t r;
  if (__builtin_add_overflow(a, b, &r))
    throw value_error(std::string(what) + ": size sum overflows 64 bits");
  return r;
}

template <class... Ts>
int64_t checked_product(const char* what, int64_t first, Ts... rest) {
  int64_t r = first;
  ((r = checked_mul(r, rest, what)), ...);
  return r;
}

inline int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

}  // namespace convcore::detail
