// Host memory for CPU tensors: 64-byte aligned blocks, with large blocks cached for reuse.
//
// Why a cache: a fresh 64 MiB block costs tens of milliseconds of page faults the first time it is
// written — more than the elementwise op that fills it. Training and attribution allocate the same
// large sizes step after step, so freed large blocks are kept (up to a cap) and handed out again.
// Large blocks are 2 MiB aligned. They are not advised as transparent huge pages unless asked:
// with the kernel's usual THP setting (defrag on madvise) each advised fault may compact memory
// first. On a 2-vCPU VM that made the first integrated-gradients call (ResNet18, 50 steps,
// 1.2 GB of new blocks) take 2.4-4.1 s against 1.1-1.8 s without the advice, for no measurable
// gain later (interleaved A/B of the benchmark rows: 0.94-1.10x, within the noise).
//   LOUPE_CPU_CACHE_MB     cap on cached free bytes (default 2048; 0 disables the cache)
//   LOUPE_CPU_HUGE_PAGES   1: advise large blocks as huge pages (MADV_HUGEPAGE)
// Tests: tests/tensor/test_tensor.cpp
#pragma once

#include <cstddef>

namespace loupe::cpu {

struct HostBlock {
  void* data = nullptr;
  size_t capacity = 0;  // bytes actually reserved (what release() must be given back)
};

HostBlock host_allocate(size_t nbytes);
void host_release(HostBlock block);

struct HostCacheStats {
  size_t cached_bytes = 0;  // free blocks held for reuse
  size_t hits = 0;          // allocations served from the cache
  size_t misses = 0;        // large allocations that needed new memory
};
HostCacheStats host_cache_stats();
void host_cache_clear();

// Scratch memory for a kernel: `count` uninitialised elements from host_allocate, given back when
// it goes out of scope. Unlike a std::vector it is not zero-filled, and a large one comes from the
// cache instead of as fresh pages to fault in and clear on every call.
template <typename T>
class HostScratch {
 public:
  HostScratch() = default;
  explicit HostScratch(size_t count) : block_(host_allocate(count * sizeof(T))) {}
  ~HostScratch() { host_release(block_); }
  HostScratch(const HostScratch&) = delete;
  HostScratch& operator=(const HostScratch&) = delete;
  T* data() const { return static_cast<T*>(block_.data); }

  // Room for at least `count` elements; a buffer too small is replaced (its contents are not
  // kept: scratch is written before it is read).
  T* reserve(size_t count) {
    if (block_.data == nullptr || block_.capacity < count * sizeof(T)) {
      host_release(block_);
      block_ = {};  // released: if the allocation below throws, the destructor must not release it again
      block_ = host_allocate(count * sizeof(T));
    }
    return data();
  }

 private:
  HostBlock block_;
};

}  // namespace loupe::cpu
