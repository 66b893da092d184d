// test_runtime.cpp — threads, instruction sets, the kernel listing and build information
// (convcore/runtime.hpp).
#include <algorithm>
#include <cstdlib>
#include <set>
#include <string>
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

void build() {
  check::context() = "build info";
  CHECK(convcore::version() == CONVCORE_EXPECTED_VERSION);
  CHECK(!convcore::compiler().empty());
  CHECK(convcore::cxx_flags().find("baseline") != std::string::npos);
}

}  // namespace

int main() {
  threads();
  isas();
  kernels();
  build();
  return check::finish("test_runtime");
}
