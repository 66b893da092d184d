// workspace.hpp — aligned buffers: owned (per call) and per-thread scratch (kept across
// calls, so repeated calls touch no fresh pages: first touches cost microseconds each).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <new>
#include <utility>

namespace convcore::detail {

constexpr size_t kAlign = 64;

// Throws std::bad_alloc for requests larger than physical memory (overcommit would grant
// them and the process would die on first touch) or that malloc refuses.
void* aligned_allocate(size_t bytes);

template <class T>
class Buffer {
 public:
  Buffer() = default;
  explicit Buffer(int64_t count)
      : p_(static_cast<T*>(aligned_allocate(static_cast<size_t>(count) * sizeof(T)))) {}
  ~Buffer() { std::free(p_); }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : p_(o.p_) { o.p_ = nullptr; }
  Buffer& operator=(Buffer&& o) noexcept {
    std::swap(p_, o.p_);
    return *this;
  }
  T* get() const { return p_; }

 private:
  T* p_ = nullptr;
};

// A per-thread buffer of at least `bytes`, valid until the same thread asks again.
void* thread_scratch(size_t bytes);

// A second per-thread buffer, for what a one-shot plan (the one-call conv2d) derives from
// the weights and keeps for its one run on this thread (Winograd's transformed weights:
// a fresh buffer per call cost more in page faults than the transform itself); valid until
// the same thread asks again. Buffers above kPlanScratchMax are not kept (returns null:
// the caller allocates its own).
constexpr size_t kPlanScratchMax = size_t{64} << 20;
void* thread_plan_scratch(size_t bytes);

}  // namespace convcore::detail
