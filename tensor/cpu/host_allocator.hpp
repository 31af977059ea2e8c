// Host memory for CPU tensors: 64-byte aligned blocks, with large blocks cached for reuse.
//
// Why a cache: a fresh 64 MiB block costs tens of milliseconds of page faults the first time it is
// written — more than the elementwise op that fills it. Training and attribution allocate the same
// large sizes step after step, so freed large blocks are kept (up to a cap) and handed out again.
// Large blocks are 2 MiB aligned and advised as huge pages where the kernel allows it.
//   LOUPE_CPU_CACHE_MB  cap on cached free bytes (default 2048; 0 disables the cache)
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

}  // namespace loupe::cpu
