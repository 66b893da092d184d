// arrays.hpp — array checks shared by the binding files: dtype, shape, layout.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "convcore/types.hpp"

namespace convcore::bindings {

namespace py = pybind11;

inline std::string shape_of(const py::array& a) {
  std::string s = "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// The array must have dtype T, be C-contiguous, aligned, of the given shape.
template <class T>
void require(const py::array& a, const char* name, const std::vector<int64_t>& shape,
             bool writable = false) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().equal(py::dtype::of<T>()))
    throw type_error(std::string(name) + ": expected dtype " +
                     std::string(py::str(py::dtype::of<T>())) + ", got " +
                     std::string(py::str(a.dtype())));
  bool same = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; same && i < shape.size(); ++i) same = a.shape(i) == shape[i];
  if (!same) {
    std::string want = "(";
    for (size_t i = 0; i < shape.size(); ++i) want += (i ? ", " : "") + std::to_string(shape[i]);
    throw value_error(std::string(name) + ": expected shape " + want + "), got " + shape_of(a));
  }
  if (!(a.flags() & py::array::c_style))
    throw value_error(std::string(name) + " must be C-contiguous");
  if (reinterpret_cast<uintptr_t>(a.data()) % alignof(T) != 0)
    throw value_error(std::string(name) + " must be aligned to its dtype");
  if (writable && !a.writeable()) throw value_error(std::string(name) + " must be writable");
}

inline Activation make_activation(const std::string& name, double alpha, double beta) {
  return Activation{activation_kind(name), alpha, beta};
}

// Calls go(T{}) for the array's dtype, float32 or float64 (else type_error naming it).
template <class Go>
void by_dtype(const py::array& a, const char* name, Go&& go) {
  if (a.dtype().equal(py::dtype::of<float>()))
    go(float{});
  else if (a.dtype().equal(py::dtype::of<double>()))
    go(double{});
  else
    throw type_error(std::string(name) + ": expected float32 or float64, got " +
                     std::string(py::str(a.dtype())));
}

}  // namespace convcore::bindings
