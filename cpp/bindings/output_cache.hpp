// output_cache.hpp — memory for the arrays convcore returns, recycled across calls.
//
// The first touch of a fresh 4 KiB page costs microseconds (ANCHORS.md), and glibc gives
// blocks over its mmap threshold back to the OS when they are freed: a layer's 800 KiB
// output then costs 200 page faults per call, 2-10% of the layer's time (measured on the
// ResNet 3x3 and stem layers, more when another library has just freed memory), and a
// Dask worker's fresh 16 MiB block 15-21 ms against 2.5-5 ms recycled. So the blocks of
// large outputs that die are kept and handed to the next output they fit (at most a
// quarter larger than asked for); repeated calls then write into pages already mapped.
// The blocks kept are at most the limit in all (set_limit, CONVCORE_OUTPUT_CACHE_MB; 256
// MiB by default: what one of two Dask workers holds of a 8192x8192 float32 image's
// 2048x2048 output blocks, twice over for a two-call pipeline; with 64 MiB half of them
// came back fresh). Outputs of one size reuse each other's blocks, so a loop making the
// same outputs keeps no more than it had alive at once. Small outputs use NumPy's
// allocator, which recycles them already. Every access holds the GIL (arrays are made by
// calls from Python and freed by Python's reference counting), so the cache needs no lock
// of its own.
#pragma once

#include <pybind11/numpy.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <list>
#include <new>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace convcore::bindings {

class OutputCache {
 public:
  static constexpr size_t kMinBytes = size_t{256} << 10;          // below: NumPy's allocator
  static constexpr size_t kDefaultLimit = size_t{256} << 20;      // free blocks kept, in all
  static constexpr int64_t kMaxLimitMiB = int64_t{1} << 30;       // 1 PiB: a typo's bound
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

  // The most bytes of dead outputs kept; 0 keeps none. Lowering it frees at once.
  static void set_limit(int64_t bytes) {
    if (bytes < 0 || bytes > (kMaxLimitMiB << 20))
      throw std::invalid_argument("set_output_cache_bytes: nbytes must be from 0 to 2**50, got " +
                                  std::to_string(bytes));
    OutputCache& c = instance();
    c.limit_ = static_cast<size_t>(bytes);
    c.trim();
  }
  static int64_t limit() { return static_cast<int64_t>(instance().limit_); }

  // (kept bytes, kept blocks, live bytes, most live bytes at once) of the cache's blocks.
  static std::tuple<int64_t, int64_t, int64_t, int64_t> stats() {
    const OutputCache& c = instance();
    return {static_cast<int64_t>(c.cached_), static_cast<int64_t>(c.free_.size()),
            static_cast<int64_t>(c.live_), static_cast<int64_t>(c.high_water_)};
  }

 private:
  struct Block {
    void* data;
    size_t capacity;
  };

  OutputCache() : limit_(limit_from_env()) {}

  static OutputCache& instance() {
    static OutputCache* cache = new OutputCache;  // never destroyed: arrays may outlive exit
    return *cache;
  }

  // CONVCORE_OUTPUT_CACHE_MB: a whole number of MiB; unset or empty: kDefaultLimit.
  static size_t limit_from_env() {
    const char* env = std::getenv("CONVCORE_OUTPUT_CACHE_MB");
    if (env == nullptr || *env == '\0') return kDefaultLimit;
    char* end = nullptr;
    errno = 0;
    const long long v = std::strtoll(env, &end, 10);
    if (*end != '\0' || errno != 0 || v < 0 || v > kMaxLimitMiB)
      throw std::invalid_argument(std::string("CONVCORE_OUTPUT_CACHE_MB='") + env +
                                  "' is not a whole number of MiB from 0 to 2**30");
    return static_cast<size_t>(v) << 20;
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
      live_ += best->capacity;
      free_.erase(best);
      return data;
    }
    const size_t total = (kAlign + bytes + kAlign - 1) / kAlign * kAlign;
    const size_t capacity = total - kAlign;
    void* raw = std::aligned_alloc(kAlign, total);
    if (raw == nullptr) throw std::bad_alloc();
    void* data = static_cast<char*>(raw) + kAlign;
    capacity_of(data) = capacity;
    live_ += capacity;
    high_water_ = std::max(high_water_, live_);
    return data;
  }

  // Keeps the block (unless it alone exceeds the limit), then trims to the limit.
  void give(void* data) {
    const size_t capacity = capacity_of(data);
    live_ -= capacity;
    if (capacity > limit_) return release(data);
    free_.push_back({data, capacity});
    cached_ += capacity;
    trim();
  }

  // Frees the least recently freed blocks until the kept ones fit the limit.
  void trim() {
    while (cached_ > limit_) {
      cached_ -= free_.front().capacity;
      release(free_.front().data);
      free_.pop_front();
    }
  }

  static void release(void* data) { std::free(static_cast<char*>(data) - kAlign); }

  std::list<Block> free_;  // least recently freed first
  size_t cached_ = 0;      // bytes in free_
  size_t live_ = 0;        // bytes of blocks held by arrays
  size_t high_water_ = 0;  // the most live_ has been
  size_t limit_;
};

}  // namespace convcore::bindings
