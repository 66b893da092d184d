// algorithm.hpp — the convolution algorithms, plugged in through one registry.
//
// An algorithm (direct.cpp, im2col.cpp, winograd.cpp; an FFT later) is one file that defines a
// `const ConvAlgorithm <name>_algorithm` and one line in CONVCORE_CONV_ALGORITHMS
// (algorithm.cpp). Nothing outside its file knows its packing, its blocking or when it is
// preferred: the front (conv2d.cpp) validates the problem, materialises padding modes other
// than zeros, asks the registry for a plan and runs it.
//
//   plan = make_plan(problem, pass, kernels, weight, bias, one_shot)   // create: pack once
//   plan->run(tensors)                                                  // run: any number
//
// A plan keeps the kernel table it was made with (a KernelTable<T>&, never the active one),
// so switching ISA (set_isa, CONVCORE_ISA) never affects a live plan, and it owns what it
// packed (weights, bias copy). Conv2dOp holds a plan; the one-call conv2d() is "plan, run"
// with one_shot set, which lets an algorithm read the caller's weights in place (im2col
// packs them block by block inside its GEMM).
//
// Passes. Forward is implemented by direct and im2col. A backward pass plugs in the same
// way: an algorithm's `supports` says yes for Pass::backward_data / backward_weights, its
// `plan` returns a plan whose run reads and writes the tensors listed at ConvTensors (the
// training issue adds them, e.g. a `conv_backward.cpp` entry, or new passes in an existing
// algorithm's file). `auto` picks among the entries that support the pass.
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "convcore/conv2d.hpp"
#include "kernels/table.hpp"
#include "workspace.hpp"

namespace convcore::detail {

enum class Pass : int { forward = 0, backward_data, backward_weights };
const char* pass_name(Pass pass);  // "forward", "backward_data", "backward_weights"

enum class DType : int { f32 = 0, f64 };
template <class T>
constexpr DType dtype_of() {
  return sizeof(T) == sizeof(float) ? DType::f32 : DType::f64;
}

// The tensors of one run (C-contiguous NCHW, like the public API); which ones a plan reads
// and writes depends on its pass (weight and bias were given to the plan):
//   forward           x (N, C, H, W)                     -> y (N, K, Ho, Wo)
//   backward_data     dy (N, K, Ho, Wo)                  -> dx (N, C, H, W)
//   backward_weights  dy (N, K, Ho, Wo), x (N, C, H, W)  -> dw (K, C/groups, R, S),
//                                                           db (K) or null (not wanted)
// Outputs are overwritten, never accumulated into. N is this run's batch (the plan's
// problem.N is a hint); the caller has checked the sizes with it and that N > 0 and the
// pointers the pass uses are not null. Padding is zeros: the front has padded the input.
template <class T>
struct ConvTensors {
  int64_t N = 0;
  const T* x = nullptr;
  T* y = nullptr;
  const T* dy = nullptr;
  T* dx = nullptr;
  T* dw = nullptr;
  T* db = nullptr;
};

// What an algorithm's plan() gets.
template <class T>
struct PlanRequest {
  const Conv2dParams& problem;             // validated; padding_mode zeros; N a hint
  Pass pass;
  const kernels::KernelTable<T>& kernels;  // the plan runs these kernels, whatever the ISA later
  // Weight (K, C/groups, R, S) for forward and backward_data, bias (K) or null for forward.
  // weight == nullptr: a plan made only for workspace_bytes (run is never called).
  const T* weight;
  const T* bias;
  // true: the plan lives for one call, during which weight and bias stay valid and
  // unchanged, so it may read them in place. false: it copies or packs what it needs
  // (the caller's arrays may change as soon as plan() returns).
  bool one_shot;
};

template <class T>
class ConvPlan {
 public:
  virtual ~ConvPlan() = default;
  // Computes the pass (threaded on the pool, each output in a fixed order: the same bits
  // for any thread count). Const and safe to call from many threads at once.
  virtual void run(const ConvTensors<T>& t) const = 0;
  // Scratch bytes run takes with batch N on `threads` threads (its per-thread buffers).
  virtual int64_t workspace_bytes(int64_t N, int threads) const = 0;
};

// A plan's bias: the caller's array (one_shot) or the plan's own copy of it; null: none.
template <class T>
class PlanBias {
 public:
  PlanBias(const T* bias, int64_t K, bool one_shot) : ptr_(bias) {
    if (bias == nullptr || one_shot) return;
    copy_ = Buffer<T>(K);
    std::copy(bias, bias + K, copy_.get());
    ptr_ = copy_.get();
  }
  const T* get() const { return ptr_; }

 private:
  Buffer<T> copy_;
  const T* ptr_;
};

// One registry entry. All functions see a validated problem with zero padding.
struct ConvAlgorithm {
  const char* name;  // as algorithm= spells it: "direct", "im2col"
  Algorithm id;      // the public enum value (conv2d.hpp)
  bool (*supports)(const Conv2dParams& p, Pass pass, DType dtype);
  // `auto`'s preference among the supporting entries: the lowest rank wins, ties to the
  // earlier entry. Each entry states the part of the measured rule (README.md "How auto
  // chooses") that concerns it: kAutoPreferred where it is the measured choice, kAutoDefault
  // for the general fallback, kAutoNever where it must not be picked automatically.
  int (*auto_rank)(const Conv2dParams& p, Pass pass, DType dtype);
  std::unique_ptr<ConvPlan<float>> (*plan_f32)(const PlanRequest<float>& r);
  std::unique_ptr<ConvPlan<double>> (*plan_f64)(const PlanRequest<double>& r);
  // Optional: why `supports` says no (the constraint, for the error message when the
  // algorithm is asked for by name); "" when it says yes. Null: a generic message.
  std::string (*unsupported)(const Conv2dParams& p, Pass pass, DType dtype) = nullptr;
};
constexpr int kAutoPreferred = 0, kAutoDefault = 1, kAutoNever = 1000;

// The registry, in CONVCORE_CONV_ALGORITHMS order.
const std::vector<const ConvAlgorithm*>& conv_algorithms();
// The entry named by id (automatic: value_error), or by name (value_error listing them).
const ConvAlgorithm& conv_algorithm(Algorithm id);
const ConvAlgorithm& conv_algorithm(const char* name);
// The entry p.algorithm names (value_error when it does not support p, pass and dtype), or
// for `automatic` the supporting entry of lowest auto_rank.
const ConvAlgorithm& select_algorithm(const Conv2dParams& p, Pass pass, DType dtype);

// select_algorithm, then that entry's plan (the arguments as PlanRequest).
template <class T>
std::unique_ptr<ConvPlan<T>> make_plan(const Conv2dParams& p, Pass pass,
                                       const kernels::KernelTable<T>& kernels, const T* weight,
                                       const T* bias, bool one_shot,
                                       const ConvAlgorithm** chosen = nullptr);

}  // namespace convcore::detail
