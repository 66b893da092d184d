// threadpool.cpp — std::thread pool sized from the CPU affinity mask, rebuilt after fork.
#include "threadpool.hpp"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "convcore/runtime.hpp"
#include "convcore/types.hpp"

namespace convcore::detail {
namespace {

int affinity_cpus() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n > 0) return n;
  }
  unsigned hc = std::thread::hardware_concurrency();
  return hc > 0 ? static_cast<int>(hc) : 1;
}

int initial_threads() {
  const char* env = std::getenv("CONVCORE_NUM_THREADS");
  if (env == nullptr || *env == '\0') return affinity_cpus();
  char* end = nullptr;
  long v = std::strtol(env, &end, 10);
  if (*end != '\0' || v < 1 || v > 1024)
    throw value_error(std::string("CONVCORE_NUM_THREADS='") + env +
                      "' is not a whole number from 1 to 1024");
  return static_cast<int>(v);
}

// Polls the interrupt handler (if any) at most every kPollInterval, on the calling thread.
constexpr auto kPollInterval = std::chrono::milliseconds(20);
// How long a worker that finished a job waits awake for the next one.
constexpr auto kSpin = std::chrono::microseconds(200);
std::atomic<InterruptHandler> g_handler{nullptr};

// The calling thread's cap on the threads of its calls (set_thread_limit; 0: none).
thread_local int t_limit = 0;

class InterruptPoll {
 public:
  bool interrupted() {
    const InterruptHandler h = g_handler.load(std::memory_order_relaxed);
    if (h == nullptr) return false;
    const auto now = std::chrono::steady_clock::now();
    if (now < next_) return false;
    next_ = now + kPollInterval;
    return h();
  }

 private:
  std::chrono::steady_clock::time_point next_ = std::chrono::steady_clock::now() + kPollInterval;
};

class Pool {
 public:
  explicit Pool(int nthreads) {
    for (int i = 1; i < nthreads; ++i) workers_.emplace_back([this, i] { worker(i - 1); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(m_);
      stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs on the caller and up to `helpers` workers. Returns false (running nothing) when
  // another job holds the pool. Workers join while the job has unclaimed tasks; once the
  // caller has claimed the last one it waits only for the workers that joined, never for
  // one still asleep or descheduled (on a shared machine that wait was a time slice).
  bool try_run(int64_t ntasks, const std::function<void(int64_t)>& fn, int helpers) {
    std::unique_lock<std::mutex> busy(busy_, std::try_to_lock);
    if (!busy.owns_lock()) return false;
    {
      std::lock_guard<std::mutex> lk(m_);
      fn_ = &fn;
      ntasks_ = ntasks;
      next_.store(0);
      error_ = nullptr;
      helpers_ = std::min(helpers, static_cast<int>(workers_.size()));
      open_ = true;
      running_ = 0;
      posted_.store(++generation_, std::memory_order_release);
    }
    cv_.notify_all();
    InterruptPoll poll;
    work(&poll);
    std::unique_lock<std::mutex> lk(m_);
    open_ = false;  // every task is claimed: a worker waking from now on stays out
    done_cv_.wait(lk, [this] { return running_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
    return true;
  }

 private:
  // poll: the calling thread's interrupt poll (null on workers).
  void work(InterruptPoll* poll) {
    for (;;) {
      int64_t t = next_.fetch_add(1);
      if (t >= ntasks_) return;
      try {
        (*fn_)(t);
        if (poll != nullptr && poll->interrupted()) throw interrupted("convcore: interrupted");
      } catch (...) {
        std::lock_guard<std::mutex> lk(m_);
        if (!error_) error_ = std::current_exception();
        next_.store(ntasks_);  // skip the remaining tasks
      }
    }
  }
  // index: 0 for the first worker; workers from `helpers_` on sit this job out.
  void worker(int index) {
#if defined(__linux__)
    // Named so that `top -H`, gdb and the tests can tell the pool's threads from others.
    pthread_setname_np(pthread_self(), "convcore-pool");
#endif
    uint64_t seen = 0;
    for (;;) {
      // Spin a moment for the next job before sleeping (yielding, so a loaded machine's
      // other threads run): a call's next phase, or the next call of a loop, comes within
      // microseconds, and a worker that sleeps is woken late once its CPU has halted — on
      // a KVM guest 0.4-1.7 ms were measured, longer than many whole calls.
      const auto until = std::chrono::steady_clock::now() + kSpin;
      while (posted_.load(std::memory_order_acquire) == seen &&
             std::chrono::steady_clock::now() < until)
        std::this_thread::yield();
      {
        std::unique_lock<std::mutex> lk(m_);
        cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
        if (stop_) return;
        seen = generation_;
        if (index >= helpers_ || !open_) continue;
        ++running_;
      }
      work(nullptr);
      std::lock_guard<std::mutex> lk(m_);
      if (--running_ == 0) done_cv_.notify_one();
    }
  }

  std::vector<std::thread> workers_;
  std::mutex busy_;  // held by the one caller whose job the pool runs
  std::mutex m_;
  std::condition_variable cv_, done_cv_;
  const std::function<void(int64_t)>* fn_ = nullptr;
  int64_t ntasks_ = 0;
  std::atomic<int64_t> next_{0};
  std::exception_ptr error_;
  int helpers_ = 0;    // workers that may take part in the current job
  bool open_ = false;  // the current job still has unclaimed tasks: workers may join
  int running_ = 0;    // workers that joined the current job and are still in it
  uint64_t generation_ = 0;
  std::atomic<uint64_t> posted_{0};  // generation_, read by spinning workers without m_
  bool stop_ = false;
};

// The pool and its guard are heap objects that a forked child abandons (their threads
// do not exist there) and replaces on first use.
// Callers hold a shared_ptr copy while they run, so resizing never frees a pool in use:
// the last holder destroys it.
std::mutex* g_mutex = new std::mutex;
std::shared_ptr<Pool>* g_pool = new std::shared_ptr<Pool>;
int g_threads = 0;  // 0: not yet read from the environment

void after_fork_in_child() {
  // Leaked on purpose: destroying the old pool would join threads that do not exist.
  g_mutex = new std::mutex;
  g_pool = new std::shared_ptr<Pool>;
}

std::shared_ptr<Pool> pool_locked() {
  static bool registered = (pthread_atfork(nullptr, nullptr, after_fork_in_child), true);
  (void)registered;
  if (g_threads == 0) g_threads = initial_threads();
  // Grows only: a smaller count leaves the extra workers parked (a call asks fewer to
  // help), so switching counts back and forth (threadpoolctl blocks, a benchmark
  // interleaving 1 and N threads) starts no threads: each switch used to destroy the
  // workers and start new ones, with empty thread-local scratch, for the next call.
  if (!*g_pool || (*g_pool)->threads() < g_threads) *g_pool = std::make_shared<Pool>(g_threads);
  return *g_pool;
}

}  // namespace

int global_threads() {
  std::lock_guard<std::mutex> lk(*g_mutex);
  if (g_threads == 0) g_threads = initial_threads();
  return g_threads;
}

int pool_threads() {
  const int n = global_threads();
  return t_limit > 0 ? std::min(t_limit, n) : n;
}

void parallel_for(int64_t ntasks, const std::function<void(int64_t)>& fn) {
  if (ntasks <= 0) return;
  if (ntasks > 1 && t_limit != 1) {
    std::shared_ptr<Pool> pool;
    int threads = 1;
    {
      std::unique_lock<std::mutex> lk(*g_mutex, std::try_to_lock);
      if (lk.owns_lock()) {
        pool = pool_locked();
        threads = g_threads;
      }
    }
    if (t_limit > 0) threads = std::min(threads, t_limit);
    if (pool && threads > 1 && pool->try_run(ntasks, fn, threads - 1)) return;
  }
  InterruptPoll poll;
  for (int64_t t = 0; t < ntasks; ++t) {
    fn(t);
    if (poll.interrupted()) throw interrupted("convcore: interrupted");
  }
}

void parallel_for(int64_t ntasks, int64_t work, const std::function<void(int64_t)>& fn) {
  if (work >= kInlineWork) return parallel_for(ntasks, fn);
  InterruptPoll poll;
  for (int64_t t = 0; t < ntasks; ++t) {
    fn(t);
    if (poll.interrupted()) throw interrupted("convcore: interrupted");
  }
}

InlineScope::InlineScope() : saved_(t_limit) { t_limit = 1; }
InlineScope::~InlineScope() { t_limit = saved_; }

}  // namespace convcore::detail

namespace convcore {

void set_num_threads(int n) {
  if (n < 1 || n > 1024) throw value_error("set_num_threads: n must be from 1 to 1024");
  std::lock_guard<std::mutex> lk(*detail::g_mutex);
  detail::g_threads = n;
}

int get_num_threads() { return detail::global_threads(); }

void set_thread_limit(int n) {
  if (n < 0 || n > 1024) throw value_error("set_thread_limit: n must be from 0 to 1024");
  detail::t_limit = n;
}

int get_thread_limit() { return detail::t_limit; }

void set_interrupt_handler(InterruptHandler handler) { detail::g_handler.store(handler); }

}  // namespace convcore
