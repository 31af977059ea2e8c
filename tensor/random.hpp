// Generator: a counter-based Philox4x32-10 random number generator (Salmon et al., SC'11).
//
// Philox maps (key = seed, counter) to four 32-bit words with no hidden state, so the numbers a
// tensor gets depend only on (seed, offset, element index): never on the thread count, the
// chunking, or the device (the CUDA backend runs the same function per element).
// The generator's state is (seed, offset); each op reserves a block of counters by advancing the
// offset, so consecutive calls get fresh numbers and a checkpoint can restore the stream exactly.
// Thread safety: reserve() is one atomic fetch-add, so threads sharing a generator (data-loader
// workers drawing augmentations, dropout in parallel regions) always get disjoint counter blocks;
// which thread gets which block then depends on timing, so code that must be reproducible gives
// each thread its own generator or reserves on one thread. set_state/manual_seed must not race
// with reserve (they replace the stream).
// Tests: tests/tensor/test_random.cpp
#pragma once

#include <array>
#include <atomic>
#include <cstdint>

namespace loupe {

// One Philox4x32-10 block: four uniform 32-bit words for (key, counter).
std::array<uint32_t, 4> philox4x32(uint64_t key, uint64_t counter_lo, uint64_t counter_hi = 0);

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : seed_(seed) {}
  Generator(const Generator& other) : seed_(other.seed()), offset_(other.offset()) {}
  Generator& operator=(const Generator& other) {
    set_state(other.seed(), other.offset());
    return *this;
  }

  uint64_t seed() const { return seed_.load(std::memory_order_relaxed); }
  uint64_t offset() const { return offset_.load(std::memory_order_relaxed); }
  void set_state(uint64_t seed, uint64_t offset) {
    seed_.store(seed, std::memory_order_relaxed);
    offset_.store(offset, std::memory_order_relaxed);
  }
  void manual_seed(uint64_t seed) { set_state(seed, 0); }

  // Reserves `blocks` Philox blocks (4 words each) and returns the first block's counter.
  uint64_t reserve(uint64_t blocks) { return offset_.fetch_add(blocks, std::memory_order_relaxed); }

 private:
  // Atomics (relaxed: only the values matter, they order no other memory).
  std::atomic<uint64_t> seed_;
  std::atomic<uint64_t> offset_{0};
};

// The process-wide generator used when an op is given none (seed 0 until manual_seed).
Generator& default_generator();
void manual_seed(uint64_t seed);

}  // namespace loupe
