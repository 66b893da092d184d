// test_conv2d.cpp — convcore::conv2d against the float64 definition (reference.hpp):
// every padding mode, stride, dilation, groups (depthwise too), bias and activation, on
// channel and width counts around the SIMD tiles (1, 7, 8, 9, 15, 16, 17, 31, 33); every
// supported ISA x algorithm x dtype; 1 and 2 threads give bitwise-equal results.
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
using convcore::Algorithm;
using convcore::Conv2dParams;
using convcore::PaddingMode;

namespace {

struct Case {
  int64_t N, C, H, W, K, R, S;
  int64_t sh, sw, pt, pb, pl, pr, dh, dw, groups;
  PaddingMode mode;
  Activation act;
  bool bias;
};

Conv2dParams params_of(const Case& c) {
  Conv2dParams p;
  p.N = c.N, p.C = c.C, p.H = c.H, p.W = c.W, p.K = c.K, p.R = c.R, p.S = c.S;
  p.stride_h = c.sh, p.stride_w = c.sw;
  p.pad_top = c.pt, p.pad_bottom = c.pb, p.pad_left = c.pl, p.pad_right = c.pr;
  p.dilation_h = c.dh, p.dilation_w = c.dw, p.groups = c.groups;
  p.padding_mode = c.mode;
  p.activation = c.act;
  return p;
}

std::string describe(const Conv2dParams& p, const char* isa, Algorithm a, const char* dtype) {
  char buf[400];
  std::snprintf(buf, sizeof buf,
                "isa=%s algorithm=%s %s N=%lld C=%lld H=%lld W=%lld K=%lld R=%lld S=%lld "
                "stride=(%lld,%lld) pad=(%lld,%lld,%lld,%lld) dilation=(%lld,%lld) groups=%lld "
                "mode=%d act=%s",
                isa, convcore::algorithm_name(a), dtype, (long long)p.N, (long long)p.C,
                (long long)p.H, (long long)p.W, (long long)p.K, (long long)p.R, (long long)p.S,
                (long long)p.stride_h, (long long)p.stride_w, (long long)p.pad_top,
                (long long)p.pad_bottom, (long long)p.pad_left, (long long)p.pad_right,
                (long long)p.dilation_h, (long long)p.dilation_w, (long long)p.groups,
                int(p.padding_mode), convcore::activation_name(p.activation.kind));
  return buf;
}

const PaddingMode Z = PaddingMode::zeros;
const Activation none{};
const Activation relu{Activation::relu};

// N, C, H, W, K, R, S, stride, pad (top, bottom, left, right), dilation, groups, mode, act, bias
const Case kCases[] = {
    {1, 1, 5, 5, 1, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, Z, none, false},
    {2, 3, 9, 17, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, Z, relu, true},
    {1, 7, 8, 33, 9, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1, Z, none, true},
    {1, 16, 7, 15, 17, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1, Z, relu, true},
    {2, 4, 11, 9, 6, 3, 2, 1, 1, 1, 0, 2, 1, 2, 1, 2, Z, Activation::LeakyReLU(0.1), true},
    {1, 8, 16, 31, 8, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 8, Z, Activation::Sigmoid(0.5, 0.1), true},
    {1, 2, 6, 7, 3, 3, 3, 1, 1, 2, 1, 2, 2, 1, 1, 1, PaddingMode::reflect, none, true},
    {1, 1, 5, 9, 2, 5, 5, 1, 2, 2, 2, 2, 2, 1, 1, 1, PaddingMode::replicate,
     Activation{Activation::tanh}, false},
    {2, 3, 4, 5, 4, 3, 3, 1, 1, 4, 1, 5, 2, 1, 1, 1, PaddingMode::circular,
     Activation{Activation::square}, true},
    {1, 2, 3, 3, 5, 3, 3, 1, 1, 0, 0, 0, 0, 1, 1, 1, Z, Activation{Activation::abs}, true},
    {1, 15, 6, 6, 31, 2, 3, 3, 3, 0, 0, 0, 0, 1, 1, 1, Z, none, true},
    {3, 9, 1, 40, 16, 1, 7, 1, 1, 0, 0, 3, 3, 1, 1, 1, Z, relu, true},
    {1, 33, 4, 4, 7, 2, 2, 1, 1, 0, 1, 0, 1, 1, 2, 1, Z, none, false},
    // Large enough for several GEMM panels and thread tasks.
    {2, 40, 19, 21, 70, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1, Z, relu, true},
};

template <class T>
void run_case(const Case& c, std::mt19937& rng, const char* dtype) {
  Conv2dParams p = params_of(c);
  p.validate();
  const auto x = ref::random_vector<T>(p.N * p.C * p.H * p.W, rng);
  const auto w = ref::random_vector<T>(p.K * (p.C / p.groups) * p.R * p.S, rng);
  const auto b = ref::random_vector<T>(p.K, rng);
  const T* bias = c.bias ? b.data() : nullptr;
  const ref::Result r = ref::conv2d(p, x, w, bias);
  const int64_t terms = (p.C / p.groups) * p.R * p.S;
  const size_t ny = r.out.size();

  for (const std::string& isa : convcore::isas_supported()) {
    convcore::set_isa(isa);
    for (Algorithm a : {Algorithm::automatic, Algorithm::direct, Algorithm::im2col}) {
      p.algorithm = a;
      check::context() = describe(p, isa.c_str(), a, dtype);
      std::vector<T> y1(ny, std::numeric_limits<T>::quiet_NaN()), y2 = y1;
      convcore::set_num_threads(1);
      convcore::conv2d(p, x.data(), w.data(), bias, y1.data());
      convcore::set_num_threads(2);
      convcore::conv2d(p, x.data(), w.data(), bias, y2.data());
      size_t bad = 0;
      for (size_t o = 0; o < ny; ++o)
        if (!ref::close<T>(double(y1[o]), r, o, terms, p.activation)) {
          if (bad++ == 0)
            std::fprintf(stderr, "  first mismatch at %zu: got %.17g, reference %.17g\n", o,
                         double(y1[o]), r.out[o]);
        }
      CHECK(bad == 0);
      CHECK(std::memcmp(y1.data(), y2.data(), ny * sizeof(T)) == 0);
    }
  }
}

// Ho and Wo follow the formula in conv2d.hpp (floor division).
void output_size() {
  Conv2dParams p;
  p.H = 10, p.W = 7, p.R = 3, p.S = 2;
  p.stride_h = 3, p.stride_w = 2, p.pad_top = 1, p.pad_bottom = 2, p.pad_left = 0,
  p.pad_right = 1, p.dilation_h = 2, p.dilation_w = 3;
  p.validate();
  CHECK(p.out_h() == (10 + 1 + 2 - 2 * 2 - 1) / 3 + 1);  // 3
  CHECK(p.out_w() == (7 + 0 + 1 - 3 * 1 - 1) / 2 + 1);   // 3
  CHECK(p.out_h() == 3 && p.out_w() == 3);
}

// N == 0 is valid and leaves y untouched (nullptr arrays are fine then).
void empty_batch() {
  Conv2dParams p;
  p.N = 0, p.C = 2, p.H = 4, p.W = 4, p.K = 3, p.R = 3, p.S = 3;
  const std::vector<float> w(3 * 2 * 3 * 3, 1.0f);
  std::vector<float> y(4, 42.0f);
  CHECK_NOTHROW(convcore::conv2d(p, nullptr, w.data(), nullptr, y.data()));
  CHECK(y[0] == 42.0f && y[3] == 42.0f);
}

// choose_algorithm: an explicit choice is kept; `automatic` resolves to a real one,
// direct for one input channel per group (conv2d.hpp).
void choice() {
  Conv2dParams p;
  p.C = 8, p.K = 8, p.groups = 8;
  CHECK(convcore::choose_algorithm(p) == Algorithm::direct);
  p.groups = 1;
  CHECK(convcore::choose_algorithm(p) != Algorithm::automatic);
  p.algorithm = Algorithm::direct;
  CHECK(convcore::choose_algorithm(p) == Algorithm::direct);
  p.algorithm = Algorithm::im2col;
  CHECK(convcore::choose_algorithm(p) == Algorithm::im2col);
  for (const char* name : {"auto", "direct", "im2col"})
    CHECK(std::string(convcore::algorithm_name(convcore::algorithm_from_name(name))) == name);
  CHECK(convcore::padding_mode_from_name("zeros") == PaddingMode::zeros);
  CHECK(convcore::padding_mode_from_name("reflect") == PaddingMode::reflect);
  CHECK(convcore::padding_mode_from_name("replicate") == PaddingMode::replicate);
  CHECK(convcore::padding_mode_from_name("circular") == PaddingMode::circular);
}

}  // namespace

int main() {
  std::mt19937 rng(20261125);
  for (const Case& c : kCases) {
    run_case<float>(c, rng, "float32");
    run_case<double>(c, rng, "float64");
  }
  check::context().clear();
  output_size();
  empty_batch();
  choice();
  return check::finish("test_conv2d");
}
