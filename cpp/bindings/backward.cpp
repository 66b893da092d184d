// backward.cpp — the gradient calls of convcore._core (convcore/backward.hpp): checks that
// arrays match their sizes, raw pointers to C++ with the GIL released. None for an output
// means "not computed" (output_mask). Argument normalisation: src/convcore/functional.py.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <string>
#include <tuple>

#include "arrays.hpp"
#include "convcore/convcore.hpp"

namespace convcore::bindings {
namespace {

using Pair = std::tuple<int64_t, int64_t>;
using Quad = std::tuple<int64_t, int64_t, int64_t, int64_t>;

template <class T>
const T* in_ptr(const py::array& a) {
  return static_cast<const T*>(a.data());
}

// An optional output: None -> nullptr, else checked (dtype T, shape, writable).
template <class T>
T* out_ptr(const py::object& o, const char* name, const std::vector<int64_t>& shape) {
  if (o.is_none()) return nullptr;
  py::array a = o.cast<py::array>();
  require<T>(a, name, shape, true);
  return static_cast<T*>(const_cast<void*>(a.data()));
}

std::vector<int64_t> dims(const py::array& a) {
  return std::vector<int64_t>(a.shape(), a.shape() + a.ndim());
}

void require_ndim(const py::array& a, const char* name, py::ssize_t n, const char* layout) {
  if (a.ndim() != n)
    throw value_error(std::string(name) + ": expected " + std::to_string(n) + " dimensions " +
                      layout + ", got " + shape_of(a));
}

void activation_backward_py(const py::array& g, const py::array& x, const py::array& gi,
                            const std::string& activation, double alpha, double beta) {
  const Activation act = make_activation(activation, alpha, beta);
  by_dtype(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const auto shape = dims(x);
    require<T>(x, "input", shape);
    require<T>(g, "grad_output", shape);
    require<T>(gi, "grad_input", shape, true);
    const T* gp = in_ptr<T>(g);
    const T* xp = in_ptr<T>(x);
    T* out = static_cast<T*>(const_cast<void*>(gi.data()));
    const int64_t n = x.size();
    py::gil_scoped_release release;
    activation_backward(act, gp, xp, out, n);
  });
}

double cross_entropy_py(const py::array& logits, const py::array& target,
                        const py::object& per_sample, const py::object& grad,
                        const std::string& reduction) {
  require_ndim(logits, "logits", 2, "(N, classes)");
  const int64_t N = logits.shape(0), classes = logits.shape(1);
  require<int64_t>(target, "target", {N});
  Reduction red;
  if (reduction == "none")
    red = Reduction::none;
  else if (reduction == "mean")
    red = Reduction::mean;
  else if (reduction == "sum")
    red = Reduction::sum;
  else
    throw value_error("reduction must be one of 'none', 'mean', 'sum', got '" + reduction + "'");
  double loss = 0;
  by_dtype(logits, "logits", [&](auto tag) {
    using T = decltype(tag);
    require<T>(logits, "logits", {N, classes});
    T* ps = out_ptr<T>(per_sample, "per_sample", {N});
    T* gr = out_ptr<T>(grad, "grad", {N, classes});
    const T* z = in_ptr<T>(logits);
    const int64_t* t = in_ptr<int64_t>(target);
    py::gil_scoped_release release;
    loss = cross_entropy(N, classes, z, t, red, ps, gr);
  });
  return loss;
}

Pool2dParams pool_params(const py::array& x, Pair kernel_size, Pair stride, Pair padding,
                         Pair dilation, bool ceil_mode, bool count_include_pad) {
  require_ndim(x, "input", 4, "(N, C, H, W)");
  Pool2dParams p;
  p.N = x.shape(0), p.C = x.shape(1), p.H = x.shape(2), p.W = x.shape(3);
  std::tie(p.R, p.S) = kernel_size;
  std::tie(p.stride_h, p.stride_w) = stride;
  std::tie(p.pad_h, p.pad_w) = padding;
  std::tie(p.dilation_h, p.dilation_w) = dilation;
  p.ceil_mode = ceil_mode;
  p.count_include_pad = count_include_pad;
  p.validate();
  return p;
}

// x: the forward input (max) or grad_input's shape holder (avg: gi itself).
void pool2d_backward_py(const py::array& g, const py::array& x, const py::array& gi,
                        Pair kernel_size, Pair stride, Pair padding, Pair dilation,
                        bool ceil_mode, bool count_include_pad, bool avg) {
  const Pool2dParams p =
      pool_params(x, kernel_size, stride, padding, dilation, ceil_mode, count_include_pad);
  by_dtype(x, "input", [&](auto tag) {
    using T = decltype(tag);
    require<T>(x, "input", {p.N, p.C, p.H, p.W});
    require<T>(g, "grad_output", {p.N, p.C, p.out_h(), p.out_w()});
    require<T>(gi, "grad_input", {p.N, p.C, p.H, p.W}, true);
    const T* gp = in_ptr<T>(g);
    const T* xp = in_ptr<T>(x);
    T* out = static_cast<T*>(const_cast<void*>(gi.data()));
    py::gil_scoped_release release;
    if (avg)
      avg_pool2d_backward(p, gp, out);
    else
      max_pool2d_backward(p, gp, xp, out);
  });
}

void linear_backward_py(const py::array& g, const py::array& x, const py::array& w,
                        const py::object& gi, const py::object& gw, const py::object& gb) {
  require_ndim(x, "input", 2, "(M, in)");
  require_ndim(w, "weight", 2, "(out, in)");
  const int64_t M = x.shape(0), in = x.shape(1), out = w.shape(0);
  by_dtype(x, "input", [&](auto tag) {
    using T = decltype(tag);
    require<T>(x, "input", {M, in});
    require<T>(w, "weight", {out, in});
    require<T>(g, "grad_output", {M, out});
    T* gip = out_ptr<T>(gi, "grad_input", {M, in});
    T* gwp = out_ptr<T>(gw, "grad_weight", {out, in});
    T* gbp = out_ptr<T>(gb, "grad_bias", {out});
    const T* gp = in_ptr<T>(g);
    const T* xp = in_ptr<T>(x);
    const T* wp = in_ptr<T>(w);
    py::gil_scoped_release release;
    linear_backward(M, in, out, gp, xp, wp, gip, gwp, gbp);
  });
}

Conv2dParams conv_params(Quad nchw, Quad krs_groups, Pair stride, Quad padding, Pair dilation,
                         const std::string& padding_mode) {
  Conv2dParams p;
  std::tie(p.N, p.C, p.H, p.W) = nchw;
  std::tie(p.K, p.R, p.S, p.groups) = krs_groups;
  std::tie(p.stride_h, p.stride_w) = stride;
  std::tie(p.pad_top, p.pad_bottom, p.pad_left, p.pad_right) = padding;
  std::tie(p.dilation_h, p.dilation_w) = dilation;
  p.padding_mode = padding_mode_from_name(padding_mode.c_str());
  return p;
}

void conv2d_backward_py(const py::array& g, const py::array& x, const py::array& w,
                        const py::object& gi, const py::object& gw, const py::object& gb,
                        Pair stride, Quad padding, Pair dilation, int64_t groups,
                        const std::string& padding_mode) {
  require_ndim(x, "input", 4, "(N, C, H, W)");
  require_ndim(w, "weight", 4, "(K, C/groups, R, S)");
  const Conv2dParams p = conv_params({x.shape(0), x.shape(1), x.shape(2), x.shape(3)},
                                     {w.shape(0), w.shape(2), w.shape(3), groups}, stride,
                                     padding, dilation, padding_mode);
  p.validate();
  by_dtype(x, "input", [&](auto tag) {
    using T = decltype(tag);
    require<T>(x, "input", {p.N, p.C, p.H, p.W});
    require<T>(w, "weight", {p.K, p.C / p.groups, p.R, p.S});
    require<T>(g, "grad_output", {p.N, p.K, p.out_h(), p.out_w()});
    T* gip = out_ptr<T>(gi, "grad_input", {p.N, p.C, p.H, p.W});
    T* gwp = out_ptr<T>(gw, "grad_weight", {p.K, p.C / p.groups, p.R, p.S});
    T* gbp = out_ptr<T>(gb, "grad_bias", {p.K});
    const T* gp = in_ptr<T>(g);
    const T* xp = in_ptr<T>(x);
    const T* wp = in_ptr<T>(w);
    py::gil_scoped_release release;
    conv2d_backward(p, gp, xp, wp, gip, gwp, gbp);
  });
}

void locally_connected2d_backward_py(const py::array& g, const py::array& x, const py::array& w,
                                     const py::object& gi, const py::object& gw,
                                     const py::object& gb, Pair stride, Quad padding,
                                     Pair dilation) {
  require_ndim(x, "input", 4, "(N, C, H, W)");
  require_ndim(w, "weight", 6, "(Ho, Wo, K, C, R, S)");
  LocallyConnected2dParams p;
  p.N = x.shape(0), p.C = x.shape(1), p.H = x.shape(2), p.W = x.shape(3);
  p.K = w.shape(2), p.R = w.shape(4), p.S = w.shape(5);
  std::tie(p.stride_h, p.stride_w) = stride;
  std::tie(p.pad_top, p.pad_bottom, p.pad_left, p.pad_right) = padding;
  std::tie(p.dilation_h, p.dilation_w) = dilation;
  p.validate();
  const int64_t Ho = p.out_h(), Wo = p.out_w();
  by_dtype(x, "input", [&](auto tag) {
    using T = decltype(tag);
    require<T>(x, "input", {p.N, p.C, p.H, p.W});
    require<T>(w, "weight", {Ho, Wo, p.K, p.C, p.R, p.S});
    require<T>(g, "grad_output", {p.N, p.K, Ho, Wo});
    T* gip = out_ptr<T>(gi, "grad_input", {p.N, p.C, p.H, p.W});
    T* gwp = out_ptr<T>(gw, "grad_weight", {Ho, Wo, p.K, p.C, p.R, p.S});
    T* gbp = out_ptr<T>(gb, "grad_bias", {p.K, Ho, Wo});
    const T* gp = in_ptr<T>(g);
    const T* xp = in_ptr<T>(x);
    const T* wp = in_ptr<T>(w);
    py::gil_scoped_release release;
    locally_connected2d_backward(p, gp, xp, wp, gip, gwp, gbp);
  });
}

}  // namespace

void bind_backward(py::module_& m) {
  m.def("activation_backward", &activation_backward_py, py::arg("grad_output"), py::arg("input"),
        py::arg("grad_input"), py::arg("activation"), py::arg("alpha"), py::arg("beta"),
        "grad_input = grad_output * activation'(input), element-wise.");
  m.def("cross_entropy", &cross_entropy_py, py::arg("logits"), py::arg("target"),
        py::arg("per_sample"), py::arg("grad"), py::arg("reduction"),
        "Cross-entropy of logits (N, classes) against int64 targets (N); fills per_sample "
        "(reduction 'none') and grad when given; returns the reduced loss.");
  m.def("max_pool2d_backward", [](const py::array& g, const py::array& x, const py::array& gi,
                                  Pair kernel_size, Pair stride, Pair padding, Pair dilation,
                                  bool ceil_mode) {
          pool2d_backward_py(g, x, gi, kernel_size, stride, padding, dilation, ceil_mode, true,
                             false);
        }, py::arg("grad_output"), py::arg("input"), py::arg("grad_input"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("ceil_mode"), "Raw max_pool2d gradient, NCHW.");
  m.def("avg_pool2d_backward", [](const py::array& g, const py::array& gi, Pair kernel_size,
                                  Pair stride, Pair padding, bool ceil_mode,
                                  bool count_include_pad) {
          pool2d_backward_py(g, gi, gi, kernel_size, stride, padding, {1, 1}, ceil_mode,
                             count_include_pad, true);
        }, py::arg("grad_output"), py::arg("grad_input"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), "Raw avg_pool2d gradient, NCHW.");
  m.def("linear_backward", &linear_backward_py, py::arg("grad_output"), py::arg("input"),
        py::arg("weight"), py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"),
        "Raw linear gradients (2-D input); None outputs are not computed.");
  m.def("conv2d_backward", &conv2d_backward_py, py::arg("grad_output"), py::arg("input"),
        py::arg("weight"), py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"),
        py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        py::arg("padding_mode"),
        "Raw conv2d gradients; padding is (top, bottom, left, right); None outputs are not "
        "computed.");
  m.def("conv2d_backward_workspace_bytes",
        [](Quad nchw, Quad krs_groups, Pair stride, Quad padding, Pair dilation,
           const std::string& padding_mode, int dtype_bytes, bool grad_input, bool grad_weight) {
          return conv2d_backward_workspace_bytes(
              conv_params(nchw, krs_groups, stride, padding, dilation, padding_mode), dtype_bytes,
              grad_input, grad_weight);
        }, py::arg("nchw"), py::arg("krs_groups"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("padding_mode"), py::arg("dtype_bytes"),
        py::arg("grad_input"), py::arg("grad_weight"),
        "Scratch bytes one conv2d_backward call takes beyond its arguments.");
  m.def("locally_connected2d_backward", &locally_connected2d_backward_py,
        py::arg("grad_output"), py::arg("input"), py::arg("weight"), py::arg("grad_input"),
        py::arg("grad_weight"), py::arg("grad_bias"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), "Raw locally connected gradients; None outputs are not computed.");
}

}  // namespace convcore::bindings
