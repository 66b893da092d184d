// output_cache.hpp — memory for the arrays convcore returns, recycled across calls.
//
// The first touch of a fresh 4 KiB page costs microseconds (ANCHORS.md), and glibc gives
// blocks over its mmap threshold back to the OS when they are freed: a layer's 800 KiB
// output then costs 200 page faults per call, 2-10% of the layer's time (measured on the
// ResNet 3x3 and stem layers, more when another library has just freed memory). So the
// blocks of large outputs that die are kept, up to kMaxCachedBytes in all, and handed to
// the next output they fit (at most a quarter larger than asked for); repeated calls then
// write into pages already mapped. Small outputs use NumPy's allocator, which recycles
// them already. Every access holds the GIL (arrays are made by calls from Python and
// freed by Python's reference counting), so the cache needs no lock of its own.
#pragma once

#include <pybind11/numpy.h>

#include <cstdint>
#include <cstdlib>
#include <list>
#include <new>
#include <string>
#include <vector>

namespace convcore::bindings {

class OutputCache {
 public:
  static constexpr size_t kMinBytes = size_t{256} << 10;       // below: NumPy's allocator
  static constexpr size_t kMaxCachedBytes = size_t{64} << 20;  // free blocks kept, in all
  static constexpr size_t kAlign = 64;

  // An uninitialised C-contiguous array of `shape` and a numeric `dtype` (never one
  // holding Python objects: uninitialised memory is not a valid object pointer).
  static pybind11::array empty(const std::vector<int64_t>& shape, const pybind11::dtype& dtype) {
    if (std::string("biufc").find(dtype.kind()) == std::string::npos)
      throw std::invalid_argument("empty: expected a numeric dtype, got " +
                                  std::string(pybind11::str(dtype)));
    size_t bytes = static_cast<size_t>(dtype.itemsize());
    for (int64_t d : shape) {
      if (d < 0) throw std::invalid_argument("empty: negative dimension");
      if (d != 0 && bytes > SIZE_MAX / 2 / static_cast<size_t>(d)) throw std::bad_alloc();
      bytes *= static_cast<size_t>(d);
    }
    if (bytes < kMinBytes) return pybind11::array(dtype, shape);
    void* data = instance().take(bytes);
    pybind11::capsule owner(data, [](void* p) { instance().give(p); });
    return pybind11::array(dtype, shape, {}, data, owner);
  }

 private:
  struct Block {
    void* data;
    size_t capacity;
  };

  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache;  // never destroyed: arrays may outlive exit
    return *cache;
  }

  // The block's capacity sits in a header of kAlign bytes before the data.
  static size_t& capacity_of(void* data) {
    return *reinterpret_cast<size_t*>(static_cast<char*>(data) - kAlign);
  }

  void* take(size_t bytes) {
    auto best = free_.end();
    for (auto it = free_.begin(); it != free_.end(); ++it)
      if (it->capacity >= bytes && it->capacity - bytes <= bytes / 4 &&
          (best == free_.end() || it->capacity < best->capacity))
        best = it;
    if (best != free_.end()) {
      void* data = best->data;
      cached_ -= best->capacity;
      free_.erase(best);
      return data;
    }
    const size_t total = (kAlign + bytes + kAlign - 1) / kAlign * kAlign;
    void* raw = std::aligned_alloc(kAlign, total);
    if (raw == nullptr) throw std::bad_alloc();
    void* data = static_cast<char*>(raw) + kAlign;
    capacity_of(data) = total - kAlign;
    return data;
  }

  // Keeps the block, dropping the least recently freed ones beyond kMaxCachedBytes.
  void give(void* data) {
    const size_t capacity = capacity_of(data);
    if (capacity > kMaxCachedBytes) return release(data);
    while (cached_ + capacity > kMaxCachedBytes) {
      cached_ -= free_.front().capacity;
      release(free_.front().data);
      free_.pop_front();
    }
    free_.push_back({data, capacity});
    cached_ += capacity;
  }

  static void release(void* data) { std::free(static_cast<char*>(data) - kAlign); }

  std::list<Block> free_;  // least recently freed first
  size_t cached_ = 0;
};

}  // namespace convcore::bindings
