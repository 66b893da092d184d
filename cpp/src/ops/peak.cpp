// peak.cpp — measure_peak_gflops: the machine's float32 FMA peak, measured with a
// table's peak_fma_f32 probe (12 independent FMA chains of 8 lanes on AVX2, of 16 on
// AVX-512) running on `threads` pool tasks at once. The benchmarks report every result as
// a fraction of it; convcore.machine compares the AVX2 and AVX-512 figures.
// measure_gemm_kernel_gflops: the float GEMM micro-kernel alone, in the regime the driver
// (ops/gemm.hpp) sets up inside one KC x MC block, to judge it against that peak.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "convcore/runtime.hpp"
#include "convcore/types.hpp"
#include "dispatch.hpp"
#include "ops/gemm.hpp"
#include "workspace.hpp"
#include "threadpool.hpp"

namespace convcore {

double measure_peak_gflops(int threads, double seconds, const std::string& isa) {
  if (threads < 1 || threads > get_num_threads())
    throw value_error("measure_peak_gflops: threads must be from 1 to get_num_threads() = " +
                      std::to_string(get_num_threads()) + ", got " + std::to_string(threads));
  if (!(seconds > 0 && seconds <= 60))
    throw value_error("measure_peak_gflops: seconds must be in (0, 60]");
  const auto& k = (isa.empty() ? detail::active_tables() : detail::tables_of(isa)).peak_fma;
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

double measure_gemm_kernel_gflops(double seconds, const std::string& isa) {
  if (!(seconds > 0 && seconds <= 60))
    throw value_error("measure_gemm_kernel_gflops: seconds must be in (0, 60]");
  const auto& k = (isa.empty() ? detail::active_tables() : detail::tables_of(isa)).f32.gemm;
  // One MC x KC block of A panels (L2) against one KC x NR panel of B (L1), each A panel
  // to its own C tile: the driver's innermost loop. A = 1, B = 1 make every output
  // exactly KC, which is checked.
  const int64_t MR = k.mr, NR = k.nr, KC = detail::kGemmKC;
  const int64_t panels = detail::gemm_mc<float>() / MR;
  detail::Buffer<float> a(panels * MR * KC), b(KC * NR), c(panels * MR * NR);
  std::fill(a.get(), a.get() + panels * MR * KC, 1.0f);
  std::fill(b.get(), b.get() + KC * NR, 1.0f);
  const kernels::GemmEpilogue<float> ep;
  using clock = std::chrono::steady_clock;
  auto run = [&](int64_t reps) {
    const auto t0 = clock::now();
    for (int64_t r = 0; r < reps; ++r)
      for (int64_t p = 0; p < panels; ++p)
        k.fn(KC, a.get() + p * MR * KC, b.get(), NR, c.get() + p * MR * NR, NR, MR, NR, ep);
    const double elapsed = std::chrono::duration<double>(clock::now() - t0).count();
    for (int64_t i = 0; i < panels * MR * NR; ++i)
      if (c.get()[i] != static_cast<float>(KC))
        throw std::runtime_error(std::string("measure_gemm_kernel_gflops: ") + k.name +
                                 " computed " + std::to_string(c.get()[i]) + ", expected " +
                                 std::to_string(KC));
    return elapsed;
  };
  int64_t reps = 16;
  while (run(reps) < 2e-3 && reps < (int64_t{1} << 40)) reps *= 2;
  double best = HUGE_VAL, spent = 0;
  do {
    const double t = run(reps);
    best = std::min(best, t);
    spent += t;
  } while (spent < seconds);
  return 2.0 * MR * NR * KC * panels * static_cast<double>(reps) / best * 1e-9;
}

}  // namespace convcore
