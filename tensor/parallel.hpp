// parallel_for over a small process-wide thread pool.
// The pool has LOUPE_NUM_THREADS workers (default: all cores). Work is split into contiguous
// chunks of at least `grain` iterations, so small loops run inline on the calling thread.
// Nested calls run inline too (no oversubscription).
// Tests: tests/tensor/test_parallel.cpp
#pragma once

#include <cstdint>
#include <functional>

namespace loupe {

int num_threads();
void set_num_threads(int threads);  // for benchmarks and tests; 1 disables the pool

// Calls body(chunk_begin, chunk_end) over disjoint chunks covering [begin, end).
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& body);

}  // namespace loupe
