// convcore/runtime.hpp — threads, instruction sets, build information.
// Settings here are process-wide: they apply to every later convcore call from any
// thread. Change them while no convcore call is running.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace convcore {

// Threads used by every call (a persistent pool of std::threads, started on first use
// and grown when n exceeds it; a smaller n leaves the extra workers parked, so switching
// back and forth starts no threads; rebuilt in a forked child). The start value is
// CONVCORE_NUM_THREADS if set, else the number of CPUs in the process's affinity mask.
// n must be from 1 to 1024: value_error otherwise (so is a bad CONVCORE_NUM_THREADS, at
// first use). Results are the same bits for any thread count.
void set_num_threads(int n);
int get_num_threads();

// A cap on the threads used by the calls made from the calling thread (thread-local, so
// the one exception to the process-wide rule above): they use min(n, get_num_threads())
// threads, n == 1 meaning the calling thread alone; 0 removes the cap. A scheduler that
// already runs tasks on several threads (Dask) sets 1 on each of its threads, so tasks do
// not oversubscribe the cores. n from 0 to 1024, value_error otherwise. Results are the
// same bits for any cap.
void set_thread_limit(int n);
int get_thread_limit();

// Interruption. When a handler is set, every call polls it from the calling thread between
// pieces of its work, about every 20 ms; when it returns true the call stops early and
// throws convcore::interrupted (its output is then unspecified). The Python module sets
// one that answers Ctrl-C. nullptr removes it.
using InterruptHandler = bool (*)();
void set_interrupt_handler(InterruptHandler handler);

// Instruction sets, by name: "avx512" (AVX-512 F/VL/BW/DQ, x86-64 builds), "avx2" (AVX2 +
// FMA, x86-64 builds), "scalar" (plain C++, always). `isa()` is the one in use: the widest
// the CPU supports, or the one forced by CONVCORE_ISA (an unknown or unsupported name is a
// value_error at first use). set_isa switches every later call to that ISA's kernels, e.g.
// to compare them with their scalar twins; a rejected name changes nothing. Operators
// (Conv2dOp, LinearOp) keep the kernels of the ISA in use when they were built.
std::string isa();
void set_isa(const std::string& name);       // value_error if not compiled or not supported
std::vector<std::string> isas_compiled();    // widest first, "scalar" last
std::vector<std::string> isas_supported();   // compiled and runnable on this CPU

// Whether `automatic` may choose the winograd algorithm (for float32 layers where it was
// measured faster; its rounding error is larger than the other algorithms', whose error
// stays within the classic n*u summation bound). Default: on, unless the environment sets
// CONVCORE_WINOGRAD=0. An explicit Algorithm::winograd runs whatever the switch says;
// operators already built keep the algorithm they chose.
void set_winograd(bool on);
bool get_winograd();

// One slot of one ISA's kernel table (the micro-kernels convcore dispatches to).
struct KernelInfo {
  std::string table;   // ISA table holding the kernel ("avx512", "avx2", "scalar")
  std::string op;      // slot and dtype, e.g. "gemm_f32" (the float table's gemm)
  std::string name;    // kernel, e.g. "gemm_6x16_avx2"
  std::string isa;     // ISA the kernel's code needs
  int mr = 0, nr = 0;  // register tile, 0 when not tiled
};
std::vector<KernelInfo> kernel_list();  // every slot of every compiled table
                                        // (supported by this CPU or not)

// The packed GEMM's cache blocking (conv2d's im2col and linear), whatever the ISA: the
// reduction is cut into equal blocks of at most kc, the A operand into blocks of mc rows
// (mc_f32 / mc_f64: 144 KiB of either type), a gathered conv B block holds at most
// b_block_bytes. Tests draw their edge sizes from it.
struct GemmBlocking {
  int64_t kc, mc_f32, mc_f64, b_block_bytes;
};
GemmBlocking gemm_blocking();

std::string version();    // the package version, e.g. "0.1.0"
std::string compiler();   // e.g. "GNU 12.2.0"
std::string cxx_flags();  // flags of the baseline and per-ISA files

// The float32 FMA peak in GFLOP/s of `threads` threads (1 to get_num_threads()) running
// an ISA's peak_fma_f32 probe at once: the best of repeated runs over about `seconds`
// (0 < seconds <= 60). `isa` names the probe's table ("avx512": zmm FMAs, "avx2": ymm,
// "scalar"); empty: the ISA in use. value_error otherwise, or for an ISA this build or
// CPU lacks. The "avx512" and "avx2" figures tell the machine kinds apart: about equal
// where 512-bit FMAs run as two 256-bit halves (Zen 4), about 2x on full-width cores.
double measure_peak_gflops(int threads, double seconds, const std::string& isa = "");

// The float32 GEMM micro-kernel of an ISA's table (empty: the one in use) alone, on one
// thread, in GFLOP/s: one MC x KC block of packed A panels against one packed KC x NR
// panel of B, as the GEMM driver runs it; the best of repeated runs over about `seconds`.
// Divided by measure_peak_gflops(1, ..., isa) it is the kernel's fraction of the peak.
double measure_gemm_kernel_gflops(double seconds, const std::string& isa = "");

}  // namespace convcore
