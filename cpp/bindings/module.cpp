// module.cpp — the pybind11 module convcore._core: builds the C++ problem types from the
// Python arguments (their validation is the one check, its message the one the user
// sees), checks that arrays match the sizes they are passed with, hands raw pointers to the
// C++ API with the GIL released, maps C++ errors to Python ones. No algorithm logic:
// type and array conversion live in src/convcore/functional.py, the algorithms in cpp/src.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "convcore/convcore.hpp"
#include "arrays.hpp"
#include "output_cache.hpp"

namespace py = pybind11;
using namespace convcore;
using bindings::require;
using bindings::shape_of;

namespace convcore::bindings {
void bind_backward(py::module_& m);  // backward.cpp
}

void bind_threads(py::module_& m);  // threads.cpp

namespace {

using Pair = std::tuple<int64_t, int64_t>;
using Quad = std::tuple<int64_t, int64_t, int64_t, int64_t>;


template <class T>
void conv2d_typed(const Conv2dParams& p, const py::array& x, const py::array& w,
                  const py::object& b, const py::array& y) {
  p.validate();
  require<T>(x, "input", {p.N, p.C, p.H, p.W});
  require<T>(w, "weight", {p.K, p.C / p.groups, p.R, p.S});
  const T* bias = nullptr;
  if (!b.is_none()) {
    py::array ba = b.cast<py::array>();
    require<T>(ba, "bias", {p.K});
    bias = static_cast<const T*>(ba.data());
  }
  require<T>(y, "out", {p.N, p.K, p.out_h(), p.out_w()}, true);
  const T* xp = static_cast<const T*>(x.data());
  const T* wp = static_cast<const T*>(w.data());
  T* yp = static_cast<T*>(const_cast<void*>(y.data()));
  py::gil_scoped_release release;
  conv2d(p, xp, wp, bias, yp);
}

// The geometry of a convolution-shaped call: input (N, C, H, W), weight (K, ., R, S).
template <class G>
G make_geometry(Quad nchw, Quad weight, Pair stride, Quad padding, Pair dilation,
                int64_t groups) {
  G p;
  std::tie(p.N, p.C, p.H, p.W) = nchw;
  p.K = std::get<0>(weight), p.R = std::get<2>(weight), p.S = std::get<3>(weight);
  std::tie(p.stride_h, p.stride_w) = stride;
  std::tie(p.pad_top, p.pad_bottom, p.pad_left, p.pad_right) = padding;
  std::tie(p.dilation_h, p.dilation_w) = dilation;
  p.groups = groups;
  return p;
}

Quad dims4(const py::array& a, const char* name, const char* layout) {
  if (a.ndim() != 4)
    throw value_error(std::string(name) + ": expected 4 dimensions " + layout + ", got " +
                      shape_of(a));
  return {a.shape(0), a.shape(1), a.shape(2), a.shape(3)};
}

Conv2dParams make_params(int64_t N, int64_t C, int64_t H, int64_t W, const py::array& w,
                         Pair stride, Quad padding, Pair dilation, int64_t groups,
                         const std::string& padding_mode, const std::string& activation,
                         double alpha, double beta, const std::string& algorithm) {
  Conv2dParams p = make_geometry<Conv2dParams>({N, C, H, W}, dims4(w, "weight", "(K, C/groups, R, S)"),
                                               stride, padding, dilation, groups);
  p.padding_mode = padding_mode_from_name(padding_mode.c_str());
  p.activation = bindings::make_activation(activation, alpha, beta);
  p.algorithm = algorithm_from_name(algorithm.c_str());
  return p;
}

// conv2d's problem for an input and a weight of these shapes: validated (the one message
// for a bad geometry), the weight's C/groups checked; returns the output shape.
Quad conv2d_output_shape_py(Quad nchw, Quad weight, Pair stride, Quad padding, Pair dilation,
                            int64_t groups, const std::string& padding_mode) {
  Conv2dParams p = make_geometry<Conv2dParams>(nchw, weight, stride, padding, dilation, groups);
  p.padding_mode = padding_mode_from_name(padding_mode.c_str());
  p.validate();
  if (std::get<1>(weight) != p.C / p.groups)
    throw value_error("weight: expected shape (" + std::to_string(p.K) + ", " +
                      std::to_string(p.C / p.groups) + ", " + std::to_string(p.R) + ", " +
                      std::to_string(p.S) + ") = (K, C/groups, R, S) for input (N, C, H, W) = (" +
                      std::to_string(p.N) + ", " + std::to_string(p.C) + ", " +
                      std::to_string(p.H) + ", " + std::to_string(p.W) + ") and groups=" +
                      std::to_string(p.groups) + ", got C/groups = " +
                      std::to_string(std::get<1>(weight)));
  return {p.N, p.K, p.out_h(), p.out_w()};
}

// The checks of a conv layer's constructor: the geometry's rules that do not need the
// input's size (ConvGeometry::validate_parameters) and the padding mode's name.
void conv2d_check_parameters_py(int64_t C, int64_t K, Pair kernel, Pair stride, Quad padding,
                                Pair dilation, int64_t groups, const std::string& padding_mode) {
  Conv2dParams p = make_geometry<Conv2dParams>({1, C, 1, 1}, {K, 0, std::get<0>(kernel),
                                               std::get<1>(kernel)}, stride, padding, dilation,
                                               groups);
  padding_mode_from_name(padding_mode.c_str());
  p.validate_parameters("conv2d");
}

// The locally connected layer's problem for an input of this shape and filters (K, C, R, S):
// validated; returns the output shape (N, K, Ho, Wo).
Quad locally_connected2d_output_shape_py(Quad nchw, Quad kcrs, Pair stride, Quad padding,
                                         Pair dilation) {
  const auto p = make_geometry<LocallyConnected2dParams>(nchw, kcrs, stride, padding, dilation, 1);
  p.validate();
  return {p.N, p.K, p.out_h(), p.out_w()};
}

void conv2d_py(const py::array& x, const py::array& w, const py::object& b, const py::array& y,
               Pair stride, Quad padding, Pair dilation, int64_t groups,
               const std::string& padding_mode, const std::string& activation, double alpha,
               double beta, const std::string& algorithm) {
  const auto [N, C, H, W] = dims4(x, "input", "(N, C, H, W)");
  const Conv2dParams p = make_params(N, C, H, W, w, stride, padding, dilation, groups,
                                     padding_mode, activation, alpha, beta, algorithm);
  if (x.dtype().equal(py::dtype::of<float>()))
    conv2d_typed<float>(p, x, w, b, y);
  else if (x.dtype().equal(py::dtype::of<double>()))
    conv2d_typed<double>(p, x, w, b, y);
  else
    throw type_error("input: expected float32 or float64, got " + std::string(py::str(x.dtype())));
}

// A Conv2dOp of either dtype: weights packed once, run per batch (layers.Conv2d).
class PyConv2dOp {
 public:
  PyConv2dOp(const py::array& w, const py::object& b, std::tuple<int64_t, int64_t, int64_t> chw,
             Pair stride, Quad padding, Pair dilation, int64_t groups,
             const std::string& padding_mode, const std::string& activation, double alpha,
             double beta, const std::string& algorithm)
      : double_(w.dtype().equal(py::dtype::of<double>())) {
    const auto [C, H, W] = chw;
    const Conv2dParams p = make_params(1, C, H, W, w, stride, padding, dilation, groups,
                                       padding_mode, activation, alpha, beta, algorithm);
    p.validate();  // Conv2dOp validates too; here first, so that require() below can trust p
    if (double_)
      make<double>(p, w, b, f64_);
    else if (w.dtype().equal(py::dtype::of<float>()))
      make<float>(p, w, b, f32_);
    else
      throw type_error("weight: expected float32 or float64, got " + std::string(py::str(w.dtype())));
  }

  void run(const py::array& x, const py::array& y) const {
    if (double_)
      run_typed<double>(*f64_, x, y);
    else
      run_typed<float>(*f32_, x, y);
  }

  std::string algorithm() const {
    return algorithm_name(double_ ? f64_->algorithm() : f32_->algorithm());
  }

 private:
  template <class T>
  static void make(const Conv2dParams& p, const py::array& w, const py::object& b,
                   std::unique_ptr<Conv2dOp<T>>& op) {
    require<T>(w, "weight", {p.K, p.C / p.groups, p.R, p.S});
    const T* bias = nullptr;
    py::array ba;
    if (!b.is_none()) {
      ba = b.cast<py::array>();
      require<T>(ba, "bias", {p.K});
      bias = static_cast<const T*>(ba.data());
    }
    op = std::make_unique<Conv2dOp<T>>(p, static_cast<const T*>(w.data()), bias);
  }

  template <class T>
  static void run_typed(const Conv2dOp<T>& op, const py::array& x, const py::array& y) {
    const Conv2dParams& p = op.params();
    if (x.ndim() != 4) throw value_error("input: expected 4 dimensions (N, C, H, W), got " + shape_of(x));
    const int64_t N = x.shape(0);
    require<T>(x, "input", {N, p.C, p.H, p.W});
    require<T>(y, "out", {N, p.K, p.out_h(), p.out_w()}, true);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(const_cast<void*>(y.data()));
    py::gil_scoped_release release;
    op.run(N, xp, yp);
  }

  bool double_;
  std::unique_ptr<Conv2dOp<float>> f32_;
  std::unique_ptr<Conv2dOp<double>> f64_;
};

void activate_py(const py::array& x, const py::array& y, const std::string& activation,
                 double alpha, double beta) {
  const Activation act = bindings::make_activation(activation, alpha, beta);
  std::vector<int64_t> shape(x.shape(), x.shape() + x.ndim());
  auto go = [&](auto tag) {
    using T = decltype(tag);
    require<T>(x, "input", shape);
    require<T>(y, "out", shape, true);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(const_cast<void*>(y.data()));
    const int64_t n = x.size();
    py::gil_scoped_release release;
    activate(act, xp, yp, n);
  };
  if (x.dtype().equal(py::dtype::of<float>()))
    go(float{});
  else if (x.dtype().equal(py::dtype::of<double>()))
    go(double{});
  else
    throw type_error("input: expected float32 or float64, got " + std::string(py::str(x.dtype())));
}

// (K, R, S, groups) as the weight's shape (K, ., R, S) and groups.
Conv2dParams params_krs(Quad nchw, Quad krs_groups, Pair stride, Quad padding, Pair dilation) {
  const auto [K, R, S, groups] = krs_groups;
  return make_geometry<Conv2dParams>(nchw, {K, 0, R, S}, stride, padding, dilation, groups);
}

std::string choose_algorithm_py(Quad nchw, Quad krs_groups, Pair stride, Quad padding,
                                Pair dilation, const std::string& algorithm, int dtype_bytes) {
  Conv2dParams p = params_krs(nchw, krs_groups, stride, padding, dilation);
  p.algorithm = algorithm_from_name(algorithm.c_str());
  p.validate();
  return algorithm_name(choose_algorithm(p, dtype_bytes));
}

std::string direct_layout_py(Quad nchw, Quad krs_groups, Pair stride, Quad padding, Pair dilation) {
  Conv2dParams p = params_krs(nchw, krs_groups, stride, padding, dilation);
  p.validate();
  return direct_layout_name(direct_layout(p));
}

// linear: x (M, in), w (out, in), bias (out) or None, y (M, out).
void linear_py(const py::array& x, const py::array& w, const py::object& b, const py::array& y,
               const std::string& activation, double alpha, double beta) {
  if (x.ndim() != 2) throw value_error("input: expected 2 dimensions (M, in), got " + shape_of(x));
  if (w.ndim() != 2) throw value_error("weight: expected 2 dimensions (out, in), got " + shape_of(w));
  const int64_t M = x.shape(0), in = x.shape(1), out = w.shape(0);
  const Activation act = bindings::make_activation(activation, alpha, beta);
  auto go = [&](auto tag) {
    using T = decltype(tag);
    require<T>(x, "input", {M, in});
    require<T>(w, "weight", {out, in});
    const T* bias = nullptr;
    if (!b.is_none()) {
      py::array ba = b.cast<py::array>();
      require<T>(ba, "bias", {out});
      bias = static_cast<const T*>(ba.data());
    }
    require<T>(y, "out", {M, out}, true);
    const T* xp = static_cast<const T*>(x.data());
    const T* wp = static_cast<const T*>(w.data());
    T* yp = static_cast<T*>(const_cast<void*>(y.data()));
    py::gil_scoped_release release;
    linear(M, in, out, xp, wp, bias, yp, act);
  };
  if (x.dtype().equal(py::dtype::of<float>()))
    go(float{});
  else if (x.dtype().equal(py::dtype::of<double>()))
    go(double{});
  else
    throw type_error("input: expected float32 or float64, got " + std::string(py::str(x.dtype())));
}

// A LinearOp of either dtype: weights packed once, run per batch (layers.Dense).
class PyLinearOp {
 public:
  PyLinearOp(const py::array& w, const py::object& b, const std::string& activation,
             double alpha, double beta)
      : double_(w.dtype().equal(py::dtype::of<double>())) {
    if (w.ndim() != 2)
      throw value_error("weight: expected 2 dimensions (out, in), got " + shape_of(w));
    const Activation act = bindings::make_activation(activation, alpha, beta);
    if (double_)
      make<double>(w, b, act, f64_);
    else if (w.dtype().equal(py::dtype::of<float>()))
      make<float>(w, b, act, f32_);
    else
      throw type_error("weight: expected float32 or float64, got " + std::string(py::str(w.dtype())));
  }

  void run(const py::array& x, const py::array& y) const {
    if (double_)
      run_typed<double>(*f64_, x, y);
    else
      run_typed<float>(*f32_, x, y);
  }

  int64_t in_features() const { return double_ ? f64_->in_features() : f32_->in_features(); }
  int64_t out_features() const { return double_ ? f64_->out_features() : f32_->out_features(); }

 private:
  template <class T>
  static void make(const py::array& w, const py::object& b, const Activation& act,
                   std::unique_ptr<LinearOp<T>>& op) {
    const int64_t out = w.shape(0), in = w.shape(1);
    require<T>(w, "weight", {out, in});
    const T* bias = nullptr;
    py::array ba;
    if (!b.is_none()) {
      ba = b.cast<py::array>();
      require<T>(ba, "bias", {out});
      bias = static_cast<const T*>(ba.data());
    }
    op = std::make_unique<LinearOp<T>>(in, out, static_cast<const T*>(w.data()), bias, act);
  }

  template <class T>
  static void run_typed(const LinearOp<T>& op, const py::array& x, const py::array& y) {
    if (x.ndim() != 2) throw value_error("input: expected 2 dimensions (M, in), got " + shape_of(x));
    const int64_t M = x.shape(0);
    require<T>(x, "input", {M, op.in_features()});
    require<T>(y, "out", {M, op.out_features()}, true);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(const_cast<void*>(y.data()));
    py::gil_scoped_release release;
    op.run(M, xp, yp);
  }

  bool double_;
  std::unique_ptr<LinearOp<float>> f32_;
  std::unique_ptr<LinearOp<double>> f64_;
};

int64_t conv2d_workspace_bytes_py(Quad nchw, Quad krs_groups, Pair stride, Quad padding,
                                  Pair dilation, const std::string& padding_mode,
                                  const std::string& algorithm, int dtype_bytes) {
  Conv2dParams p = params_krs(nchw, krs_groups, stride, padding, dilation);
  p.padding_mode = padding_mode_from_name(padding_mode.c_str());
  p.algorithm = algorithm_from_name(algorithm.c_str());
  return conv2d_workspace_bytes(p, dtype_bytes);
}

template <class T>
void locally_connected2d_typed(const LocallyConnected2dParams& p, const py::array& x,
                               const py::array& w, const py::object& b, const py::array& y) {
  p.validate();
  require<T>(x, "input", {p.N, p.C, p.H, p.W});
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  require<T>(w, "weight", {Ho, Wo, p.K, p.C, p.R, p.S});
  const T* bias = nullptr;
  if (!b.is_none()) {
    py::array ba = b.cast<py::array>();
    require<T>(ba, "bias", {p.K, Ho, Wo});
    bias = static_cast<const T*>(ba.data());
  }
  require<T>(y, "out", {p.N, p.K, Ho, Wo}, true);
  const T* xp = static_cast<const T*>(x.data());
  const T* wp = static_cast<const T*>(w.data());
  T* yp = static_cast<T*>(const_cast<void*>(y.data()));
  py::gil_scoped_release release;
  locally_connected2d(p, xp, wp, bias, yp);
}

void locally_connected2d_py(const py::array& x, const py::array& w, const py::object& b,
                            const py::array& y, Pair stride, Quad padding, Pair dilation,
                            const std::string& activation, double alpha, double beta) {
  if (w.ndim() != 6)
    throw value_error("weight: expected 6 dimensions (Ho, Wo, K, C, R, S), got " + shape_of(w));
  auto p = make_geometry<LocallyConnected2dParams>(dims4(x, "input", "(N, C, H, W)"),
                                                   {w.shape(2), w.shape(3), w.shape(4), w.shape(5)},
                                                   stride, padding, dilation, 1);
  p.activation = bindings::make_activation(activation, alpha, beta);
  if (x.dtype().equal(py::dtype::of<float>()))
    locally_connected2d_typed<float>(p, x, w, b, y);
  else if (x.dtype().equal(py::dtype::of<double>()))
    locally_connected2d_typed<double>(p, x, w, b, y);
  else
    throw type_error("input: expected float32 or float64, got " + std::string(py::str(x.dtype())));
}

Pool2dParams make_pool(Quad nchw, Pair kernel_size, Pair stride, Pair padding, Pair dilation,
                       bool ceil_mode) {
  Pool2dParams p;
  std::tie(p.N, p.C, p.H, p.W) = nchw;
  std::tie(p.R, p.S) = kernel_size;
  std::tie(p.stride_h, p.stride_w) = stride;
  std::tie(p.pad_h, p.pad_w) = padding;
  std::tie(p.dilation_h, p.dilation_w) = dilation;
  p.ceil_mode = ceil_mode;
  return p;
}
const char* pool_name(bool avg) { return avg ? "avg_pool2d" : "max_pool2d"; }

// Pooling's problem: validated; returns the output shape (N, C, Ho, Wo).
Quad pool2d_output_shape_py(Quad nchw, Pair kernel_size, Pair stride, Pair padding,
                            Pair dilation, bool ceil_mode, bool avg) {
  const Pool2dParams p = make_pool(nchw, kernel_size, stride, padding, dilation, ceil_mode);
  p.validate(pool_name(avg));
  return {p.N, p.C, p.out_h(), p.out_w()};
}

void pool2d_py(const py::array& x, const py::array& y, Pair kernel_size, Pair stride,
               Pair padding, Pair dilation, bool ceil_mode, bool count_include_pad, bool avg) {
  Pool2dParams p = make_pool(dims4(x, "input", "(N, C, H, W)"), kernel_size, stride, padding,
                             dilation, ceil_mode);
  p.count_include_pad = count_include_pad;
  auto go = [&](auto tag) {
    using T = decltype(tag);
    p.validate(pool_name(avg));
    require<T>(x, "input", {p.N, p.C, p.H, p.W});
    require<T>(y, "out", {p.N, p.C, p.out_h(), p.out_w()}, true);
    const T* xp = static_cast<const T*>(x.data());
    T* yp = static_cast<T*>(const_cast<void*>(y.data()));
    py::gil_scoped_release release;
    if (avg)
      avg_pool2d(p, xp, yp);
    else
      max_pool2d(p, xp, yp);
  };
  if (x.dtype().equal(py::dtype::of<float>()))
    go(float{});
  else if (x.dtype().equal(py::dtype::of<double>()))
    go(double{});
  else
    throw type_error("input: expected float32 or float64, got " + std::string(py::str(x.dtype())));
}

// Ctrl-C: polled by long calls from the thread that called in (with the GIL released).
// Only the main thread receives signals, so other threads skip taking the GIL.
unsigned long g_main_thread = 0;

bool python_interrupt_pending() {
  if (PyThread_get_thread_ident() != g_main_thread) return false;
  py::gil_scoped_acquire gil;
  return PyErr_CheckSignals() != 0;  // leaves KeyboardInterrupt (or the handler's error) set
}

}  // namespace

PYBIND11_MODULE(_core, m) {
  m.doc() = "convcore's C++ core. Use the functions of the convcore package instead.";
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const type_error& e) {
      PyErr_SetString(PyExc_TypeError, e.what());
    } catch (const interrupted&) {
      if (!PyErr_Occurred()) PyErr_SetNone(PyExc_KeyboardInterrupt);
    }
  });
  g_main_thread =
      py::module_::import("threading").attr("main_thread")().attr("ident").cast<unsigned long>();
  set_interrupt_handler(&python_interrupt_pending);

  m.def("empty", &bindings::OutputCache::empty, py::arg("shape"), py::arg("dtype"),
        "An uninitialised C-contiguous array like numpy.empty, its memory recycled from "
        "dead outputs (output_cache.hpp): repeated calls touch no fresh pages.");
  m.def("set_output_cache_bytes", &bindings::OutputCache::set_limit, py::arg("nbytes"),
        "The most bytes of dead outputs kept for reuse (0: none); frees the excess at once.");
  m.def("get_output_cache_bytes", &bindings::OutputCache::limit,
        "The output cache's limit in bytes (start: CONVCORE_OUTPUT_CACHE_MB MiB, or 256 MiB).");
  m.def("output_cache_stats", &bindings::OutputCache::stats,
        "(kept bytes, kept blocks, live bytes, most live bytes at once) of the outputs "
        "made by empty() at or above its 256 KiB threshold.");
  m.def("conv2d", &conv2d_py, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("padding_mode"), py::arg("activation"), py::arg("alpha"),
        py::arg("beta"), py::arg("algorithm"),
        "Raw conv2d: arrays already normalised (C-contiguous, aligned, one dtype); "
        "padding is (top, bottom, left, right).");
  py::class_<PyConv2dOp>(m, "Conv2dOp",
                         "A convolution with its weights packed once; run(input, out) per batch.")
      .def(py::init<const py::array&, const py::object&, std::tuple<int64_t, int64_t, int64_t>,
                    Pair, Quad, Pair, int64_t, const std::string&, const std::string&, double,
                    double, const std::string&>(),
           py::arg("weight"), py::arg("bias"), py::arg("input_chw"), py::arg("stride"),
           py::arg("padding"), py::arg("dilation"), py::arg("groups"), py::arg("padding_mode"),
           py::arg("activation"), py::arg("alpha"), py::arg("beta"), py::arg("algorithm"))
      .def("run", &PyConv2dOp::run, py::arg("input"), py::arg("out"))
      .def_property_readonly("algorithm", &PyConv2dOp::algorithm);
  m.def("activate", &activate_py, py::arg("input"), py::arg("out"), py::arg("activation"),
        py::arg("alpha"), py::arg("beta"), "out = activation(input), element-wise.");
  m.def("conv2d_output_shape", &conv2d_output_shape_py, py::arg("input_shape"),
        py::arg("weight_shape"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"), py::arg("padding_mode"),
        "Validates conv2d's problem (the C++ Conv2dParams) for these shapes and returns the "
        "output shape (N, K, Ho, Wo); padding is (top, bottom, left, right).");
  m.def("conv2d_check_parameters", &conv2d_check_parameters_py, py::arg("in_channels"),
        py::arg("out_channels"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("groups"), py::arg("padding_mode"),
        "The checks of conv2d's problem that do not need the input's size (a layer's).");
  m.def("locally_connected2d_output_shape", &locally_connected2d_output_shape_py,
        py::arg("input_shape"), py::arg("kcrs"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"),
        "Validates the locally connected problem for an input shape and filters (K, C, R, S); "
        "returns the output shape (N, K, Ho, Wo).");
  m.def("algorithms", [] {
    std::vector<std::string> names{"auto"};
    for (const char* n : algorithm_names()) names.emplace_back(n);
    return names;
  }, "The names algorithm= takes: 'auto', then the registry's algorithms in order.");
  m.def("choose_algorithm", &choose_algorithm_py, py::arg("nchw"), py::arg("krs_groups"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("algorithm"),
        py::arg("dtype_bytes") = 4,
        "The algorithm conv2d runs for these sizes and elements of dtype_bytes (4: float32, "
        "8: float64): 'direct', 'im2col' or 'winograd'.");
  m.def("direct_layout", &direct_layout_py, py::arg("nchw"), py::arg("krs_groups"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        "The layout the direct algorithm takes for these sizes on the active ISA: 'nchwc' "
        "(output channels in the vector lanes) or 'nchw' (vectors along rows).");
  m.def("set_direct_layout", [](const std::string& name) {
    set_direct_layout(direct_layout_from_name(name.c_str()));
  }, py::arg("name"),
        "Forces the direct algorithm's layout for plans made from now on: 'nchw', 'nchwc', "
        "or 'auto' (the measured rule). Process-wide; for benchmarks and tests.");
  m.def("get_direct_layout", [] { return std::string(direct_layout_name(get_direct_layout())); },
        "The forced direct layout, or 'auto'.");

  m.def("linear", &linear_py, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("activation"), py::arg("alpha"), py::arg("beta"),
        "Raw linear: out (M, out) = act(input (M, in) @ weight(out, in).T + bias); arrays "
        "already normalised (C-contiguous, aligned, one dtype).");
  py::class_<PyLinearOp>(m, "LinearOp",
                         "A fully connected layer with its weights packed once; "
                         "run(input, out) per batch.")
      .def(py::init<const py::array&, const py::object&, const std::string&, double, double>(),
           py::arg("weight"), py::arg("bias"), py::arg("activation"), py::arg("alpha"),
           py::arg("beta"))
      .def("run", &PyLinearOp::run, py::arg("input"), py::arg("out"))
      .def_property_readonly("in_features", &PyLinearOp::in_features)
      .def_property_readonly("out_features", &PyLinearOp::out_features);
  m.def("conv2d_workspace_bytes", &conv2d_workspace_bytes_py, py::arg("nchw"),
        py::arg("krs_groups"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("padding_mode"), py::arg("algorithm"), py::arg("dtype_bytes"),
        "Scratch bytes one conv2d call with these sizes takes on the current thread count.");

  m.def("set_num_threads", &set_num_threads, py::arg("n"));
  m.def("get_num_threads", &get_num_threads);
  bind_threads(m);
  m.def("get_isa", &isa, "The ISA whose kernels run now.");
  m.def("set_winograd", &set_winograd, py::arg("on"),
        "Whether algorithm='auto' may choose Winograd (env CONVCORE_WINOGRAD=0: off).");
  m.def("get_winograd", &get_winograd);
  m.def("set_isa", &set_isa, py::arg("name"), "Force an ISA (must be compiled and supported).");
  m.def("isas_compiled", &isas_compiled);
  m.def("isas_supported", &isas_supported);
  m.def("kernels", [] {
    py::list out;
    for (const auto& k : kernel_list()) {
      py::dict d;
      d["table"] = k.table;
      d["op"] = k.op;
      d["name"] = k.name;
      d["isa"] = k.isa;
      d["mr"] = k.mr;
      d["nr"] = k.nr;
      out.append(d);
    }
    return out;
  }, "Every kernel slot of every compiled ISA table.");
  m.def("version", &version);
  m.def("compiler", &compiler);
  m.def("cxx_flags", &cxx_flags);
  m.def("locally_connected2d", &locally_connected2d_py, py::arg("input"), py::arg("weight"),
        py::arg("bias"), py::arg("out"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("activation"), py::arg("alpha"), py::arg("beta"),
        "Raw locally connected layer: weight (Ho, Wo, K, C, R, S), bias (K, Ho, Wo); "
        "padding is (top, bottom, left, right).");
  m.def("pool2d_output_shape", &pool2d_output_shape_py, py::arg("input_shape"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("ceil_mode"), py::arg("avg"),
        "Validates a pooling problem (the C++ Pool2dParams); returns the output shape.");
  m.def("pool2d_check_parameters", [](Pair kernel_size, Pair stride, Pair padding,
                                      Pair dilation, bool avg) {
          make_pool({1, 1, 1, 1}, kernel_size, stride, padding, dilation, false)
              .validate_parameters(pool_name(avg));
        }, py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("avg"), "The checks of a pooling problem that do not need the input (a layer's).");
  m.def("gemm_blocking", [] {
    const GemmBlocking b = gemm_blocking();
    py::dict d;
    d["kc"] = b.kc;
    d["mc_f32"] = b.mc_f32;
    d["mc_f64"] = b.mc_f64;
    d["b_block_bytes"] = b.b_block_bytes;
    return d;
  }, "The packed GEMM's cache blocking: kc, mc_f32, mc_f64, b_block_bytes (runtime.hpp).");
  m.def("max_pool2d", [](const py::array& x, const py::array& y, Pair kernel_size, Pair stride,
                         Pair padding, Pair dilation, bool ceil_mode) {
          pool2d_py(x, y, kernel_size, stride, padding, dilation, ceil_mode, true, false);
        }, py::arg("input"), py::arg("out"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "Raw 2D max pooling (PyTorch semantics), NCHW.");
  m.def("avg_pool2d", [](const py::array& x, const py::array& y, Pair kernel_size, Pair stride,
                         Pair padding, bool ceil_mode, bool count_include_pad) {
          pool2d_py(x, y, kernel_size, stride, padding, {1, 1}, ceil_mode, count_include_pad,
                    true);
        }, py::arg("input"), py::arg("out"), py::arg("kernel_size"), py::arg("stride"),
        py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        "Raw 2D average pooling (PyTorch semantics), NCHW.");
  bindings::bind_backward(m);
  m.def("measure_peak_gflops", [](int threads, double seconds, const std::string& isa) {
    py::gil_scoped_release release;
    return measure_peak_gflops(threads, seconds, isa);
  }, py::arg("threads") = 1, py::arg("seconds") = 0.2, py::arg("isa") = "",
        "The float32 FMA peak (GFLOP/s) of `threads` threads running an ISA's "
        "peak_fma_f32 probe at once (`isa`: 'avx512', 'avx2', 'scalar'; empty: the ISA in "
        "use); best of runs over about `seconds`.");
  m.def("measure_gemm_kernel_gflops", [](double seconds, const std::string& isa) {
    py::gil_scoped_release release;
    return measure_gemm_kernel_gflops(seconds, isa);
  }, py::arg("seconds") = 0.2, py::arg("isa") = "",
        "GFLOP/s of an ISA's float32 GEMM micro-kernel alone (empty: the ISA in use) on "
        "one thread: one MC x KC block of A panels against one KC x NR B panel.");
}
