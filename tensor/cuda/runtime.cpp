// Devices, streams, library handles and checked calls. See runtime.hpp and backend.hpp.
#include "tensor/cuda/runtime.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <mutex>

#include "tensor/error.hpp"

namespace loupe::cuda {

namespace {

// "../tensor/cuda/blas.cpp" -> "tensor/cuda/blas.cpp": the build folder's relative prefix says
// nothing to a reader.
const char* short_path(const char* file) {
  while (std::strncmp(file, "../", 3) == 0) file += 3;
  return file;
}

const char* cublas_status_name(cublasStatus_t status) {
  switch (status) {
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    case CUBLAS_STATUS_LICENSE_ERROR: return "CUBLAS_STATUS_LICENSE_ERROR";
    default: return "unknown cuBLAS status";
  }
}

constexpr int kMaxDevices = 16;

// Per-device state, created on first use of the device.
struct DeviceState {
  std::once_flag once;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
#ifdef LOUPE_WITH_CUDNN
  std::once_flag cudnn_once;
  cudnnHandle_t cudnn = nullptr;
#endif
  std::once_flag allocator_once;
  CachingAllocator* allocator = nullptr;  // never destroyed: tensors may outlive static destructors
};

std::array<DeviceState, kMaxDevices>& states() {
  static std::array<DeviceState, kMaxDevices> all;
  return all;
}

DeviceState& state(int device) {
  check_device(Device::cuda(device), "cuda");
  DeviceState& s = states()[static_cast<size_t>(device)];
  std::call_once(s.once, [&] {
    DeviceGuard guard(device);
    LOUPE_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
    LOUPE_CUBLAS_CHECK(cublasCreate(&s.cublas));
    LOUPE_CUBLAS_CHECK(cublasSetStream(s.cublas, s.stream));
  });
  return s;
}

// cudaMalloc / cudaFree for one device.
class DeviceMemory final : public MemorySource {
 public:
  explicit DeviceMemory(int device) : device_(device) {}

  void* malloc(size_t nbytes) override {
    DeviceGuard guard(device_);
    void* data = nullptr;
    const cudaError_t status = cudaMalloc(&data, nbytes);
    if (status == cudaErrorMemoryAllocation) {
      (void)cudaGetLastError();  // clear the sticky "last error" so later checks do not see it
      return nullptr;
    }
    LOUPE_CUDA_CHECK(status);
    return data;
  }

  void free(void* data) noexcept override {
    DeviceGuard guard(device_);
    (void)cudaFree(data);  // at process exit the runtime may already be gone: nothing to report
  }

  std::string describe() const override {
    DeviceGuard guard(device_);
    size_t free_bytes = 0, total = 0;
    if (cudaMemGetInfo(&free_bytes, &total) != cudaSuccess) {
      (void)cudaGetLastError();
      return "device memory unknown";
    }
    return "device free " + format_bytes(free_bytes) + " of " + format_bytes(total);
  }

 private:
  int device_;
};

std::atomic<MatmulPrecision> g_precision{MatmulPrecision::highest};

}  // namespace

void throw_cuda_error(cudaError_t status, const char* call, const char* file, int line) {
  (void)cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  throw Error(detail::make_message("CUDA error at ", short_path(file), ":", line, ": ", call, " failed: ",
                                   cudaGetErrorString(status), " (", cudaGetErrorName(status), ")"));
}

void throw_cublas_error(cublasStatus_t status, const char* call, const char* file, int line) {
  throw Error(detail::make_message("cuBLAS error at ", short_path(file), ":", line, ": ", call, " failed: ",
                                   cublas_status_name(status)));
}

#ifdef LOUPE_WITH_CUDNN
void throw_cudnn_error(cudnnStatus_t status, const char* call, const char* file, int line) {
  throw Error(detail::make_message("cuDNN error at ", short_path(file), ":", line, ": ", call, " failed: ",
                                   cudnnGetErrorString(status)));
}
#endif

bool is_built() { return true; }

int device_count() {
  // Queried once: no driver or no GPU (the usual case on CI) is "0 devices", not an error.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      (void)cudaGetLastError();
      return 0;
    }
    return std::min(n, kMaxDevices);
  }();
  return count;
}

void check_device(Device device, const char* op) {
  LOUPE_CHECK(device.is_cuda(), op, ": expected a CUDA device, got ", device.str());
  const int count = device_count();
  LOUPE_CHECK(count > 0, op, ": ", device.str(), " is not available (no CUDA GPU was found)");
  LOUPE_CHECK(device.index >= 0 && device.index < count, op, ": ", device.str(), " does not exist (",
              count, " CUDA device", count == 1 ? "" : "s", " found)");
}

std::string device_name(int device) {
  check_device(Device::cuda(device), "device_name");
  cudaDeviceProp prop{};
  LOUPE_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return detail::make_message(prop.name, " (sm_", prop.major, prop.minor, ", ", format_bytes(prop.totalGlobalMem), ")");
}

DeviceGuard::DeviceGuard(int device) {
  LOUPE_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) LOUPE_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int current = -1;
  if (cudaGetDevice(&current) == cudaSuccess && current != previous_) (void)cudaSetDevice(previous_);
}

cudaStream_t stream(int device) { return state(device).stream; }
cublasHandle_t cublas_handle(int device) { return state(device).cublas; }

#ifdef LOUPE_WITH_CUDNN
cudnnHandle_t cudnn_handle(int device) {
  DeviceState& s = state(device);
  std::call_once(s.cudnn_once, [&] {
    DeviceGuard guard(device);
    LOUPE_CUDNN_CHECK(cudnnCreate(&s.cudnn));
    LOUPE_CUDNN_CHECK(cudnnSetStream(s.cudnn, s.stream));
  });
  return s.cudnn;
}
#endif

CachingAllocator& allocator(int device) {
  DeviceState& s = state(device);
  std::call_once(s.allocator_once, [&] {
    s.allocator = new CachingAllocator(std::make_unique<DeviceMemory>(device), Device::cuda(device).str());
  });
  return *s.allocator;
}

void synchronize(int device) {
  DeviceGuard guard(device);
  LOUPE_CUDA_CHECK(cudaStreamSynchronize(stream(device)));
}

void set_matmul_precision(MatmulPrecision precision) { g_precision = precision; }
MatmulPrecision matmul_precision() { return g_precision; }

MemoryStats memory_stats(int device) { return allocator(device).stats(); }
void reset_peak_memory_stats(int device) { allocator(device).reset_peak(); }
void empty_cache(int device) { allocator(device).empty_cache(); }

void* allocate_storage(size_t nbytes, int device) {
  return allocator(device).allocate(nbytes, reinterpret_cast<uintptr_t>(stream(device)));
}

void free_storage(void* data, int device) noexcept {
  try {
    allocator(device).free(data);
  } catch (...) {
    // A destructor cannot throw; a pointer the allocator does not know is a bug caught by tests.
  }
}

Workspace::Workspace(size_t nbytes, int device) : nbytes_(nbytes), device_(device) {
  if (nbytes > 0) data_ = allocate_storage(nbytes, device);
}

Workspace::~Workspace() {
  if (data_ != nullptr) free_storage(data_, device_);
}

}  // namespace loupe::cuda
