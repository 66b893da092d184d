// activation.cpp — the element-wise activation driver: chunks over the pool.
#include "convcore/activation.hpp"

#include <algorithm>

#include "checked.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"

namespace convcore {
namespace {

constexpr int64_t kChunk = 1 << 16;  // elements per task: large enough to hide the hand-off

template <class T>
void run(const Activation& act, const T* x, T* y, int64_t n) {
  if (n < 0) throw value_error("activate: n must be >= 0");
  const auto fn = detail::kernels<T>().activate.fn;
  detail::parallel_for(detail::ceil_div(n, kChunk), [&](int64_t t) {
    const int64_t i = t * kChunk;
    fn(x + i, y + i, std::min(kChunk, n - i), act);
  });
}

}  // namespace

void activate(const Activation& act, const float* x, float* y, int64_t n) {
  run(act, x, y, n);
}
void activate(const Activation& act, const double* x, double* y, int64_t n) {
  run(act, x, y, n);
}

}  // namespace convcore
