// workspace.cpp — aligned allocation with an up-front size check; per-thread scratch.
#include "workspace.hpp"

#include <unistd.h>

namespace convcore::detail {

void* aligned_allocate(size_t bytes) {
  static const size_t physical =
      static_cast<size_t>(sysconf(_SC_PHYS_PAGES)) * static_cast<size_t>(sysconf(_SC_PAGESIZE));
  if (bytes > physical || bytes > SIZE_MAX - kAlign) throw std::bad_alloc();
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
  void* p = std::aligned_alloc(kAlign, rounded == 0 ? kAlign : rounded);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

namespace {
struct Scratch {
  void* p = nullptr;
  size_t size = 0;
  ~Scratch() { std::free(p); }
};
}  // namespace

void* thread_scratch(size_t bytes) {
  thread_local Scratch s;
  if (s.size < bytes) {
    void* p = aligned_allocate(bytes);
    std::free(s.p);
    s.p = p;
    s.size = bytes;
  }
  return s.p;
}

void* thread_plan_scratch(size_t bytes) {
  if (bytes > kPlanScratchMax) return nullptr;
  thread_local Scratch s;
  if (s.size < bytes) {
    void* p = aligned_allocate(bytes);
    std::free(s.p);
    s.p = p;
    s.size = bytes;
  }
  return s.p;
}

}  // namespace convcore::detail
