// The caching allocator. See allocator.hpp.
#include "tensor/cuda/allocator.hpp"

#include <algorithm>
#include <cstdio>
#include <tuple>
#include <vector>

#include "tensor/error.hpp"

namespace loupe::cuda {

std::string format_bytes(size_t nbytes) {
  char text[32];
  const double n = static_cast<double>(nbytes);
  if (nbytes < 1024) {
    std::snprintf(text, sizeof text, "%zu B", nbytes);
  } else if (nbytes < (size_t{1} << 20)) {
    std::snprintf(text, sizeof text, "%.2f KiB", n / 1024.0);
  } else if (nbytes < (size_t{1} << 30)) {
    std::snprintf(text, sizeof text, "%.2f MiB", n / (1024.0 * 1024.0));
  } else {
    std::snprintf(text, sizeof text, "%.2f GiB", n / (1024.0 * 1024.0 * 1024.0));
  }
  return text;
}

namespace {
size_t round_up(size_t n, size_t multiple) { return (n + multiple - 1) / multiple * multiple; }
}  // namespace

bool CachingAllocator::BlockOrder::operator()(const Block* a, const Block* b) const {
  return std::tie(a->stream, a->size, a->data) < std::tie(b->stream, b->size, b->data);
}

CachingAllocator::CachingAllocator(std::unique_ptr<MemorySource> source, std::string device_name)
    : source_(std::move(source)), device_name_(std::move(device_name)) {}

CachingAllocator::~CachingAllocator() {
  // Live blocks are leaked on purpose (their tensors outlive us); cached segments go back.
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_segments();
}

void* CachingAllocator::allocate(size_t nbytes, uintptr_t stream) {
  const size_t size = round_up(std::max<size_t>(nbytes, 1), kRound);
  const bool small = size <= kSmallRequest;
  std::lock_guard<std::mutex> lock(mutex_);
  Block* block = take_cached(size, stream, small);
  if (block != nullptr) {
    ++stats_.cache_hits;
  } else {
    block = new_segment(size, stream, small);
  }
  split(block, size);
  block->allocated = true;
  live_[block->data] = block;
  stats_.allocated += block->size;
  stats_.peak_allocated = std::max(stats_.peak_allocated, stats_.allocated);
  return block->data;
}

// The smallest cached block of this stream that holds `size` bytes (best fit), or null.
CachingAllocator::Block* CachingAllocator::take_cached(size_t size, uintptr_t stream, bool small) {
  Pool& pool = pool_of(small);
  Block key{nullptr, size, stream, small};
  const auto it = pool.lower_bound(&key);
  if (it == pool.end() || (*it)->stream != stream) return nullptr;
  Block* block = *it;
  pool.erase(it);
  return block;
}

CachingAllocator::Block* CachingAllocator::new_segment(size_t size, uintptr_t stream, bool small) {
  const size_t segment = small ? kSmallSegment : round_up(size, kLargeRound);
  const auto fits = [&] { return limit_ == 0 || stats_.reserved + segment <= limit_; };
  void* data = fits() ? source_->malloc(segment) : nullptr;
  if (data == nullptr) {
    // Cached but unused segments may be what the device is missing: give them back and retry.
    ++stats_.oom_retries;
    release_free_segments();
    data = fits() ? source_->malloc(segment) : nullptr;
    if (data == nullptr) throw_out_of_memory(size, segment);
  }
  ++stats_.driver_allocations;
  stats_.reserved += segment;
  stats_.peak_reserved = std::max(stats_.peak_reserved, stats_.reserved);
  return new Block{static_cast<char*>(data), segment, stream, small};
}

// Cuts `block` down to `size` when the rest is worth keeping as a block of its own: any rest in
// the small pool, a rest above 1 MiB in the large pool (smaller rests of a large block would only
// fragment it; they stay attached).
void CachingAllocator::split(Block* block, size_t size) {
  const size_t rest = block->size - size;
  const bool worth_it = block->small ? rest >= kRound : rest > kSmallRequest;
  if (!worth_it) return;
  Block* tail = new Block{block->data + size, rest, block->stream, block->small};
  tail->prev = block;
  tail->next = block->next;
  if (block->next != nullptr) block->next->prev = tail;
  block->next = tail;
  block->size = size;
  pool_of(tail->small).insert(tail);
}

void CachingAllocator::free(void* data) {
  if (data == nullptr) return;
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = live_.find(data);
  LOUPE_CHECK(it != live_.end(), device_name_, ": free of a pointer this allocator did not hand out");
  Block* block = it->second;
  live_.erase(it);
  stats_.allocated -= block->size;
  block->allocated = false;
  Pool& pool = pool_of(block->small);
  // Merge with free neighbours so fragments grow back into large blocks.
  if (Block* prev = block->prev; prev != nullptr && !prev->allocated) {
    pool.erase(prev);
    prev->size += block->size;
    prev->next = block->next;
    if (block->next != nullptr) block->next->prev = prev;
    delete block;
    block = prev;
  }
  if (Block* next = block->next; next != nullptr && !next->allocated) {
    pool.erase(next);
    block->size += next->size;
    block->next = next->next;
    if (next->next != nullptr) next->next->prev = block;
    delete next;
  }
  pool.insert(block);
}

// A free block with no neighbours is a whole segment: it can go back to the source.
void CachingAllocator::release_free_segments() {
  for (Pool* pool : {&small_free_, &large_free_}) {
    std::vector<Block*> whole;
    for (Block* b : *pool) {
      if (b->prev == nullptr && b->next == nullptr) whole.push_back(b);
    }
    for (Block* b : whole) {
      pool->erase(b);
      source_->free(b->data);
      stats_.reserved -= b->size;
      delete b;
    }
  }
}

void CachingAllocator::empty_cache() {
  std::lock_guard<std::mutex> lock(mutex_);
  release_free_segments();
}

void CachingAllocator::throw_out_of_memory(size_t nbytes, size_t segment) {
  throw Error(detail::make_message(
      device_name_, ": out of memory allocating ", format_bytes(nbytes), " (a new segment of ",
      format_bytes(segment), "): allocated ", format_bytes(stats_.allocated), " by tensors, reserved ",
      format_bytes(stats_.reserved), " by the caching allocator, peak allocated ",
      format_bytes(stats_.peak_allocated), ", ", source_->describe(),
      limit_ != 0 ? ", allocator limit " + format_bytes(limit_) : std::string(),
      ". Free tensors that are no longer needed or use a smaller batch."));
}

MemoryStats CachingAllocator::stats() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

void CachingAllocator::reset_peak() {
  std::lock_guard<std::mutex> lock(mutex_);
  stats_.peak_allocated = stats_.allocated;
  stats_.peak_reserved = stats_.reserved;
}

void CachingAllocator::set_limit(size_t bytes) {
  std::lock_guard<std::mutex> lock(mutex_);
  limit_ = bytes;
}

size_t CachingAllocator::block_size(void* data) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const auto it = live_.find(data);
  LOUPE_CHECK(it != live_.end(), device_name_, ": block_size of a pointer this allocator did not hand out");
  return it->second->size;
}

}  // namespace loupe::cuda
