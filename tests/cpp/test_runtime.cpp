// test_runtime.cpp — threads, the interrupt handler, instruction sets, the kernel listing
// and build information (convcore/runtime.hpp).
#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "check.hpp"
#include "convcore/convcore.hpp"

namespace {

bool contains(const std::vector<std::string>& v, const std::string& s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

void threads() {
  check::context() = "threads";
  // The start value: CONVCORE_NUM_THREADS if set, else the CPUs this process may use.
  const char* env = std::getenv("CONVCORE_NUM_THREADS");
  if (env != nullptr && *env != '\0')
    CHECK(convcore::get_num_threads() == std::atoi(env));
  else
    CHECK(convcore::get_num_threads() >= 1);
  convcore::set_num_threads(3);
  CHECK(convcore::get_num_threads() == 3);
  convcore::set_num_threads(1);
  CHECK(convcore::get_num_threads() == 1);
  convcore::set_num_threads(1024);
  CHECK(convcore::get_num_threads() == 1024);
  convcore::set_num_threads(2);
  CHECK(convcore::get_num_threads() == 2);
}

// The per-thread cap: thread-local, validated, and the same bits under any cap.
void thread_limit() {
  check::context() = "set_thread_limit";
  CHECK(convcore::get_thread_limit() == 0);
  CHECK_THROWS(convcore::set_thread_limit(-1), convcore::value_error);
  CHECK_THROWS(convcore::set_thread_limit(1025), convcore::value_error);
  convcore::set_num_threads(4);
  convcore::Conv2dParams p;
  p.N = 2, p.C = 8, p.H = 37, p.W = 41, p.K = 16, p.R = 3, p.S = 3;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  std::vector<float> x(static_cast<size_t>(p.N * p.C * p.H * p.W)), w(16 * 8 * 9);
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 263) / 97.0f - 1.3f;
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>((i * 104729) % 101) / 53.0f - 0.9f;
  const size_t out = static_cast<size_t>(p.N * p.K * p.H * p.W);
  std::vector<float> want(out), got(out);
  for (auto algorithm : {convcore::Algorithm::direct, convcore::Algorithm::im2col}) {
    p.algorithm = algorithm;
    convcore::conv2d(p, x.data(), w.data(), nullptr, want.data());
    for (int cap : {1, 2, 3}) {
      std::thread t([&] {
        convcore::set_thread_limit(cap);
        CHECK(convcore::get_thread_limit() == cap);
        convcore::conv2d(p, x.data(), w.data(), nullptr, got.data());
      });
      t.join();
      CHECK(got == want);
    }
  }
  CHECK(convcore::get_thread_limit() == 0);  // the other threads' caps stayed theirs
  convcore::set_num_threads(2);
}

void isas() {
  check::context() = "isas";
  const auto compiled = convcore::isas_compiled(), supported = convcore::isas_supported();
  CHECK(!compiled.empty() && compiled.back() == "scalar");
  CHECK(contains(supported, "scalar"));
  for (const auto& s : supported) CHECK(contains(compiled, s));
  // The start value: CONVCORE_ISA if set, else the widest supported set.
  const char* env = std::getenv("CONVCORE_ISA");
  CHECK(convcore::isa() == (env != nullptr && *env != '\0' ? std::string(env) : supported.front()));
  for (const auto& s : supported) {
    convcore::set_isa(s);
    CHECK(convcore::isa() == s);
  }
  convcore::set_isa("scalar");
  CHECK(convcore::isa() == "scalar");
}

void kernels() {
  check::context() = "kernel_list";
  const auto list = convcore::kernel_list();
  CHECK(!list.empty());
  // Every compiled ISA has a table, and every table has the same slots.
  std::set<std::string> tables;
  std::vector<std::string> scalar_ops, first_ops;
  for (const auto& k : list) {
    tables.insert(k.table);
    CHECK(!k.op.empty() && !k.name.empty() && !k.isa.empty());
    CHECK(k.mr >= 0 && k.nr >= 0);
    if (k.table == "scalar") {
      scalar_ops.push_back(k.op);
      CHECK(k.isa == "scalar");
    }
    if (k.table == list.front().table) first_ops.push_back(k.op);
  }
  CHECK(tables.size() == convcore::isas_compiled().size());
  for (const auto& t : convcore::isas_compiled()) CHECK(tables.count(t) == 1);
  std::sort(scalar_ops.begin(), scalar_ops.end());
  std::sort(first_ops.begin(), first_ops.end());
  CHECK(scalar_ops == first_ops);
  CHECK(std::count(scalar_ops.begin(), scalar_ops.end(), "gemm_f32") == 1);
  CHECK(std::count(scalar_ops.begin(), scalar_ops.end(), "activate_f64") == 1);
}

// A conv2d that runs well over the 20 ms poll interval: 8*32*48*48*32*9 = 170M
// multiply-adds on the scalar kernels, one thread.
struct LongCall {
  convcore::Conv2dParams p;
  std::vector<float> x, w, y;
  LongCall() {
    p.N = 8, p.C = 32, p.H = 48, p.W = 48, p.K = 32, p.R = 3, p.S = 3;
    p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
    x.assign(8 * 32 * 48 * 48, 0.5f);
    w.assign(32 * 32 * 9, 0.25f);
    y.assign(8 * 32 * 48 * 48, 0.0f);
  }
  void run() { convcore::conv2d(p, x.data(), w.data(), nullptr, y.data()); }
};

int g_polls = 0;
bool stop_now() { return ++g_polls > 0; }
bool keep_going() { return ++g_polls < 0; }

void interrupt() {
  check::context() = "interrupt handler";
  convcore::set_isa("scalar");
  convcore::set_num_threads(1);
  LongCall call;
  call.run();
  const std::vector<float> expected = call.y;

  // A handler that says "go on" is polled and changes nothing.
  convcore::set_interrupt_handler(&keep_going);
  std::fill(call.y.begin(), call.y.end(), 0.0f);
  call.run();
  CHECK(g_polls > 0);
  CHECK(call.y == expected);

  // A handler that says "stop": the call throws convcore::interrupted.
  g_polls = 0;
  convcore::set_interrupt_handler(&stop_now);
  CHECK_THROWS(call.run(), convcore::interrupted);
  CHECK(g_polls == 1);  // stopped at the first poll

  // nullptr removes the handler.
  convcore::set_interrupt_handler(nullptr);
  g_polls = 0;
  CHECK_NOTHROW(call.run());
  CHECK(g_polls == 0 && call.y == expected);
  convcore::set_num_threads(2);
}

void build() {
  check::context() = "build info";
  CHECK(convcore::version() == CONVCORE_EXPECTED_VERSION);
  CHECK(!convcore::compiler().empty());
  CHECK(convcore::cxx_flags().find("baseline") != std::string::npos);
}

}  // namespace

int main() {
  threads();
  thread_limit();
  isas();
  kernels();
  interrupt();
  build();
  return check::finish("test_runtime");
}
