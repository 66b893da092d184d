// table.cpp — the AVX-512 kernel tables, built at compile time from table.hpp
// (constexpr: no code compiled with this ISA's flags runs before dispatch has checked the CPU).
#include "kernels/avx512/table.hpp"

namespace convcore::kernels::avx512 {

const IsaTables& tables() {
  static constexpr IsaTables t = make_tables();
  return t;
}

}  // namespace convcore::kernels::avx512
