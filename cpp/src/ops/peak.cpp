// peak.cpp — measure_peak_gflops: the machine's float32 FMA peak, measured with the
// table's peak_fma_f32 probe (12 independent FMA chains of 8 lanes on AVX2, of 16 on
// AVX-512) running on `threads` pool tasks at once. The benchmarks report every result as a fraction of it.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "convcore/runtime.hpp"
#include "convcore/types.hpp"
#include "dispatch.hpp"
#include "threadpool.hpp"

namespace convcore {

double measure_peak_gflops(int threads, double seconds) {
  if (threads < 1 || threads > get_num_threads())
    throw value_error("measure_peak_gflops: threads must be from 1 to get_num_threads() = " +
                      std::to_string(get_num_threads()) + ", got " + std::to_string(threads));
  if (!(seconds > 0 && seconds <= 60))
    throw value_error("measure_peak_gflops: seconds must be in (0, 60]");
  const auto& k = detail::active_tables().peak_fma;
  const double flops_per_step = 2.0 * k.mr * k.nr;
  using clock = std::chrono::steady_clock;
  // m = 1, c = 0 keep the accumulators exact; the kernel cannot know them in advance.
  volatile float m = 1.0f, c = 0.0f, sink = 0.0f;
  std::vector<float> result(threads);
  auto run = [&](int64_t steps) {
    const float mm = m, cc = c;
    const auto t0 = clock::now();
    detail::parallel_for(threads, [&](int64_t t) { result[t] = k.fn(steps, mm, cc); });
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    // With m = 1, c = 0 every chain keeps its start value: the sum is 0 + 1 + ... + 95
    // (AVX2; up to 191 on AVX-512), exact in float. Anything else means the kernel skipped
    // or mixed up chains.
    const float expect = 0.5f * (k.mr * k.nr - 1) * (k.mr * k.nr);
    for (float r : result) {
      if (r != expect)
        throw std::runtime_error(std::string("measure_peak_gflops: ") + k.name + " returned " +
                                 std::to_string(r) + ", expected " + std::to_string(expect));
      sink = sink + r;
    }
    return elapsed;
  };
  // Grow the work until one run takes ~2 ms (pool wake-up is then noise), then keep the
  // best run: on a shared machine the fastest run is the one least disturbed.
  int64_t steps = 1 << 12;
  while (run(steps) < 2e-3 && steps < (int64_t{1} << 40)) steps *= 2;
  double best = HUGE_VAL, spent = 0;
  do {
    const double t = run(steps);
    best = std::min(best, t);
    spent += t;
  } while (spent < seconds);
  return flops_per_step * static_cast<double>(steps) * threads / best * 1e-9;
}

}  // namespace convcore
