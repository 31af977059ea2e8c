// parallel_for over a small process-wide thread pool.
// The pool has LOUPE_NUM_THREADS workers (default: all cores; a value that is not an integer in
// [1, 1024] is refused with a loupe::Error naming the variable). Work is split into contiguous
// chunks of at least `grain` iterations, so small loops run inline on the calling thread.
// Nested calls run inline too (no oversubscription).
// Tests: tests/tensor/test_parallel.cpp
#pragma once

#include <cstdint>
#include <functional>

namespace loupe {

int num_threads();
// The thread count that LOUPE_NUM_THREADS asks for (`text`, null when unset: all cores); throws
// loupe::Error for anything but an integer in [1, kMaxThreads], e.g. "0", "-2", "abc", "4x".
constexpr int kMaxThreads = 1024;
int parse_thread_count(const char* text);
// Checks LOUPE_NUM_THREADS now (the pool reads it on first use); commands call it before any work
// so that a bad value stops them with a clear message instead of surfacing in a worker thread.
void check_thread_environment();
void set_num_threads(int threads);  // for benchmarks and tests; 1 disables the pool

// Calls body(chunk_begin, chunk_end) over disjoint chunks covering [begin, end).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body);

}  // namespace loupe
