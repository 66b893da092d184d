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
// Work below this (multiply-adds or element operations in all, a few microseconds on one
// core) runs on the calling thread: waking a pool worker and waiting for it costs as much
// as the work (a training step of a small network makes dozens of such calls).
constexpr int64_t kInlineWork = 65536;
// parallel_for for `work` operations in all: on the calling thread below kInlineWork.
void parallel_for(int64_t ntasks, int64_t work, const std::function<void(int64_t)>& fn);
// The threads a call from this thread uses: get_num_threads(), capped by this thread's
// set_thread_limit. Drivers size their work split with it.
int pool_threads();

}  // namespace convcore::detail
