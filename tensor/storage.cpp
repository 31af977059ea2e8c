// Storage allocation. See storage.hpp.
#include "tensor/storage.hpp"

#include "tensor/cpu/host_allocator.hpp"
#include "tensor/error.hpp"

namespace loupe {

std::shared_ptr<Storage> Storage::allocate(size_t nbytes, Device device) {
  LOUPE_CHECK(device.is_cpu(), "allocate: device ", device.str(),
              " is not available (this build has only the CPU backend)");
  const cpu::HostBlock block = cpu::host_allocate(nbytes);
  return std::shared_ptr<Storage>(new Storage(block.data, nbytes, block.capacity, device));
}

Storage::~Storage() { cpu::host_release({data_, capacity_}); }

}  // namespace loupe
