// algorithm.cpp — the registry of convolution algorithms (algorithm.hpp): the one list,
// lookup by id and name, and `auto`'s choice among the entries that support a problem.
#include "ops/algorithm.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "ops/crop.hpp"

namespace convcore::detail {

// The algorithms, in order (auto's ties go to the earlier). Adding one: its file defines
// `const ConvAlgorithm <name>_algorithm`, and its name goes here.
#define CONVCORE_CONV_ALGORITHMS(X) X(direct) X(im2col) X(winograd)

#define CONVCORE_DECLARE_ALGORITHM(name) extern const ConvAlgorithm name##_algorithm;
CONVCORE_CONV_ALGORITHMS(CONVCORE_DECLARE_ALGORITHM)
#undef CONVCORE_DECLARE_ALGORITHM

const std::vector<const ConvAlgorithm*>& conv_algorithms() {
#define CONVCORE_LIST_ALGORITHM(name) &name##_algorithm,
  static const std::vector<const ConvAlgorithm*> list = {
      CONVCORE_CONV_ALGORITHMS(CONVCORE_LIST_ALGORITHM)};
#undef CONVCORE_LIST_ALGORITHM
  return list;
}

const char* pass_name(Pass pass) {
  switch (pass) {
    case Pass::forward: return "forward";
    case Pass::backward_data: return "backward_data";
    case Pass::backward_weights: return "backward_weights";
  }
  return "?";
}

namespace {
std::string known_names() {
  std::string s = "'auto'";
  for (const ConvAlgorithm* a : conv_algorithms()) s += std::string(", '") + a->name + "'";
  return s;
}
}  // namespace

const ConvAlgorithm& conv_algorithm(Algorithm id) {
  for (const ConvAlgorithm* a : conv_algorithms())
    if (a->id == id) return *a;
  throw value_error("algorithm must be one of " + known_names() + ", got value " +
                    std::to_string(static_cast<int>(id)));
}

const ConvAlgorithm& conv_algorithm(const char* name) {
  for (const ConvAlgorithm* a : conv_algorithms())
    if (std::string(name) == a->name) return *a;
  throw value_error("algorithm must be one of " + known_names() + ", got '" + name + "'");
}

const ConvAlgorithm& select_algorithm(const Conv2dParams& p, Pass pass, DType dtype) {
  if (p.algorithm != Algorithm::automatic) {
    const ConvAlgorithm& a = conv_algorithm(p.algorithm);
    if (!a.supports(p, pass, dtype) && a.unsupported != nullptr)
      throw value_error("conv2d: " + a.unsupported(p, pass, dtype));
    if (!a.supports(p, pass, dtype))
      throw value_error(std::string("conv2d: algorithm '") + a.name + "' does not support the " +
                        pass_name(pass) + " pass of this problem");
    return a;
  }
  const ConvAlgorithm* best = nullptr;
  int best_rank = 0;
  for (const ConvAlgorithm* a : conv_algorithms()) {
    if (!a->supports(p, pass, dtype)) continue;
    const int rank = a->auto_rank(p, pass, dtype);
    if (rank < kAutoNever && (best == nullptr || rank < best_rank)) best = a, best_rank = rank;
  }
  if (best == nullptr)
    throw value_error(std::string("conv2d: no algorithm supports the ") + pass_name(pass) +
                      " pass of this problem");
  return *best;
}

template <class T>
std::unique_ptr<ConvPlan<T>> make_plan(const Conv2dParams& p, Pass pass,
                                       const kernels::KernelTable<T>& kernels, const T* weight,
                                       const T* bias, bool one_shot, const ConvAlgorithm** chosen) {
  // Padding wider than the kernel reaches: plan the inner problem, fill the border (crop.cpp).
  if (pass == Pass::forward && weight != nullptr) {
    Conv2dParams inner;
    const ZeroBorder border = zero_border(p, &inner);
    const int64_t n = p.K * (p.C / p.groups) * p.R * p.S;
    if (!border.empty() && std::all_of(weight, weight + n, [](T v) { return std::isfinite(v); }))
      return cropped_plan<T>(p, border, kernels, bias,
                             make_plan<T>(inner, pass, kernels, weight, bias, one_shot, chosen));
  }
  const ConvAlgorithm& a = select_algorithm(p, pass, dtype_of<T>());
  if (chosen != nullptr) *chosen = &a;
  const PlanRequest<T> r{p, pass, kernels, weight, bias, one_shot};
  if constexpr (sizeof(T) == sizeof(float))
    return a.plan_f32(r);
  else
    return a.plan_f64(r);
}

template std::unique_ptr<ConvPlan<float>> make_plan(const Conv2dParams&, Pass,
                                                    const kernels::KernelTable<float>&,
                                                    const float*, const float*, bool,
                                                    const ConvAlgorithm**);
template std::unique_ptr<ConvPlan<double>> make_plan(const Conv2dParams&, Pass,
                                                     const kernels::KernelTable<double>&,
                                                     const double*, const double*, bool,
                                                     const ConvAlgorithm**);

}  // namespace convcore::detail

namespace convcore {

Algorithm algorithm_from_name(const char* name) {
  if (std::string(name) == "auto") return Algorithm::automatic;
  return detail::conv_algorithm(name).id;
}

std::vector<const char*> algorithm_names() {
  std::vector<const char*> out;
  for (const detail::ConvAlgorithm* a : detail::conv_algorithms()) out.push_back(a->name);
  return out;
}

const char* algorithm_name(Algorithm a) {
  return a == Algorithm::automatic ? "auto" : detail::conv_algorithm(a).name;
}

Algorithm choose_algorithm(const Conv2dParams& p, int dtype_bytes) {
  if (dtype_bytes != 4 && dtype_bytes != 8)
    throw value_error("choose_algorithm: dtype_bytes must be 4 or 8, got " +
                      std::to_string(dtype_bytes));
  const auto dtype = dtype_bytes == 4 ? detail::DType::f32 : detail::DType::f64;
  return detail::select_algorithm(p, detail::Pass::forward, dtype).id;
}

}  // namespace convcore
