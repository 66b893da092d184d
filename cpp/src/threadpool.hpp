// threadpool.hpp — the persistent pool every op runs on.
//
// parallel_for(n, fn) calls fn(t) once for every task t in [0, n), spread over the
// pool's threads and the caller. Tasks are claimed dynamically, so a task must write
// outputs no other task writes: then results are bitwise the same for any thread
// count. A call made while the pool is busy (another Python thread, or from inside a
// task) runs its tasks on the calling thread, so concurrent callers never wait on
// each other. The first exception thrown by a task is rethrown to the caller.
#pragma once

#include <cstdint>
#include <functional>

namespace convcore::detail {

void parallel_for(int64_t ntasks, const std::function<void(int64_t)>& fn);
// Work below kInlineWork runs on the calling thread: handing tasks to a pool worker costs
// about as much (a sleeping worker's wake-up, tens of microseconds on a shared VM; a
// training step of a small network makes dozens of such calls). Work is counted in
// element operations (a copy, an add, a pooling tap: a fraction of a nanosecond each in a
// vector loop, so 65536 are some 20-40 us); a multiply-add in a convolution or GEMM kernel
// is about kMacsPerWork times cheaper (macs_work converts: the classify CNN's first layer
// on 32 8x8 digits, 295 k multiply-adds, runs inline; its second, 9.4 million, is split).
constexpr int64_t kInlineWork = 65536;
constexpr int64_t kMacsPerWork = 16;
constexpr int64_t macs_work(int64_t macs) { return macs / kMacsPerWork; }
// parallel_for for `work` element operations in all: on the calling thread below kInlineWork.
void parallel_for(int64_t ntasks, int64_t work, const std::function<void(int64_t)>& fn);
// Caps the calling thread's parallel_for calls at itself while it lives (the limit of
// set_thread_limit), restoring the caller's own limit after, also on an exception: a
// call whose whole work is below kInlineWork runs inline however many calls it makes.
class InlineScope {
 public:
  InlineScope();
  ~InlineScope();
  InlineScope(const InlineScope&) = delete;
  InlineScope& operator=(const InlineScope&) = delete;

 private:
  int saved_;
};
// The threads a call from this thread uses: get_num_threads(), capped by this thread's
// set_thread_limit. Drivers size their work split with it.
int pool_threads();

}  // namespace convcore::detail
