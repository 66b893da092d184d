// test_conv2d_op.cpp — convcore::Conv2dOp: pack once, run many batches; the weights and
// bias are copied at construction; move; params()/algorithm(); run() from two threads
// at once gives the same bits as one at a time; equals the one-call conv2d.
#include <cstring>
#include <limits>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "check.hpp"
#include "convcore/convcore.hpp"
#include "reference.hpp"

using convcore::Activation;
using convcore::Algorithm;
using convcore::Conv2dOp;
using convcore::Conv2dParams;

namespace {

Conv2dParams layer() {
  Conv2dParams p;
  p.N = 1, p.C = 5, p.H = 9, p.W = 11, p.K = 9, p.R = 3, p.S = 3;
  p.stride_h = 2, p.stride_w = 1, p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  p.activation = Activation{Activation::relu};
  return p;
}

template <class T>
bool same_bits(const std::vector<T>& a, const std::vector<T>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0;
}

template <class T>
void op_runs(std::mt19937& rng) {
  for (const std::string& isa : convcore::isas_supported()) {
    convcore::set_isa(isa);
    for (Algorithm a : {Algorithm::automatic, Algorithm::direct, Algorithm::im2col}) {
      Conv2dParams p = layer();
      p.algorithm = a;
      check::context() = "isa=" + isa + " algorithm=" + convcore::algorithm_name(a);
      auto w = ref::random_vector<T>(p.K * p.C * p.R * p.S, rng);
      auto b = ref::random_vector<T>(p.K, rng);
      const Conv2dOp<T> op(p, w.data(), b.data());
      CHECK(op.algorithm() != Algorithm::automatic);
      CHECK(op.algorithm() == convcore::choose_algorithm(p));
      CHECK(op.params().K == p.K && op.params().stride_h == 2 && op.params().N == 1);

      // Batches of different sizes through the one packed operator.
      const int64_t per_x = p.C * p.H * p.W, per_y = p.K * p.out_h() * p.out_w();
      const auto x = ref::random_vector<T>(3 * per_x, rng);
      Conv2dParams p3 = p;
      p3.N = 3;
      const ref::Result r = ref::conv2d(p3, x, w, b.data());

      // Later changes to the caller's weights and bias do not reach the operator.
      const auto w0 = w, b0 = b;
      for (auto& e : w) e = T(100);
      for (auto& e : b) e = T(-100);

      std::vector<T> y3(3 * per_y, std::numeric_limits<T>::quiet_NaN());
      op.run(3, x.data(), y3.data());
      size_t bad = 0;
      for (size_t o = 0; o < y3.size(); ++o)
        bad += !ref::close<T>(double(y3[o]), r, o, p.C * p.R * p.S, p.activation);
      CHECK(bad == 0);

      // Batch 1 on the second image: the same bits as the second image of batch 3.
      std::vector<T> y1(per_y);
      op.run(1, x.data() + per_x, y1.data());
      CHECK(std::memcmp(y1.data(), y3.data() + per_y, per_y * sizeof(T)) == 0);

      // One-call conv2d with the original weights: the same bits.
      std::vector<T> yc(3 * per_y);
      convcore::conv2d(p3, x.data(), w0.data(), b0.data(), yc.data());
      CHECK(same_bits(yc, y3));

      // Two threads calling run at once on one operator.
      std::vector<T> ya(3 * per_y), yb(3 * per_y);
      std::thread t1([&] { op.run(3, x.data(), ya.data()); });
      std::thread t2([&] { op.run(3, x.data(), yb.data()); });
      t1.join();
      t2.join();
      CHECK(same_bits(ya, y3));
      CHECK(same_bits(yb, y3));

      // Moving keeps the packed weights.
      Conv2dOp<T> moved(p, w0.data(), nullptr);
      Conv2dOp<T> target(std::move(moved));
      Conv2dOp<T> assigned(p, w.data(), nullptr);
      assigned = std::move(target);
      std::vector<T> ym(per_y);
      assigned.run(1, x.data() + per_x, ym.data());
      std::vector<T> yd(per_y);
      Conv2dParams p1 = p;
      convcore::conv2d(p1, x.data() + per_x, w0.data(), nullptr, yd.data());
      CHECK(same_bits(ym, yd));

      // N == 0 runs nothing.
      CHECK_NOTHROW(op.run(0, nullptr, nullptr));
    }
  }
}

// An operator built under one ISA and run under another keeps the kernels it was built
// with (the plan pins its kernel table; its weights stay packed for that tile): no error,
// right, and bitwise the result of running under the ISA it was built under.
void switched_isa(std::mt19937& rng) {
  for (Algorithm a : {Algorithm::im2col, Algorithm::direct}) {
    Conv2dParams p = layer();
    p.algorithm = a;
    const auto w = ref::random_vector<float>(p.K * p.C * p.R * p.S, rng);
    const auto x = ref::random_vector<float>(p.C * p.H * p.W, rng);
    const ref::Result r = ref::conv2d(p, x, w, static_cast<const float*>(nullptr));
    for (const std::string& built : convcore::isas_supported()) {
      convcore::set_isa(built);
      const Conv2dOp<float> op(p, w.data(), nullptr);
      std::vector<float> own(r.out.size());
      op.run(1, x.data(), own.data());
      for (const std::string& used : convcore::isas_supported()) {
        convcore::set_isa(used);
        check::context() = std::string(convcore::algorithm_name(a)) + " built under " + built +
                           ", run under " + used;
        std::vector<float> y(r.out.size());
        CHECK_NOTHROW(op.run(1, x.data(), y.data()));
        CHECK(same_bits(y, own));
        size_t bad = 0;
        for (size_t o = 0; o < y.size(); ++o)
          bad += !ref::close<float>(double(y[o]), r, o, p.C * p.R * p.S, p.activation);
        CHECK(bad == 0);
      }
    }
  }
}

}  // namespace

int main() {
  std::mt19937 rng(8);
  op_runs<float>(rng);
  op_runs<double>(rng);
  switched_isa(rng);
  return check::finish("test_conv2d_op");
}
