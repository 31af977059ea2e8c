// Thread pool behind parallel_for. See parallel.hpp.
//
// One job at a time: the caller publishes a job (body + chunk count), workers and the caller
// claim chunk indices from an atomic counter, and the caller waits until all chunks are done.
// That keeps results independent of which thread ran which chunk: chunks are fixed by the range,
// the grain and the thread count, never by timing.
#include "tensor/parallel.hpp"

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tensor/error.hpp"

namespace loupe {

namespace {

thread_local bool inside_parallel_region = false;

// How long a worker watches for the next job, and the caller for the last chunks of its job,
// before sleeping on a condition variable (see spin_for_next_job and run).
constexpr std::chrono::microseconds kWorkerSpin{50};
constexpr std::chrono::microseconds kCallerSpin{200};

class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  ~ThreadPool() { stop_workers(); }

  int size() const { return threads_; }

  void resize(int threads) {
    stop_workers();
    threads_ = std::max(1, threads);
    stopping_ = false;
    for (int i = 1; i < threads_; ++i) workers_.emplace_back([this] { worker_loop(); });
  }

  void run(int64_t chunks, const std::function<void(int64_t)>& chunk_body) {
    std::lock_guard<std::mutex> job_guard(job_mutex_);  // one job at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      body_ = &chunk_body;
      total_chunks_ = chunks;
      next_chunk_ = 0;
      done_chunks_ = 0;
      error_ = nullptr;
      ++generation_;
      published_.store(generation_, std::memory_order_release);
    }
    wake_.notify_all();
    work_on_chunks(chunk_body, chunks);
    // The last chunks usually finish within microseconds of the caller's own: watching for them
    // before sleeping saves a futex sleep and wake-up, which on a virtual machine can take tens
    // of microseconds. Batch-1 guided backprop (ResNet18, hundreds of short parallel loops per
    // call, 2 threads, interleaved A/B on a 2-vCPU VM) measured 1.06x faster (DeepLIFT 1.03x)
    // while the VM ran slowly, and unchanged while it ran fast; batch-25 methods unchanged.
    spin_until([&] { return done_chunks_.load(std::memory_order_acquire) == chunks; }, kCallerSpin);
    std::unique_lock<std::mutex> lock(mutex_);
    // Wait for every chunk, and for every worker that joined this job to leave it, so that no
    // worker can carry this job's state into the next one.
    finished_.wait(lock, [&] { return done_chunks_ == total_chunks_ && active_workers_ == 0; });
    body_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void work_on_chunks(const std::function<void(int64_t)>& body, int64_t total) {
    inside_parallel_region = true;
    for (;;) {
      const int64_t chunk = next_chunk_.fetch_add(1);
      if (chunk >= total) break;
      try {
        body(chunk);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (done_chunks_.fetch_add(1) + 1 == total) {
        std::lock_guard<std::mutex> lock(mutex_);
        finished_.notify_all();
      }
    }
    inside_parallel_region = false;
  }

  // Busy-waits until done() or for about `limit`, whichever comes first.
  template <typename Done>
  static void spin_until(Done&& done, std::chrono::microseconds limit) {
    const auto until = std::chrono::steady_clock::now() + limit;
    for (int i = 0;; ++i) {
      if (done()) return;
      if ((i & 63) == 63 && std::chrono::steady_clock::now() > until) return;
#if defined(__x86_64__)
      __builtin_ia32_pause();
#endif
    }
  }

  // After a job, a worker watches for the next one for a few microseconds before it sleeps:
  // kernels often run many short parallel loops back to back, and a sleeping worker wakes too
  // late to take its share of a short loop (the caller then runs every chunk itself).
  void spin_for_next_job(uint64_t seen) const {
    spin_until([&] { return published_.load(std::memory_order_acquire) != seen; }, kWorkerSpin);
  }

  void worker_loop() {
    uint64_t seen = 0;
    for (;;) {
      const std::function<void(int64_t)>* body = nullptr;
      int64_t total = 0;
      spin_for_next_job(seen);
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && body_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
        body = body_;
        total = total_chunks_;
        ++active_workers_;
      }
      work_on_chunks(*body, total);
      {
        std::lock_guard<std::mutex> lock(mutex_);
        --active_workers_;
      }
      finished_.notify_all();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    wake_.notify_all();
    for (auto& worker : workers_) worker.join();
    workers_.clear();
  }

  int threads_ = 1;
  std::vector<std::thread> workers_;
  std::mutex job_mutex_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable finished_;
  const std::function<void(int64_t)>* body_ = nullptr;
  int64_t total_chunks_ = 0;
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> done_chunks_{0};
  std::exception_ptr error_;
  uint64_t generation_ = 0;
  std::atomic<uint64_t> published_{0};  // generation_, readable without the lock
  int active_workers_ = 0;
  bool stopping_ = false;
};

ThreadPool& pool() {
  // A bad LOUPE_NUM_THREADS throws here; the static is then retried on the next call.
  static ThreadPool instance(parse_thread_count(std::getenv("LOUPE_NUM_THREADS")));
  return instance;
}

}  // namespace

int parse_thread_count(const char* text) {
  if (text == nullptr || *text == '\0') {
    const unsigned cores = std::thread::hardware_concurrency();
    return cores == 0 ? 1 : static_cast<int>(std::min<unsigned>(cores, kMaxThreads));
  }
  const std::string value(text);
  long long n = 0;
  const auto [end, error] = std::from_chars(value.data(), value.data() + value.size(), n);
  LOUPE_CHECK(error == std::errc() && end == value.data() + value.size() && n >= 1 && n <= kMaxThreads,
              "LOUPE_NUM_THREADS must be an integer in [1, ", kMaxThreads, "] (or unset for all cores), got '", value,
              "'");
  return static_cast<int>(n);
}

void check_thread_environment() { (void)pool(); }

int num_threads() { return pool().size(); }

void set_num_threads(int threads) { pool().resize(threads); }

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body) {
  if (end <= begin) return;
  const int64_t n = end - begin;
  grain = std::max<int64_t>(grain, 1);
  const int threads = num_threads();
  if (threads == 1 || n <= grain || inside_parallel_region) {
    body(begin, end);
    return;
  }
  const int64_t chunks = std::min<int64_t>(threads, (n + grain - 1) / grain);
  const int64_t per_chunk = (n + chunks - 1) / chunks;
  pool().run(chunks, [&](int64_t chunk) {
    const int64_t lo = begin + chunk * per_chunk;
    const int64_t hi = std::min(end, lo + per_chunk);
    if (lo < hi) body(lo, hi);
  });
}

}  // namespace loupe
