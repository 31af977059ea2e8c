// The CUDA runtime as the backend's own files use it (this header includes CUDA's headers; plain
// C++ code uses tensor/cuda/backend.hpp instead):
//   - every CUDA, cuBLAS and cuDNN call goes through LOUPE_CUDA_CHECK / LOUPE_CUBLAS_CHECK /
//     LOUPE_CUDNN_CHECK, which turn a failure into loupe::Error with the call, file:line and the
//     library's own error string;
//   - each device has one stream (created on first use) on which every kernel, copy, cuBLAS and
//     cuDNN call of that device is queued, so work on one device runs in program order;
//   - Workspace: scratch memory from the caching allocator for the duration of one op.
// Tests: tests/cuda/test_cuda.cpp
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>
#ifdef LOUPE_WITH_CUDNN
#include <cudnn.h>
#endif

#include <cstddef>

#include "tensor/cuda/allocator.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/tensor.hpp"

namespace loupe::cuda {

[[noreturn]] void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line);
[[noreturn]] void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line);
#ifdef LOUPE_WITH_CUDNN
[[noreturn]] void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line);
#endif

}  // namespace loupe::cuda

#define LOUPE_CUDA_CHECK(call)                                                          \
  do {                                                                                  \
    const cudaError_t loupe_status_ = (call);                                           \
    if (loupe_status_ != cudaSuccess) {                                                 \
      ::loupe::cuda::throw_cuda_error(loupe_status_, #call, __FILE__, __LINE__);        \
    }                                                                                   \
  } while (false)

#define LOUPE_CUBLAS_CHECK(call)                                                        \
  do {                                                                                  \
    const cublasStatus_t loupe_status_ = (call);                                        \
    if (loupe_status_ != CUBLAS_STATUS_SUCCESS) {                                       \
      ::loupe::cuda::throw_cublas_error(loupe_status_, #call, __FILE__, __LINE__);      \
    }                                                                                   \
  } while (false)

#define LOUPE_CUDNN_CHECK(call)                                                         \
  do {                                                                                  \
    const cudnnStatus_t loupe_status_ = (call);                                         \
    if (loupe_status_ != CUDNN_STATUS_SUCCESS) {                                        \
      ::loupe::cuda::throw_cudnn_error(loupe_status_, #call, __FILE__, __LINE__);       \
    }                                                                                   \
  } while (false)

// After a kernel launch: a bad launch configuration surfaces here, at its own line.
#define LOUPE_CUDA_CHECK_LAUNCH() LOUPE_CUDA_CHECK(cudaGetLastError())

namespace loupe::cuda {

// Raises loupe::Error naming `op` unless `device` is a CUDA device that exists.
void check_device(Device device, const char* op);

// Makes `device` current for the scope, restoring the previous device after.
class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

cudaStream_t stream(int device);
cublasHandle_t cublas_handle(int device);  // bound to stream(device)
#ifdef LOUPE_WITH_CUDNN
cudnnHandle_t cudnn_handle(int device);    // bound to stream(device)
#endif
CachingAllocator& allocator(int device);

// Scratch device memory for one op, returned to the caching allocator at scope exit (the block is
// reused only by later work on the same stream, so no synchronisation is needed).
class Workspace {
 public:
  Workspace(size_t nbytes, int device);
  ~Workspace();
  Workspace(const Workspace&) = delete;
  Workspace& operator=(const Workspace&) = delete;
  void* data() const { return data_; }
  size_t size() const { return nbytes_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  int device_ = 0;
};

}  // namespace loupe::cuda
