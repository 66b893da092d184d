// threads.cpp — the per-thread cap on convcore's threads (runtime.hpp's set_thread_limit),
// which convcore.dask sets around each task.
#include <pybind11/pybind11.h>

#include "convcore/convcore.hpp"

namespace py = pybind11;

void bind_threads(py::module_& m) {
  m.def("set_thread_limit", &convcore::set_thread_limit, py::arg("n"),
        "Cap the threads of the calls made from this Python thread (0: no cap); returns "
        "nothing. Thread-local: other threads keep their own cap.");
  m.def("get_thread_limit", &convcore::get_thread_limit,
        "This thread's cap on the threads of its calls (0: none).");
}
