// dispatch.hpp — the kernel tables in use, chosen once from the CPU and CONVCORE_ISA.
#pragma once

#include <string>

#include "kernels/table.hpp"

namespace convcore::detail {

// The active ISA's tables: the widest ISA the CPU runs, or the one CONVCORE_ISA / set_isa
// chose. A plan or operator keeps the table it was made with (ops/algorithm.hpp); only
// one-call operations read the active one at each call.
const kernels::IsaTables& active_tables();

// The tables of a named ISA, compiled and supported (value_error otherwise), whatever
// is active: for probes that compare ISAs on this CPU.
const kernels::IsaTables& tables_of(const std::string& name);

template <class T>
const kernels::KernelTable<T>& kernels() {
  return active_tables().of<T>();
}

}  // namespace convcore::detail
