// test_activation.cpp — convcore::activate for every kind, float and double, every
// supported ISA, against the float64 definition (reference.hpp, within a few ulp);
// in place equals out of place; n across the parallel chunk size with 1 and 2 threads
// bitwise equal; NaN and infinities as IEEE arithmetic says; activation names.
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "check.hpp"
#include "convcore/convcore.hpp"
#include "reference.hpp"

using convcore::Activation;

namespace {

const Activation kActs[] = {
    Activation{Activation::none}, Activation{Activation::relu}, Activation::Sigmoid(),
    Activation::Sigmoid(0.08, 50), Activation{Activation::tanh}, Activation{Activation::abs},
    Activation{Activation::square}, Activation::LeakyReLU(), Activation::LeakyReLU(0.3)};

template <class T>
void values(std::mt19937& rng) {
  const double u = std::numeric_limits<T>::epsilon() / 2;
  // 70001 > the 65536-element chunk: several tasks, and a ragged last one.
  for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{17}, int64_t{33}, int64_t{70001}}) {
    std::vector<T> x = ref::random_vector<T>(n, rng);
    for (auto& e : x) e *= T(8);  // reach the saturating parts of sigmoid and tanh
    for (const std::string& isa : convcore::isas_supported()) {
      convcore::set_isa(isa);
      for (const Activation& a : kActs) {
        check::context() = "isa=" + isa + " act=" + convcore::activation_name(a.kind) +
                           " n=" + std::to_string(n) + " bytes=" + std::to_string(sizeof(T));
        std::vector<T> y1(n), y2(n), yin = x;
        convcore::set_num_threads(1);
        convcore::activate(a, x.data(), y1.data(), n);
        convcore::set_num_threads(2);
        convcore::activate(a, x.data(), y2.data(), n);
        convcore::activate(a, yin.data(), yin.data(), n);  // in place
        int64_t bad = 0;
        for (int64_t i = 0; i < n; ++i) {
          const double r = ref::act(double(x[i]), a);
          // a few ulp of the result, plus the rounding of alpha*(x-beta) carried through
          // the exponential (|t| u relative)
          const double t = std::fabs(a.alpha * (double(x[i]) - a.beta));
          const double tol = (16 + t) * u * std::fabs(r) + std::numeric_limits<T>::min();
          bad += !(std::fabs(double(y1[i]) - r) <= tol);
        }
        CHECK(bad == 0);
        CHECK(std::memcmp(y1.data(), y2.data(), n * sizeof(T)) == 0);
        CHECK(std::memcmp(y1.data(), yin.data(), n * sizeof(T)) == 0);
      }
    }
  }
}

template <class T>
void special() {
  const T nan = std::numeric_limits<T>::quiet_NaN(), inf = std::numeric_limits<T>::infinity();
  const T x[3] = {nan, inf, -inf};
  for (const std::string& isa : convcore::isas_supported()) {
    convcore::set_isa(isa);
    check::context() = "isa=" + isa + " bytes=" + std::to_string(sizeof(T));
    for (const Activation& a : kActs) {
      T y[3];
      convcore::activate(a, x, y, 3);
      CHECK(std::isnan(y[0]));  // NaN propagates through every activation
    }
    T y[3];
    convcore::activate(Activation{Activation::relu}, x, y, 3);
    CHECK(y[1] == inf && y[2] == 0);
    convcore::activate(Activation::Sigmoid(), x, y, 3);
    CHECK(y[1] == 1 && y[2] == 0);
    convcore::activate(Activation{Activation::tanh}, x, y, 3);
    CHECK(y[1] == 1 && y[2] == -1);
    convcore::activate(Activation{Activation::abs}, x, y, 3);
    CHECK(y[1] == inf && y[2] == inf);
    convcore::activate(Activation{Activation::square}, x, y, 3);
    CHECK(y[1] == inf && y[2] == inf);
    // n == 0 touches nothing, even through null pointers.
    CHECK_NOTHROW(convcore::activate(Activation{Activation::relu}, (const T*)nullptr,
                                     (T*)nullptr, 0));
  }
}

void names() {
  check::context() = "names";
  for (int k = Activation::none; k <= Activation::leaky_relu; ++k) {
    const auto kind = static_cast<Activation::Kind>(k);
    CHECK(convcore::activation_kind(convcore::activation_name(kind)) == kind);
  }
  CHECK(convcore::activation_kind("") == Activation::none);
  CHECK(std::string(convcore::activation_name(Activation::leaky_relu)) == "leaky_relu");
  const Activation s = Activation::Sigmoid(0.08, 50);
  CHECK(s.kind == Activation::sigmoid && s.alpha == 0.08 && s.beta == 50);
  CHECK(Activation::LeakyReLU().alpha == 0.01);
  CHECK(Activation{}.kind == Activation::none);
}

}  // namespace

int main() {
  std::mt19937 rng(3);
  values<float>(rng);
  values<double>(rng);
  special<float>();
  special<double>();
  names();
  return check::finish("test_activation");
}
