// The CUDA backend seen from plain C++: device queries, precision switches, memory statistics and
// the hooks Storage uses. No CUDA header is included, so tensor/ compiles the same with or without
// the backend; in a build without it (tensor/cuda/unavailable.cpp) device_count() is 0 and
// allocating on a CUDA device raises loupe::Error.
// Tests: tests/cuda/test_cuda.cpp
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace loupe::cuda {

// True when this build contains the CUDA backend (whether or not a GPU is present).
bool is_built();
// Number of visible GPUs; 0 without a driver, without a GPU, or without the backend.
int device_count();
inline bool is_available() { return device_count() > 0; }
// "NVIDIA H100 80GB HBM3 (sm_90, 79 GiB)"; raises for a bad index.
std::string device_name(int device);
// Waits until every kernel and copy queued on the device's stream has finished.
void synchronize(int device = 0);

// Precision of float32 matrix products (cuBLAS) and convolutions (cuDNN). `highest` computes in
// full fp32 (the default, matching the CPU to rounding); tf32 and bf16 use tensor cores and are
// opt-in, as PyTorch's torch.backends.cuda.matmul.allow_tf32 is.
enum class MatmulPrecision { highest, tf32, bf16 };
void set_matmul_precision(MatmulPrecision precision);
MatmulPrecision matmul_precision();

// Convolutions use cuDNN when loupe is built with it; set_use_cudnn(false) switches to our own
// im2col kernels (for comparison and tests). use_cudnn() is false in a build without cuDNN.
void set_use_cudnn(bool use);
bool use_cudnn();
// Benchmark mode (off by default, as torch.backends.cudnn.benchmark): the first convolution of
// each shape times every cuDNN algorithm and keeps the fastest, instead of trusting cuDNN's
// heuristics. Pays off when shapes repeat (training at a fixed size); costs a pause per shape.
void set_cudnn_benchmark(bool benchmark);
bool cudnn_benchmark();

// Statistics of one device's caching allocator, in bytes.
struct MemoryStats {
  size_t allocated = 0;       // held by live tensors (rounded block sizes)
  size_t reserved = 0;        // obtained from the driver (allocated + cached free blocks)
  size_t peak_allocated = 0;  // highest `allocated` since the last reset
  size_t peak_reserved = 0;
  int64_t driver_allocations = 0;  // cudaMalloc calls
  int64_t cache_hits = 0;          // requests served from cached blocks
  int64_t oom_retries = 0;         // times the cache was emptied to retry a failed cudaMalloc
};
MemoryStats memory_stats(int device = 0);
void reset_peak_memory_stats(int device = 0);
// Returns every cached, unused block to the driver.
void empty_cache(int device = 0);

// Storage's hooks (tensor/storage.cpp): device memory from the caching allocator.
void* allocate_storage(size_t nbytes, int device);
void free_storage(void* data, int device) noexcept;

}  // namespace loupe::cuda
