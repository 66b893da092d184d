// convcore/runtime.hpp — threads, instruction sets, build information.
#pragma once

#include <string>
#include <vector>

namespace convcore {

// Threads used by every call. The start value is CONVCORE_NUM_THREADS if set, else the
// number of CPUs in the process's affinity mask. n must be >= 1 (value_error otherwise).
void set_num_threads(int n);
int get_num_threads();

// Instruction sets. `isa()` is the one in use: the widest the CPU supports, or the one
// forced by CONVCORE_ISA (an unknown or unsupported name is a value_error at first use).
std::string isa();
void set_isa(const std::string& name);       // value_error if not compiled or not supported
std::vector<std::string> isas_compiled();    // widest first, "scalar" last
std::vector<std::string> isas_supported();   // compiled and runnable on this CPU

struct KernelInfo {
  std::string table;   // ISA table holding the kernel ("avx2", "scalar")
  std::string op;      // slot, e.g. "gemm_f32"
  std::string name;    // kernel, e.g. "gemm_6x16_avx2"
  std::string isa;     // ISA the kernel's code needs
  int mr = 0, nr = 0;  // register tile, 0 when not tiled
};
std::vector<KernelInfo> kernel_list();  // every slot of every compiled table

std::string version();
std::string compiler();   // e.g. "GNU 12.2.0"
std::string cxx_flags();  // flags of the baseline and per-ISA files

// The float32 FMA peak in GFLOP/s of `threads` threads (1 to get_num_threads()) running
// the active ISA's peak_fma_f32 probe at once: the best of repeated runs over about
// `seconds` (0 < seconds <= 60). value_error otherwise.
double measure_peak_gflops(int threads, double seconds);

}  // namespace convcore
