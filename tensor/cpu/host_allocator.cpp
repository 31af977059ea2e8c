// Host allocator with a cache of large blocks. See host_allocator.hpp.
#include "tensor/cpu/host_allocator.hpp"

#include <sys/mman.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string_view>

#include "tensor/error.hpp"

namespace loupe::cpu {

namespace {

constexpr size_t kAlignment = 64;
constexpr size_t kLargeBlock = size_t(1) << 20;  // blocks from 1 MiB up are cached
constexpr size_t kHugePage = size_t(2) << 20;    // ... rounded to and aligned on 2 MiB

size_t cache_limit() {
  static const size_t limit = [] {
    const char* env = std::getenv("LOUPE_CPU_CACHE_MB");
    const long mb = env ? std::atol(env) : 2048;
    return mb > 0 ? size_t(mb) << 20 : size_t(0);
  }();
  return limit;
}

struct Cache {
  std::mutex mutex;
  std::multimap<size_t, void*> free_blocks;  // capacity -> block
  HostCacheStats stats;
};

bool advise_huge_pages() {
  static const bool advise = [] {
    const char* env = std::getenv("LOUPE_CPU_HUGE_PAGES");
    return env != nullptr && std::string_view(env) == "1";
  }();
  return advise;
}

Cache& cache() {
  static Cache* instance = new Cache();  // never destroyed: storages may outlive static destructors
  return *instance;
}

}  // namespace

HostBlock host_allocate(size_t nbytes) {
  if (nbytes < kLargeBlock) {
    // aligned_alloc needs a multiple of the alignment; a zero-byte tensor still needs a distinct pointer.
    const size_t rounded = nbytes == 0 ? kAlignment : (nbytes + kAlignment - 1) / kAlignment * kAlignment;
    void* data = std::aligned_alloc(kAlignment, rounded);
    LOUPE_CHECK(data != nullptr, "allocate: out of memory for ", nbytes, " bytes on cpu");
    return {data, rounded};
  }
  const size_t capacity = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
  {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    // Reuse a free block of the same size class, or one at most 25% larger.
    auto it = c.free_blocks.lower_bound(capacity);
    if (it != c.free_blocks.end() && it->first <= capacity + capacity / 4) {
      HostBlock block{it->second, it->first};
      c.stats.cached_bytes -= it->first;
      ++c.stats.hits;
      c.free_blocks.erase(it);
      return block;
    }
    ++c.stats.misses;
  }
  void* data = std::aligned_alloc(kHugePage, capacity);
  LOUPE_CHECK(data != nullptr, "allocate: out of memory for ", nbytes, " bytes on cpu");
#if defined(MADV_HUGEPAGE)
  if (advise_huge_pages()) madvise(data, capacity, MADV_HUGEPAGE);  // a hint: fewer faults and TLB misses if granted
#endif
  return {data, capacity};
}

void host_release(HostBlock block) {
  if (block.data == nullptr) return;
  if (block.capacity >= kLargeBlock && cache_limit() > 0) {
    Cache& c = cache();
    std::lock_guard<std::mutex> lock(c.mutex);
    // Make room by dropping the largest cached blocks first; keep this one if it fits at all.
    while (!c.free_blocks.empty() && c.stats.cached_bytes + block.capacity > cache_limit()) {
      auto largest = std::prev(c.free_blocks.end());
      c.stats.cached_bytes -= largest->first;
      std::free(largest->second);
      c.free_blocks.erase(largest);
    }
    if (block.capacity <= cache_limit()) {
      c.free_blocks.emplace(block.capacity, block.data);
      c.stats.cached_bytes += block.capacity;
      return;
    }
  }
  std::free(block.data);
}

HostCacheStats host_cache_stats() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.stats;
}

void host_cache_clear() {
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  for (auto& [capacity, data] : c.free_blocks) std::free(data);
  c.free_blocks.clear();
  c.stats.cached_bytes = 0;
}

}  // namespace loupe::cpu
