// table.cpp — the scalar kernel tables (the reference twins), built at compile time from table.hpp
// (constexpr: no code compiled with this ISA's flags runs before dispatch has checked the CPU).
#include "kernels/scalar/table.hpp"

namespace convcore::kernels::scalar {

const IsaTables& tables() {
  static constexpr IsaTables t = make_tables();
  return t;
}

}  // namespace convcore::kernels::scalar
