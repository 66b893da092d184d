// main.cpp — convcore from C++, no Python: edge detection and one conv layer.
//
//   convcore_example [input.pgm [output.pgm]]
//
// 1. Reads an 8-bit PGM (P5 or P2; without an argument it draws a test image), applies
//    the Sobel x kernel with convcore::conv2d and a ReLU with convcore::activate — a
//    linear filter plus a point-wise non-linearity is a feature detector: it keeps the
//    dark-to-bright edges seen left to right — and writes the result as a PGM
//    (default edges.pgm). The same layer with the ReLU fused into conv2d gives the same
//    bits.
// 2. Runs one small conv layer (3 -> 8 channels, 3x3, stride 2, padding 1, bias, ReLU)
//    through a convcore::Conv2dOp (weights packed once, two batches run) and checks it
//    against a naive loop in double. Exit status 0 when everything agrees.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include <convcore/convcore.hpp>

namespace {

struct Image {
  int64_t h = 0, w = 0;
  std::vector<float> pixels;  // row-major, 0..255
};

// Next header token of a PGM, skipping whitespace and # comments.
int64_t pgm_number(std::istream& in) {
  in >> std::ws;
  while (in.peek() == '#') {
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
    in >> std::ws;
  }
  int64_t v = -1;
  if (!(in >> v) || v < 0) throw std::runtime_error("bad PGM header");
  return v;
}

Image read_pgm(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::string magic;
  in >> magic;
  if (magic != "P5" && magic != "P2") throw std::runtime_error(path + ": not a P5/P2 PGM");
  Image im;
  im.w = pgm_number(in);
  im.h = pgm_number(in);
  const int64_t maxval = pgm_number(in);
  if (im.w < 1 || im.h < 1 || im.w > 1 << 15 || im.h > 1 << 15 || maxval < 1 || maxval > 255)
    throw std::runtime_error(path + ": only 8-bit PGMs up to 32768 x 32768 are read");
  im.pixels.resize(static_cast<size_t>(im.h * im.w));
  if (magic == "P5") {
    in.get();  // the single whitespace after maxval
    std::vector<unsigned char> raw(im.pixels.size());
    if (!in.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(raw.size())))
      throw std::runtime_error(path + ": truncated");
    for (size_t i = 0; i < raw.size(); ++i) im.pixels[i] = raw[i] * 255.0f / maxval;
  } else {
    for (auto& p : im.pixels) p = pgm_number(in) * 255.0f / maxval;
  }
  return im;
}

// Writes the plane scaled so that its maximum is white.
void write_pgm(const std::string& path, const float* v, int64_t h, int64_t w) {
  const float top = std::max(*std::max_element(v, v + h * w), 1e-12f);
  std::ofstream out(path, std::ios::binary);
  out << "P5\n" << w << " " << h << "\n255\n";
  for (int64_t i = 0; i < h * w; ++i)
    out.put(static_cast<char>(std::lround(std::clamp(v[i] / top, 0.0f, 1.0f) * 255)));
  if (!out) throw std::runtime_error("cannot write " + path);
}

// A test image: a bright disc and a bright square on a dark background.
Image make_image() {
  Image im;
  im.h = 96, im.w = 128;
  im.pixels.resize(static_cast<size_t>(im.h * im.w));
  for (int64_t i = 0; i < im.h; ++i)
    for (int64_t j = 0; j < im.w; ++j) {
      const bool disc = (i - 48) * (i - 48) + (j - 40) * (j - 40) < 26 * 26;
      const bool square = i >= 28 && i < 68 && j >= 80 && j < 116;
      im.pixels[i * im.w + j] = disc || square ? 200.0f : 30.0f;
    }
  return im;
}

bool sobel(const Image& im, const std::string& out_path) {
  // Sobel x: responds to intensity rising from left to right.
  const float kernel[9] = {-1, 0, 1, -2, 0, 2, -1, 0, 1};
  convcore::Conv2dParams p;
  p.N = 1, p.C = 1, p.H = im.h, p.W = im.w;  // one grey image (1, 1, H, W)
  p.K = 1, p.R = 3, p.S = 3;                  // one 3x3 filter (1, 1, 3, 3)
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;  // output H x W
  p.padding_mode = convcore::PaddingMode::replicate;  // no false edges at the border
  std::vector<float> edges(static_cast<size_t>(p.out_h() * p.out_w()));
  convcore::conv2d(p, im.pixels.data(), kernel, nullptr, edges.data());
  convcore::activate(convcore::Activation{convcore::Activation::relu}, edges.data(),
                     edges.data(), static_cast<int64_t>(edges.size()));
  write_pgm(out_path, edges.data(), p.out_h(), p.out_w());

  // The same with the ReLU applied inside the convolution's store.
  p.activation = convcore::Activation{convcore::Activation::relu};
  std::vector<float> fused(edges.size());
  convcore::conv2d(p, im.pixels.data(), kernel, nullptr, fused.data());
  const bool same = std::memcmp(fused.data(), edges.data(), edges.size() * sizeof(float)) == 0;
  const auto lit = std::count_if(edges.begin(), edges.end(), [](float v) { return v > 0; });
  std::cout << "sobel_x + relu: " << im.h << "x" << im.w << " -> " << out_path << " ("
            << lit << " edge pixels); fused relu " << (same ? "identical" : "DIFFERENT")
            << "\n";
  return same;
}

// y = relu(conv2d(x, w) + b) by the definition, in double; also sum |x*w| + |b| per
// output, the scale of the rounding error.
void naive_layer(const convcore::Conv2dParams& p, const std::vector<float>& x,
                 const std::vector<float>& w, const std::vector<float>& b,
                 std::vector<double>& y, std::vector<double>& mag) {
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  for (int64_t n = 0; n < p.N; ++n)
    for (int64_t k = 0; k < p.K; ++k)
      for (int64_t i = 0; i < Ho; ++i)
        for (int64_t j = 0; j < Wo; ++j) {
          double s = b[k], m = std::fabs(b[k]);
          for (int64_t c = 0; c < p.C; ++c)
            for (int64_t r = 0; r < p.R; ++r)
              for (int64_t q = 0; q < p.S; ++q) {
                const int64_t yy = i * p.stride_h + r - p.pad_top;
                const int64_t xx = j * p.stride_w + q - p.pad_left;
                if (yy < 0 || yy >= p.H || xx < 0 || xx >= p.W) continue;
                const double t = double(x[((n * p.C + c) * p.H + yy) * p.W + xx]) *
                                 w[((k * p.C + c) * p.R + r) * p.S + q];
                s += t;
                m += std::fabs(t);
              }
          const size_t o = static_cast<size_t>(((n * p.K + k) * Ho + i) * Wo + j);
          y[o] = std::max(s, 0.0);
          mag[o] = m;
        }
}

bool conv_layer() {
  convcore::Conv2dParams p;
  p.C = 3, p.H = 20, p.W = 23;  // input (N, 3, 20, 23)
  p.K = 8, p.R = 3, p.S = 3;    // weight (8, 3, 3, 3), bias (8)
  p.stride_h = p.stride_w = 2;
  p.pad_top = p.pad_bottom = p.pad_left = p.pad_right = 1;
  p.activation = convcore::Activation{convcore::Activation::relu};

  std::mt19937 rng(42);
  std::uniform_real_distribution<float> uni(-1.0f, 1.0f);
  std::vector<float> w(8 * 3 * 3 * 3), b(8);
  for (auto& v : w) v = uni(rng);
  for (auto& v : b) v = uni(rng);
  const convcore::Conv2dOp<float> layer(p, w.data(), b.data());  // packs the weights once

  bool ok = true;
  for (int64_t N : {1, 4}) {
    p.N = N;
    std::vector<float> x(static_cast<size_t>(N * p.C * p.H * p.W));
    for (auto& v : x) v = uni(rng);
    const size_t ny = static_cast<size_t>(N * p.K * p.out_h() * p.out_w());
    std::vector<float> y(ny);
    layer.run(N, x.data(), y.data());

    std::vector<double> ref(ny), mag(ny);
    naive_layer(p, x, w, b, ref, mag);
    // float32 sums of n = C*R*S + 1 terms: |error| <= n * eps * sum|x*w| (a bound).
    const double n = double(p.C * p.R * p.S + 1);
    double worst = 0;  // largest error as a fraction of that bound
    for (size_t o = 0; o < ny; ++o)
      worst = std::max(worst, std::fabs(y[o] - ref[o]) /
                                  (n * std::numeric_limits<float>::epsilon() * mag[o] + 1e-30));
    std::cout << "conv layer (" << N << ", 3, 20, 23) -> (" << N << ", 8, " << p.out_h() << ", "
              << p.out_w() << ") with " << convcore::algorithm_name(layer.algorithm())
              << ": error " << worst << " of the bound\n";
    ok = ok && worst <= 1.0;
  }
  return ok;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    std::cout << "convcore " << convcore::version() << ", isa " << convcore::isa() << ", "
              << convcore::get_num_threads() << " threads\n";
    const Image im = argc > 1 ? read_pgm(argv[1]) : make_image();
    const bool ok = sobel(im, argc > 2 ? argv[2] : "edges.pgm") && conv_layer();
    std::cout << (ok ? "OK\n" : "FAILED\n");
    return ok ? 0 : 1;
  } catch (const convcore::value_error& e) {  // bad sizes or parameters
    std::cerr << "convcore: " << e.what() << "\n";
  } catch (const std::exception& e) {  // files, memory
    std::cerr << "error: " << e.what() << "\n";
  }
  return 1;
}
