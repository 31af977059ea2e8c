// The caching allocator behind every CUDA tensor. cudaMalloc and cudaFree are slow (they
// synchronise the device), and a training step frees and re-allocates the same sizes over and
// over, so freed blocks are kept and handed out again:
//
//   - sizes are rounded up to 512 bytes (the size classes);
//   - requests up to 1 MiB come from 2 MiB segments shared by many small blocks, larger requests
//     from a segment of their own rounded up to 2 MiB;
//   - a cached block larger than the request is split, and the rest stays cached; a freed block
//     merges with free neighbours of its segment, so fragments grow back into large blocks;
//   - blocks remember the stream they were allocated on and are reused only on that stream (work
//     queued on one stream runs in order, so a block freed on the host can be handed to the next
//     kernel of the same stream without waiting for the old one to finish);
//   - when the driver has no memory left, every wholly free cached segment is returned and the
//     request retried once; if it still fails, the loupe::Error names the request and the
//     statistics (allocated, reserved, peak) and what the device has left.
//
// This file knows nothing of CUDA: memory comes from a MemorySource (cudaMalloc on a GPU, host
// memory in tests), so the bookkeeping is tested on machines without a GPU.
// Tests: tests/cuda/test_allocator.cpp
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

#include "tensor/cuda/backend.hpp"

namespace loupe::cuda {

// Where the allocator's segments come from.
class MemorySource {
 public:
  virtual ~MemorySource() = default;
  virtual void* malloc(size_t nbytes) = 0;  // nullptr when out of memory
  virtual void free(void* data) noexcept = 0;
  // What the device has left, for out-of-memory messages: "device free 1.2 GiB of 79.1 GiB".
  virtual std::string describe() const = 0;
};

// "512 B", "3.00 MiB", "1.50 GiB".
std::string format_bytes(size_t nbytes);

class CachingAllocator {
 public:
  static constexpr size_t kRound = 512;                 // size classes: multiples of 512 bytes
  static constexpr size_t kSmallRequest = 1 << 20;      // up to 1 MiB: the small pool
  static constexpr size_t kSmallSegment = 2 << 20;      // small blocks are cut from 2 MiB segments
  static constexpr size_t kLargeRound = 2 << 20;        // large segments: multiples of 2 MiB

  CachingAllocator(std::unique_ptr<MemorySource> source, std::string device_name);
  ~CachingAllocator();  // returns every segment to the source
  CachingAllocator(const CachingAllocator&) = delete;
  CachingAllocator& operator=(const CachingAllocator&) = delete;

  // A block of at least `nbytes` for work queued on `stream` (an opaque stream id).
  void* allocate(size_t nbytes, uintptr_t stream = 0);
  void free(void* data);
  // Returns every wholly free cached segment to the source.
  void empty_cache();

  MemoryStats stats() const;
  void reset_peak();
  // Reserve at most `bytes` in all (0: no limit beyond the device's): to share a GPU, and to test
  // the out-of-memory path.
  void set_limit(size_t bytes);
  // The rounded size of a live block (tests).
  size_t block_size(void* data) const;

 private:
  struct Block {
    char* data;
    size_t size;
    uintptr_t stream;
    bool small;           // from the small pool
    bool allocated = false;
    Block* prev = nullptr;  // neighbours in the same segment (null at the segment's ends)
    Block* next = nullptr;
  };
  // Free blocks ordered by (stream, size, address): lower_bound finds the best fit on a stream.
  struct BlockOrder {
    bool operator()(const Block* a, const Block* b) const;
  };
  using Pool = std::set<Block*, BlockOrder>;

  Pool& pool_of(bool small) { return small ? small_free_ : large_free_; }
  Block* take_cached(size_t size, uintptr_t stream, bool small);
  Block* new_segment(size_t size, uintptr_t stream, bool small);
  void split(Block* block, size_t size);
  void release_free_segments();
  [[noreturn]] void throw_out_of_memory(size_t nbytes, size_t segment);

  std::unique_ptr<MemorySource> source_;
  std::string device_name_;
  mutable std::mutex mutex_;
  Pool small_free_, large_free_;
  std::unordered_map<void*, Block*> live_;
  MemoryStats stats_;
  size_t limit_ = 0;
};

}  // namespace loupe::cuda
