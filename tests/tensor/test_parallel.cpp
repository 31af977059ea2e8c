// The thread pool (tensor/parallel.hpp): LOUPE_NUM_THREADS parsing, every index visited once,
// nested calls inline, exceptions carried to the caller, and Generator::reserve from many threads
// (disjoint blocks). These are the tests the ThreadSanitizer run covers (./run test --tsan).
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <thread>
#include <vector>

#include "tensor/parallel.hpp"
#include "tensor/random.hpp"
#include "tensor/error.hpp"

namespace loupe::test {

TEST_CASE("LOUPE_NUM_THREADS: an integer in [1, 1024]; 0, negative, text and huge values are refused") {
  CHECK(parse_thread_count(nullptr) >= 1);
  CHECK(parse_thread_count("") >= 1);
  CHECK(parse_thread_count("1") == 1);
  CHECK(parse_thread_count("16") == 16);
  CHECK(parse_thread_count("1024") == 1024);
  for (const char* bad : {"0", "-1", "abc", "4x", " 4", "1.5", "1025", "99999999999999999999"}) {
    INFO(bad);
    CHECK_THROWS_WITH_AS(parse_thread_count(bad), doctest::Contains("LOUPE_NUM_THREADS"), Error);
    const std::string quoted = std::string("'") + bad + "'";
    CHECK_THROWS_WITH_AS(parse_thread_count(bad), doctest::Contains(quoted.c_str()), Error);
  }
}

TEST_CASE("parallel_for: every index once, for several thread counts; nested loops run inline") {
  const int saved = num_threads();
  for (int threads : {1, 2, 3, 8}) {
    set_num_threads(threads);
    std::vector<std::atomic<int>> hits(10007);
    parallel_for(0, 10007, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        hits[static_cast<size_t>(i)].fetch_add(1);
        if (i % 1000 == 0) parallel_for(0, 100, 1, [&](int64_t, int64_t) {});  // nested: inline
      }
    });
    CHECK(std::all_of(hits.begin(), hits.end(), [](const std::atomic<int>& h) { return h.load() == 1; }));
  }
  set_num_threads(saved);
}

TEST_CASE("parallel_for: an exception in one chunk reaches the caller; the pool still works after it") {
  const int saved = num_threads();
  set_num_threads(4);
  CHECK_THROWS_WITH_AS(parallel_for(0, 1000, 1,
                                    [](int64_t lo, int64_t) {
                                      if (lo == 0) throw Error("chunk failed");
                                    }),
                       "chunk failed", Error);
  std::atomic<int64_t> sum{0};
  parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) sum += i;
  });
  CHECK(sum.load() == 999 * 1000 / 2);
  set_num_threads(saved);
}

TEST_CASE("Generator::reserve from many threads gives disjoint blocks and advances by the total") {
  Generator generator(7);
  constexpr int kThreads = 8, kCalls = 2000;
  std::vector<std::vector<uint64_t>> firsts(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCalls; ++i) firsts[t].push_back(generator.reserve(3));
    });
  }
  for (auto& thread : threads) thread.join();
  std::vector<uint64_t> all;
  for (const auto& f : firsts) all.insert(all.end(), f.begin(), f.end());
  std::sort(all.begin(), all.end());
  // Blocks of 3 starting at 0, 3, 6, ...: none lost, none shared.
  for (size_t i = 0; i < all.size(); ++i) CHECK_EQ(all[i], 3 * i);
  CHECK(generator.offset() == uint64_t(3) * kThreads * kCalls);
  // Copies carry the state.
  Generator copy = generator;
  CHECK(copy.seed() == 7);
  CHECK(copy.offset() == generator.offset());
}

}  // namespace loupe::test
