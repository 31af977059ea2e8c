// The caching allocator's bookkeeping (tensor/cuda/allocator.hpp) on host memory: size classes,
// splitting, merging, stream-aware reuse, statistics and the out-of-memory path. The allocator
// knows nothing of CUDA, so these run on every machine; tests/cuda/test_cuda.cpp repeats the key
// ones on a GPU.
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>

#include "tensor/cuda/allocator.hpp"
#include "tensor/error.hpp"

namespace loupe::test {

namespace {

using cuda::CachingAllocator;
constexpr size_t kMiB = size_t{1} << 20;

// Host memory with a capacity, counting what is outstanding.
class HostMemory final : public cuda::MemorySource {
 public:
  explicit HostMemory(size_t capacity, size_t* outstanding) : capacity_(capacity), outstanding_(outstanding) {}
  void* malloc(size_t nbytes) override {
    if (*outstanding_ + nbytes > capacity_) return nullptr;
    void* p = std::malloc(nbytes);
    *outstanding_ += nbytes;
    sizes_.insert({p, nbytes});
    return p;
  }
  void free(void* data) noexcept override {
    for (auto it = sizes_.begin(); it != sizes_.end(); ++it) {
      if (it->first == data) {
        *outstanding_ -= it->second;
        sizes_.erase(it);
        break;
      }
    }
    std::free(data);
  }
  std::string describe() const override { return "host test memory"; }

 private:
  size_t capacity_;
  size_t* outstanding_;
  std::set<std::pair<void*, size_t>> sizes_;
};

struct Fixture {
  size_t outstanding = 0;
  CachingAllocator allocator;
  explicit Fixture(size_t capacity = 64 * kMiB)
      : allocator(std::make_unique<HostMemory>(capacity, &outstanding), "test:0") {}
};

char* at(void* p) { return static_cast<char*>(p); }

}  // namespace

TEST_CASE("allocator: sizes are rounded to 512-byte classes") {
  Fixture f;
  void* a = f.allocator.allocate(1);
  void* b = f.allocator.allocate(1000);
  void* c = f.allocator.allocate(0);
  CHECK(f.allocator.block_size(a) == 512);
  CHECK(f.allocator.block_size(b) == 1024);
  CHECK(f.allocator.block_size(c) == 512);
  CHECK(f.allocator.stats().allocated == 2048);
  f.allocator.free(a);
  f.allocator.free(b);
  f.allocator.free(c);
  CHECK(f.allocator.stats().allocated == 0);
}

TEST_CASE("allocator: small blocks are cut from one 2 MiB segment") {
  Fixture f;
  void* a = f.allocator.allocate(512);
  void* b = f.allocator.allocate(512);
  CHECK(at(b) == at(a) + 512);
  const cuda::MemoryStats s = f.allocator.stats();
  CHECK(s.reserved == CachingAllocator::kSmallSegment);
  CHECK(s.driver_allocations == 1);
  CHECK(f.outstanding == CachingAllocator::kSmallSegment);
  f.allocator.free(a);
  f.allocator.free(b);
}

TEST_CASE("allocator: a freed block is reused for the same size without asking the source") {
  Fixture f;
  void* a = f.allocator.allocate(4 * kMiB);
  f.allocator.free(a);
  void* b = f.allocator.allocate(4 * kMiB);
  CHECK(b == a);
  const cuda::MemoryStats s = f.allocator.stats();
  CHECK(s.driver_allocations == 1);
  CHECK(s.cache_hits == 1);
  f.allocator.free(b);
}

TEST_CASE("allocator: freed neighbours merge back into one block") {
  Fixture f;
  void* a = f.allocator.allocate(1024);
  void* b = f.allocator.allocate(1024);
  void* c = f.allocator.allocate(1024);
  f.allocator.free(a);
  f.allocator.free(b);  // merges with a
  void* d = f.allocator.allocate(2048);
  CHECK(d == a);
  CHECK(f.allocator.block_size(d) == 2048);
  f.allocator.free(c);
  f.allocator.free(d);
  // Everything merged: the whole segment is one free block again and can be returned.
  f.allocator.empty_cache();
  CHECK(f.allocator.stats().reserved == 0);
  CHECK(f.outstanding == 0);
}

TEST_CASE("allocator: large requests split only when the rest is large") {
  Fixture f;
  void* a = f.allocator.allocate(3 * kMiB);  // 4 MiB segment, 1 MiB rest stays attached
  CHECK(f.allocator.block_size(a) == 4 * kMiB);
  void* b = f.allocator.allocate(5 * kMiB / 2);  // 4 MiB segment, 1.5 MiB rest split off
  CHECK(f.allocator.block_size(b) == 5 * kMiB / 2);
  void* c = f.allocator.allocate(3 * kMiB / 2);  // served from b's rest
  CHECK(at(c) == at(b) + 5 * kMiB / 2);
  CHECK(f.allocator.stats().driver_allocations == 2);
  f.allocator.free(a);
  f.allocator.free(b);
  f.allocator.free(c);
}

TEST_CASE("allocator: blocks are reused only on the stream they were allocated on") {
  Fixture f;
  void* a = f.allocator.allocate(4 * kMiB, /*stream=*/1);
  f.allocator.free(a);
  void* b = f.allocator.allocate(4 * kMiB, /*stream=*/2);
  CHECK(b != a);
  void* c = f.allocator.allocate(4 * kMiB, /*stream=*/1);
  CHECK(c == a);
  f.allocator.free(b);
  f.allocator.free(c);
}

TEST_CASE("allocator: statistics track allocated, reserved and peak") {
  Fixture f;
  void* a = f.allocator.allocate(4 * kMiB);
  void* b = f.allocator.allocate(2 * kMiB);
  f.allocator.free(a);
  cuda::MemoryStats s = f.allocator.stats();
  CHECK(s.allocated == 2 * kMiB);
  CHECK(s.reserved == 6 * kMiB);
  CHECK(s.peak_allocated == 6 * kMiB);
  f.allocator.reset_peak();
  CHECK(f.allocator.stats().peak_allocated == 2 * kMiB);
  f.allocator.free(b);
  f.allocator.empty_cache();
  s = f.allocator.stats();
  CHECK(s.allocated == 0);
  CHECK(s.reserved == 0);
  CHECK(f.outstanding == 0);
}

TEST_CASE("allocator: out of memory frees cached segments and retries, then reports statistics") {
  Fixture f(8 * kMiB);
  void* a = f.allocator.allocate(6 * kMiB);
  f.allocator.free(a);  // cached: the source still holds 6 MiB
  void* b = f.allocator.allocate(4 * kMiB, /*stream=*/7);  // needs the cached segment returned
  CHECK(f.allocator.stats().oom_retries == 1);
  CHECK(f.allocator.stats().reserved == 4 * kMiB);
  CHECK_THROWS_WITH_AS(f.allocator.allocate(6 * kMiB), doctest::Contains("test:0: out of memory allocating 6.00 MiB"),
                       Error);
  try {
    f.allocator.allocate(6 * kMiB);
  } catch (const Error& e) {
    const std::string message = e.what();
    CHECK(message.find("allocated 4.00 MiB") != std::string::npos);
    CHECK(message.find("reserved 4.00 MiB") != std::string::npos);
    CHECK(message.find("peak allocated 6.00 MiB") != std::string::npos);
    CHECK(message.find("host test memory") != std::string::npos);
  }
  // The failed requests left the allocator usable.
  f.allocator.free(b);
  void* c = f.allocator.allocate(2 * kMiB);
  f.allocator.free(c);
}

TEST_CASE("allocator: a limit caps what is reserved") {
  Fixture f;
  f.allocator.set_limit(4 * kMiB);
  void* a = f.allocator.allocate(2 * kMiB);
  CHECK_THROWS_WITH_AS(f.allocator.allocate(4 * kMiB), doctest::Contains("allocator limit 4.00 MiB"), Error);
  f.allocator.free(a);
  f.allocator.set_limit(0);
  void* b = f.allocator.allocate(4 * kMiB);
  f.allocator.free(b);
}

TEST_CASE("allocator: freeing a pointer it did not hand out raises") {
  Fixture f;
  int local = 0;
  CHECK_THROWS_WITH_AS(f.allocator.free(&local), doctest::Contains("did not hand out"), Error);
  f.allocator.free(nullptr);  // a no-op, like free(NULL)
}

TEST_CASE("allocator: byte sizes print in readable units") {
  CHECK(cuda::format_bytes(512) == "512 B");
  CHECK(cuda::format_bytes(3 * kMiB) == "3.00 MiB");
  CHECK(cuda::format_bytes(size_t{3} << 29) == "1.50 GiB");
}

}  // namespace loupe::test
