// table.cpp — the AVX2+FMA kernel tables, built at compile time from table.hpp
// (constexpr: no code compiled with this ISA's flags runs before dispatch has checked the CPU).
#include "kernels/avx2/table.hpp"

namespace convcore::kernels::avx2 {

const IsaTables& tables() {
  static constexpr IsaTables t = make_tables();
  return t;
}

}  // namespace convcore::kernels::avx2
