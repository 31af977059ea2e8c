// Storage allocation. See storage.hpp.
#include "tensor/storage.hpp"

#include <cstdlib>
#include <new>

#include "tensor/cuda/backend.hpp"
#include "tensor/error.hpp"

namespace loupe {

namespace {
constexpr size_t kAlignment = 64;
}

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  // Device memory comes from the CUDA backend's caching allocator (tensor/cuda/allocator.hpp).
  if (device.is_cuda()) {
    return std::shared_ptr<Storage>(new Storage(cuda::allocate_storage(nbytes, device.index), nbytes, device));
  }
  // aligned_alloc needs a size that is a multiple of the alignment, and a zero-byte tensor still
  // needs a distinct non-null pointer.
  const size_t rounded = (nbytes + kAlignment - 1) / kAlignment * kAlignment;
  void* data = std::aligned_alloc(kAlignment, rounded == 0 ? kAlignment : rounded);
  LOUPE_CHECK(data != nullptr, "allocate: out of memory for ", nbytes, " bytes on ", device.str());
  return std::shared_ptr<Storage>(new Storage(data, nbytes, device));
}

Storage::~Storage() {
  if (device_.is_cuda()) {
    cuda::free_storage(data_, device_.index);
  } else {
    std::free(data_);
  }
}

}  // namespace loupe
