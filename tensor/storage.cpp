// Storage allocation. See storage.hpp.
#include "tensor/storage.hpp"

#include "tensor/cpu/host_allocator.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/error.hpp"

namespace loupe {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  // Device memory comes from the CUDA backend's caching allocator (tensor/cuda/allocator.hpp).
  if (device.is_cuda()) {
    return std::shared_ptr<Storage>(new Storage(cuda::allocate_storage(nbytes, device.index), nbytes, nbytes, device));
  }
  const cpu::HostBlock block = cpu::host_allocate(nbytes);
  return std::shared_ptr<Storage>(new Storage(block.data, nbytes, block.capacity, device));
}

Storage::~Storage() {
  if (device_.is_cuda()) {
    cuda::free_storage(data_, device_.index);
  } else {
    cpu::host_release({data_, capacity_});
  }
}

}  // namespace loupe
