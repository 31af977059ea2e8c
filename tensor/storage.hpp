// Storage: one reference-counted block of memory that one or more tensors view.
// CPU blocks are 64-byte aligned (a cache line, and the widest AVX-512 load); large ones come from
// a reuse cache (tensor/cpu/host_allocator.hpp).
// Tests: tests/tensor/test_tensor.cpp
#pragma once

#include <cstddef>
#include <memory>

#include "tensor/device.hpp"

namespace loupe {

class Storage {
 public:
  // Allocates `nbytes` on `device`, uninitialised.
  static std::shared_ptr<Storage> allocate(size_t nbytes, Device device);

  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;
  ~Storage();

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  Storage(void* data, size_t nbytes, size_t capacity, Device device)
      : data_(data), nbytes_(nbytes), capacity_(capacity), device_(device) {}

  void* data_;
  size_t nbytes_;
  size_t capacity_;  // bytes reserved by the allocator (>= nbytes_)
  Device device_;
};

}  // namespace loupe
