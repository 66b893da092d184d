// dispatch.cpp — CPU feature detection and the choice of kernel table.
#include "dispatch.hpp"

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <string>
#include <vector>

#include "convcore/runtime.hpp"

namespace convcore::detail {
namespace {

struct IsaEntry {
  const char* name;
  const kernels::IsaTables& (*tables)();
  bool (*supported)();
};

bool always() { return true; }
#if defined(CONVCORE_HAVE_AVX2)
// __builtin_cpu_supports checks CPUID and that the OS saves the ymm state (XGETBV).
bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif
#if defined(CONVCORE_HAVE_AVX512)
// The subsets our AVX-512 kernels use (Skylake-X, Ice Lake, Zen 4 and later have all
// four); __builtin_cpu_supports also checks that the OS saves the zmm and mask state.
bool cpu_has_avx512() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
         __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

// Widest first, scalar last.
const std::vector<IsaEntry>& compiled() {
  static const std::vector<IsaEntry> list = {
#if defined(CONVCORE_HAVE_AVX512)
      {"avx512", &kernels::avx512::tables, &cpu_has_avx512},
#endif
#if defined(CONVCORE_HAVE_AVX2)
      {"avx2", &kernels::avx2::tables, &cpu_has_avx2_fma},
#endif
      {"scalar", &kernels::scalar::tables, &always},
  };
  return list;
}

const IsaEntry& find(const std::string& name) {
  std::string known;
  for (const auto& e : compiled()) {
    if (name == e.name) {
      if (!e.supported())
        throw value_error("ISA '" + name + "' is compiled in but this CPU does not support it");
      kernels::check_complete(e.tables());
      return e;
    }
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  throw value_error("unknown ISA '" + name + "': this build has " + known);
}

const IsaEntry& initial() {
  const char* env = std::getenv("CONVCORE_ISA");
  if (env != nullptr && *env != '\0') {
    try {
      return find(env);
    } catch (const value_error& e) {
      throw value_error(std::string("CONVCORE_ISA: ") + e.what());
    }
  }
  for (const auto& e : compiled()) {
    if (e.supported()) {
      kernels::check_complete(e.tables());
      return e;
    }
  }
  return compiled().back();
}

std::atomic<const IsaEntry*> g_active{nullptr};
std::mutex g_init;

const IsaEntry& active() {
  const IsaEntry* e = g_active.load(std::memory_order_acquire);
  if (e != nullptr) return *e;
  std::lock_guard<std::mutex> lk(g_init);
  if (g_active.load() == nullptr) g_active.store(&initial());
  return *g_active.load();
}

}  // namespace

const kernels::IsaTables& active_tables() { return active().tables(); }

const kernels::IsaTables& tables_of(const std::string& name) { return find(name).tables(); }

}  // namespace convcore::detail

namespace convcore {

std::string isa() { return detail::active().name; }

void set_isa(const std::string& name) { detail::g_active.store(&detail::find(name)); }

std::vector<std::string> isas_compiled() {
  std::vector<std::string> out;
  for (const auto& e : detail::compiled()) out.emplace_back(e.name);
  return out;
}

std::vector<std::string> isas_supported() {
  std::vector<std::string> out;
  for (const auto& e : detail::compiled())
    if (e.supported()) out.emplace_back(e.name);
  return out;
}

}  // namespace convcore
