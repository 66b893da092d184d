// check.hpp — the C++ tests' assertion helper: CHECK(cond), CHECK_THROWS(expr, type),
// CHECK_NOTHROW(expr); each failure prints file:line and the expression, the test keeps
// going, and `check::finish()` turns the count into main's exit status (0 = all passed).
#pragma once

#include <cstdio>
#include <exception>
#include <string>

namespace check {

inline int& failures() {
  static int n = 0;
  return n;
}
inline int& checks() {
  static int n = 0;
  return n;
}

inline void fail(const char* file, int line, const std::string& what) {
  ++failures();
  std::fprintf(stderr, "%s:%d: FAILED: %s\n", file, line, what.c_str());
}

// Context printed with every failure (the parameters being swept), set by the test.
inline std::string& context() {
  static std::string s;
  return s;
}

inline int finish(const char* name) {
  std::printf("%s: %d checks, %d failed\n", name, checks(), failures());
  return failures() == 0 ? 0 : 1;
}

}  // namespace check

#define CHECK(cond)                                                                   \
  do {                                                                                \
    ++check::checks();                                                                \
    if (!(cond)) check::fail(__FILE__, __LINE__, std::string(#cond) + "  [" +         \
                                                     check::context() + "]");         \
  } while (0)

// Passes when `expr` throws `type` (or a type derived from it); prints the message, so
// the log shows that the error names the argument.
#define CHECK_THROWS(expr, type)                                                       \
  do {                                                                                 \
    ++check::checks();                                                                 \
    try {                                                                              \
      expr;                                                                            \
      check::fail(__FILE__, __LINE__, "no exception from " #expr);                     \
    } catch (const type& e_) {                                                         \
      std::printf("  ok: %s -> %s: %s\n", #expr, #type, e_.what());                    \
    } catch (const std::exception& e_) {                                               \
      check::fail(__FILE__, __LINE__,                                                  \
                  std::string("wrong exception from " #expr ": ") + e_.what());        \
    }                                                                                  \
  } while (0)

#define CHECK_NOTHROW(expr)                                                            \
  do {                                                                                 \
    ++check::checks();                                                                 \
    try {                                                                              \
      expr;                                                                            \
    } catch (const std::exception& e_) {                                               \
      check::fail(__FILE__, __LINE__, std::string("exception from " #expr ": ") +      \
                                          e_.what());                                  \
    }                                                                                  \
  } while (0)
