// dispatch.hpp — the kernel table in use, chosen once from the CPU and CONVCORE_ISA.
#pragma once

#include "kernels/table.hpp"

namespace convcore::detail {

// The active table: the widest ISA the CPU runs, or the one CONVCORE_ISA / set_isa chose.
const kernels::KernelTable& kernels();

}  // namespace convcore::detail
