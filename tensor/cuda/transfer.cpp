// Copies between devices: host <-> device through pinned staging buffers, device <-> device
// (same GPU or peer), and copy_ across devices. See tensor/cuda/ops.hpp. Conversions to and from
// float16/bfloat16 always run on the GPU (the CPU has no kernels for them).
//
// Why staging: the GPU's copy engines read and write only page-locked (pinned) host memory. A
// copy from ordinary memory makes the driver stage it anyway, synchronously. We keep two pinned
// buffers per device and alternate: the host fills (or drains) one while the copy engine works on
// the other, each buffer guarded by an event that says when its last copy finished.
// Tests: tests/cuda/test_cuda.cpp
#include <algorithm>
#include <cstring>
#include <mutex>

#include "tensor/cpu/loops.hpp"
#include "tensor/cuda/internal.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe::cuda {

namespace {

constexpr size_t kStagingChunk = size_t{8} << 20;  // 8 MiB per buffer

class PinnedStaging {
 public:
  explicit PinnedStaging(int device) : device_(device) {}

  // Host -> device: dst is device memory, src ordinary host memory.
  void to_device(void* dst, const void* src, size_t nbytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    ensure_buffers();
    cudaStream_t s = stream(device_);
    for (size_t done = 0, k = 0; done < nbytes; done += kStagingChunk, ++k) {
      const size_t len = std::min(kStagingChunk, nbytes - done);
      const int b = static_cast<int>(k % 2);
      LOUPE_CUDA_CHECK(cudaEventSynchronize(ready_[b]));  // its previous copy has left the buffer
      std::memcpy(buffer_[b], static_cast<const char*>(src) + done, len);
      LOUPE_CUDA_CHECK(cudaMemcpyAsync(static_cast<char*>(dst) + done, buffer_[b], len, cudaMemcpyHostToDevice, s));
      LOUPE_CUDA_CHECK(cudaEventRecord(ready_[b], s));
    }
    // No wait at the end: later work on the stream sees the data, and the source is not used again.
  }

  // Device -> host: returns when every byte has arrived in dst.
  void to_host(void* dst, const void* src, size_t nbytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    DeviceGuard guard(device_);
    ensure_buffers();
    cudaStream_t s = stream(device_);
    const size_t chunks = (nbytes + kStagingChunk - 1) / kStagingChunk;
    // Chunk k is copied into buffer k % 2 while chunk k - 1 is drained from the other one.
    for (size_t k = 0; k <= chunks; ++k) {
      if (k < chunks) {
        const size_t at = k * kStagingChunk, len = std::min(kStagingChunk, nbytes - at);
        const int b = static_cast<int>(k % 2);
        LOUPE_CUDA_CHECK(cudaMemcpyAsync(buffer_[b], static_cast<const char*>(src) + at, len, cudaMemcpyDeviceToHost, s));
        LOUPE_CUDA_CHECK(cudaEventRecord(ready_[b], s));
      }
      if (k > 0) {
        const size_t at = (k - 1) * kStagingChunk, len = std::min(kStagingChunk, nbytes - at);
        const int b = static_cast<int>((k - 1) % 2);
        LOUPE_CUDA_CHECK(cudaEventSynchronize(ready_[b]));
        std::memcpy(static_cast<char*>(dst) + at, buffer_[b], len);
      }
    }
  }

 private:
  void ensure_buffers() {
    if (buffer_[0] != nullptr) return;
    for (int b = 0; b < 2; ++b) {
      LOUPE_CUDA_CHECK(cudaHostAlloc(&buffer_[b], kStagingChunk, cudaHostAllocDefault));
      LOUPE_CUDA_CHECK(cudaEventCreateWithFlags(&ready_[b], cudaEventDisableTiming));
    }
  }

  int device_;
  std::mutex mutex_;
  void* buffer_[2] = {nullptr, nullptr};
  cudaEvent_t ready_[2] = {nullptr, nullptr};
};

// One staging pair per device, created on first use and kept for the life of the process.
PinnedStaging& staging(int device) {
  static std::mutex mutex;
  static std::vector<PinnedStaging*> all;
  std::lock_guard<std::mutex> lock(mutex);
  if (all.size() <= static_cast<size_t>(device)) all.resize(static_cast<size_t>(device) + 1, nullptr);
  if (all[static_cast<size_t>(device)] == nullptr) all[static_cast<size_t>(device)] = new PinnedStaging(device);
  return *all[static_cast<size_t>(device)];
}

size_t byte_size(const Tensor& t) { return static_cast<size_t>(t.numel()) * t.element_size(); }

bool is_reduced(DType dtype) { return dtype == DType::bf16 || dtype == DType::f16; }

// dst = src (same shape, both float16 or both bfloat16, both on the CPU, any strides): the CPU
// has no kernels for these dtypes, but moving 16-bit patterns needs none.
void copy_host_16bit(const Tensor& dst, const Tensor& src) {
  auto* out = static_cast<uint16_t*>(dst.raw_data());
  const auto* in = static_cast<const uint16_t*>(src.raw_data());
  cpu::for_each_run<2>(dst.shape(), {dst.strides(), src.strides()},
                       [&](int64_t n, const cpu::Offsets<2>& at, const cpu::Offsets<2>& step) {
                         for (int64_t j = 0; j < n; ++j) out[at[0] + j * step[0]] = in[at[1] + j * step[1]];
                       });
}

// x made contiguous on its own device (a float16/bfloat16 tensor on the CPU by a bit copy).
Tensor dense(const Tensor& x) {
  if (x.is_contiguous() || !x.device().is_cpu() || !is_reduced(x.dtype())) return ops::contiguous(x);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  copy_host_16bit(out, x);
  return out;
}

// GPU -> CPU copy_ involving float16/bfloat16, which the CPU cannot convert: convert and
// broadcast on the GPU into dst's dtype and shape, bring the bytes over, and place them in dst's
// layout (a plain strided copy of 2-byte or CPU-typed elements).
void copy_reduced_to_host(const Tensor& dst, const Tensor& src) {
  const Shape target = broadcast_shapes(dst.shape(), src.shape(), "copy_");
  LOUPE_CHECK(target == dst.shape(), "copy_: source shape ", shape_str(src.shape()),
              " does not broadcast to destination shape ", shape_str(dst.shape()));
  Tensor staged = Tensor::empty(dst.shape(), dst.dtype(), src.device());
  copy_same_device(staged, src);
  const Tensor moved = to_device(staged, Device::cpu());
  if (!is_reduced(dst.dtype())) return ops::copy_(dst, moved);
  copy_host_16bit(dst, moved);
}

}  // namespace

Tensor to_device(const Tensor& x, Device device) {
  LOUPE_CHECK(x.defined(), "to_device: undefined tensor");
  if (x.device() == device) return x;
  if (device.is_cuda()) check_device(device, "to_device");
  const Tensor src = dense(x);  // made dense on its own device first
  Tensor out = Tensor::empty(x.shape(), x.dtype(), device);
  const size_t nbytes = byte_size(src);
  if (nbytes == 0) return out;
  const Device from = src.device();
  if (from.is_cpu()) {
    staging(device.index).to_device(out.raw_data(), src.raw_data(), nbytes);
  } else if (device.is_cpu()) {
    staging(from.index).to_host(out.raw_data(), src.raw_data(), nbytes);
  } else {
    // GPU to GPU: the source's stream must have produced the data before the destination's
    // stream copies it; the copy goes peer to peer where the GPUs allow it.
    synchronize(from.index);
    DeviceGuard guard(device.index);
    LOUPE_CUDA_CHECK(cudaMemcpyPeerAsync(out.raw_data(), device.index, src.raw_data(), from.index, nbytes,
                                         stream(device.index)));
    // The source's block may be reused by its own stream as soon as src dies: finish reading first.
    synchronize(device.index);
  }
  return out;
}

void copy_(const Tensor& dst, const Tensor& src) {
  if (dst.device() == src.device()) return copy_same_device(dst, src);
  if (dst.device().is_cpu() && (is_reduced(dst.dtype()) || is_reduced(src.dtype()))) {
    return copy_reduced_to_host(dst, src);
  }
  // Bring the (dense) source to the destination's device, then convert and broadcast there.
  const Tensor moved = to_device(src, dst.device());
  if (dst.device().is_cpu()) return ops::copy_(dst, moved);
  copy_same_device(dst, moved);
}

}  // namespace loupe::cuda
