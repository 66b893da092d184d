// test_linear.cpp — convcore::LinearOp and convcore::linear: y = act(x W^T + b) against the
// float64 reference (a linear layer is a 1x1 convolution of 1x1 images: N = M, C = in,
// K = out), sizes around the GEMM tile and the KC block, every ISA; the weights are
// copied at construction; LinearOp and the one call give the same bits; run() from two
// threads at once equals one at a time; errors.
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <vector>

#include "check.hpp"
#include "convcore/convcore.hpp"
#include "reference.hpp"

using convcore::Activation;
using convcore::LinearOp;

namespace {

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
void linear_runs(std::mt19937& rng) {
  const int64_t sizes[][3] = {{1, 1, 1}, {5, 7, 17}, {6, 16, 8}, {7, 17, 9}, {13, 300, 33}};
  for (const std::string& isa : convcore::isas_supported()) {
    convcore::set_isa(isa);
    for (const auto& s : sizes) {
      const int64_t M = s[0], in = s[1], out = s[2];
      check::context() = "isa=" + isa + " M=" + std::to_string(M) + " in=" +
                         std::to_string(in) + " out=" + std::to_string(out);
      convcore::Conv2dParams p;  // the same computation as a 1x1 convolution
      p.N = M, p.C = in, p.K = out;
      p.activation = Activation::LeakyReLU(0.1);
      auto x = ref::random_vector<T>(M * in, rng);
      auto w = ref::random_vector<T>(out * in, rng);
      auto b = ref::random_vector<T>(out, rng);
      const ref::Result r = ref::conv2d(p, x, w, b.data());

      const LinearOp<T> op(in, out, w.data(), b.data(), p.activation);
      CHECK(op.in_features() == in && op.out_features() == out);
      const auto w0 = w;
      for (auto& e : w) e = T(100);  // the operator keeps its own copy

      std::vector<T> y(M * out, std::numeric_limits<T>::quiet_NaN());
      op.run(M, x.data(), y.data());
      size_t bad = 0;
      for (size_t o = 0; o < y.size(); ++o)
        bad += !ref::close<T>(double(y[o]), r, o, in, p.activation);
      CHECK(bad == 0);

      std::vector<T> yc(M * out);
      convcore::linear(M, in, out, x.data(), w0.data(), b.data(), yc.data(), p.activation);
      CHECK(same_bits(yc, y));

      std::vector<T> ya(M * out), yb(M * out);
      std::thread t1([&] { op.run(M, x.data(), ya.data()); });
      std::thread t2([&] { op.run(M, x.data(), yb.data()); });
      t1.join();
      t2.join();
      CHECK(same_bits(ya, y) && same_bits(yb, y));
    }
  }
}

void errors() {
  check::context() = "errors";
  const float w[6] = {1, 2, 3, 4, 5, 6}, x[3] = {1, 1, 1};
  float y[2] = {0, 0};
  CHECK_THROWS(LinearOp<float>(-1, 2, w, nullptr), convcore::value_error);
  CHECK_THROWS(LinearOp<float>(3, 2, nullptr, nullptr), convcore::value_error);
  const LinearOp<float> op(3, 2, w, nullptr);
  CHECK_THROWS(op.run(-1, x, y), convcore::value_error);
  CHECK_THROWS(op.run(1, nullptr, y), convcore::value_error);
  CHECK_NOTHROW(op.run(0, nullptr, nullptr));
  op.run(1, x, y);
  CHECK(y[0] == 6 && y[1] == 15);
  // in == 0: an empty sum, y = act(bias).
  const float bias[2] = {-1, 2};
  convcore::linear(1, 0, 2, x, w, bias, y, Activation{Activation::relu});
  CHECK(y[0] == 0 && y[1] == 2);
}

}  // namespace

int main() {
  std::mt19937 rng(7);
  linear_runs<float>(rng);
  linear_runs<double>(rng);
  errors();
  return check::finish("test_linear");
}
