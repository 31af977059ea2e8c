// CUDA optimiser updates for nn/optim/optimizer.cpp: SGD (momentum, dampening, nesterov, weight
// decay) and Adam / AdamW, in place, with the CPU loops' formulas computed the same way (in float64,
// state stored in the parameter's dtype, the weight update using the unrounded Adam moments).
//
// Multi-tensor launches: the parameters of one (device, dtype) group are cut into chunks of at
// most kChunk elements; a table of (pointers, length) per chunk is copied to the device (one small
// host-to-device copy per group and step) and one block of 256 threads updates one chunk. So a
// model's hundreds of small tensors cost one launch, and a large tensor spreads over many blocks.
// Tests: tests/cuda/test_cuda_norm.cpp (several steps on the GPU equal the same steps on the CPU)
#include <cmath>
#include <map>
#include <utility>

#include "tensor/cuda/common.cuh"
#include "tensor/cuda/ops.hpp"

namespace loupe::cuda {

namespace {

constexpr int64_t kChunk = 8192;  // elements per block: 32 per thread

struct SgdOptions {
  double lr, momentum, dampening, weight_decay;
  bool nesterov;
};

template <typename T>
struct SgdChunk {
  T* w;
  const T* g;
  T* buf;  // nullptr without momentum
  int64_t n;
  int first;
};

template <typename T>
__global__ void sgd_kernel(const SgdChunk<T>* chunks, SgdOptions o) {
  const SgdChunk<T> c = chunks[blockIdx.x];
  for (int64_t j = threadIdx.x; j < c.n; j += blockDim.x) {
    double d = static_cast<double>(c.g[j]) + o.weight_decay * static_cast<double>(c.w[j]);
    if (c.buf != nullptr) {
      // PyTorch: the first step copies the update into the buffer (no dampening).
      const T b = static_cast<T>(c.first ? d : o.momentum * static_cast<double>(c.buf[j]) + (1 - o.dampening) * d);
      c.buf[j] = b;
      d = o.nesterov ? d + o.momentum * static_cast<double>(b) : static_cast<double>(b);
    }
    c.w[j] = static_cast<T>(static_cast<double>(c.w[j]) - o.lr * d);
  }
}

struct AdamOptions {
  double lr, beta1, beta2, eps, weight_decay, step_size, sqrt_bias2;
  bool decoupled;
};

template <typename T>
struct AdamChunk {
  T* w;
  const T* g;
  T* m;
  T* v;
  int64_t n;
};

template <typename T>
__global__ void adam_kernel(const AdamChunk<T>* chunks, AdamOptions o) {
  const AdamChunk<T> c = chunks[blockIdx.x];
  for (int64_t j = threadIdx.x; j < c.n; j += blockDim.x) {
    double grad = static_cast<double>(c.g[j]);
    double weight = static_cast<double>(c.w[j]);
    if (o.decoupled) {
      weight *= 1 - o.lr * o.weight_decay;
    } else {
      grad += o.weight_decay * weight;
    }
    const double mj = o.beta1 * static_cast<double>(c.m[j]) + (1 - o.beta1) * grad;
    const double vj = o.beta2 * static_cast<double>(c.v[j]) + (1 - o.beta2) * grad * grad;
    c.m[j] = static_cast<T>(mj);
    c.v[j] = static_cast<T>(vj);
    const double denom = sqrt(vj) / o.sqrt_bias2 + o.eps;
    c.w[j] = static_cast<T>(weight - o.step_size * mj / denom);
  }
}

// Indices of the parameters, grouped by (device, dtype).
std::map<std::pair<int, DType>, std::vector<size_t>> groups_of(const std::vector<Tensor>& params) {
  std::map<std::pair<int, DType>, std::vector<size_t>> groups;
  for (size_t i = 0; i < params.size(); ++i) groups[{params[i].device().index, params[i].dtype()}].push_back(i);
  return groups;
}

// Checks that `t` (a gradient or state buffer of params[i]) can be updated alongside it.
void check_alongside(const char* op, const char* what, const Tensor& p, const Tensor& t) {
  LOUPE_CHECK(t.defined(), op, ": parameter of shape ", shape_str(p.shape()), " has no ", what);
  LOUPE_CHECK(t.device() == p.device(), op, ": ", what, " on ", t.device().str(), " but its parameter on ",
              p.device().str());
  LOUPE_CHECK(t.dtype() == p.dtype(), op, ": ", what, " has dtype ", t.dtype(), " but its parameter ", p.dtype());
  LOUPE_CHECK(t.shape() == p.shape(), op, ": ", what, " has shape ", shape_str(t.shape()), " but its parameter ",
              shape_str(p.shape()));
  LOUPE_CHECK(t.is_contiguous(), op, ": ", what, " of shape ", shape_str(t.shape()), " is not contiguous");
}

// Copies the chunk table to the device and launches one block per chunk.
template <typename Chunk, typename Launch>
void launch_table(const std::vector<Chunk>& table, int device, Launch&& launch) {
  if (table.empty()) return;
  DeviceGuard guard(device);
  cudaStream_t s = stream(device);
  Workspace on_device(table.size() * sizeof(Chunk), device);
  // From pageable memory: returns once the table is staged, so `table` may go right after.
  LOUPE_CUDA_CHECK(cudaMemcpyAsync(on_device.data(), table.data(), table.size() * sizeof(Chunk),
                                   cudaMemcpyHostToDevice, s));
  launch(static_cast<const Chunk*>(on_device.data()), static_cast<unsigned>(table.size()), s);
  LOUPE_CUDA_CHECK_LAUNCH();
}

}  // namespace

void sgd_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
              const std::vector<Tensor>& momentum_buffers, const std::vector<bool>& first, double lr, double momentum,
              double dampening, double weight_decay, bool nesterov) {
  LOUPE_CHECK(grads.size() == params.size() && momentum_buffers.size() == params.size() &&
                  first.size() == params.size(),
              "SGD: ", params.size(), " parameters but ", grads.size(), " gradients and ", momentum_buffers.size(),
              " momentum buffers");
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    LOUPE_CHECK(p.device().is_cuda() && p.is_contiguous(), "SGD: expected contiguous CUDA parameters, got one on ",
                p.device().str());
    check_alongside("SGD", "gradient", p, grads[i]);
    if (momentum != 0) check_alongside("SGD", "momentum buffer", p, momentum_buffers[i]);
  }
  const SgdOptions o{lr, momentum, dampening, weight_decay, nesterov};
  for (const auto& [key, members] : groups_of(params)) {
    dispatch_floating(key.second, "SGD", [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<SgdChunk<T>> table;
      for (size_t i : members) {
        const int64_t n = params[i].numel();
        T* w = device_data<T>(params[i]);
        const T* g = device_data<const T>(grads[i]);
        T* buf = momentum != 0 ? device_data<T>(momentum_buffers[i]) : nullptr;
        for (int64_t at = 0; at < n; at += kChunk) {
          table.push_back({w + at, g + at, buf != nullptr ? buf + at : nullptr, std::min(kChunk, n - at),
                           first[i] ? 1 : 0});
        }
      }
      launch_table(table, key.first, [&](const SgdChunk<T>* chunks, unsigned blocks, cudaStream_t s) {
        sgd_kernel<T><<<blocks, kThreads, 0, s>>>(chunks, o);
      });
    });
  }
}

void adam_step(const std::vector<Tensor>& params, const std::vector<Tensor>& grads, const std::vector<Tensor>& exp_avg,
               const std::vector<Tensor>& exp_avg_sq, double lr, double beta1, double beta2, double eps,
               double weight_decay, bool decoupled, int64_t step) {
  LOUPE_CHECK(grads.size() == params.size() && exp_avg.size() == params.size() && exp_avg_sq.size() == params.size(),
              "Adam: ", params.size(), " parameters but ", grads.size(), " gradients and ", exp_avg.size(),
              " moment buffers");
  for (size_t i = 0; i < params.size(); ++i) {
    const Tensor& p = params[i];
    LOUPE_CHECK(p.device().is_cuda() && p.is_contiguous(), "Adam: expected contiguous CUDA parameters, got one on ",
                p.device().str());
    check_alongside("Adam", "gradient", p, grads[i]);
    check_alongside("Adam", "first moment", p, exp_avg[i]);
    check_alongside("Adam", "second moment", p, exp_avg_sq[i]);
  }
  // The CPU loop's constants: step_size = lr / (1 - beta1^t), denominators sqrt(v) / sqrt(1 - beta2^t) + eps.
  const double bias1 = 1 - std::pow(beta1, static_cast<double>(step));
  const double bias2 = 1 - std::pow(beta2, static_cast<double>(step));
  const AdamOptions o{lr, beta1, beta2, eps, weight_decay, lr / bias1, std::sqrt(bias2), decoupled};
  for (const auto& [key, members] : groups_of(params)) {
    dispatch_floating(key.second, "Adam", [&](auto tag) {
      using T = typename decltype(tag)::type;
      std::vector<AdamChunk<T>> table;
      for (size_t i : members) {
        const int64_t n = params[i].numel();
        T* w = device_data<T>(params[i]);
        const T* g = device_data<const T>(grads[i]);
        T* m = device_data<T>(exp_avg[i]);
        T* v = device_data<T>(exp_avg_sq[i]);
        for (int64_t at = 0; at < n; at += kChunk) {
          table.push_back({w + at, g + at, m + at, v + at, std::min(kChunk, n - at)});
        }
      }
      launch_table(table, key.first, [&](const AdamChunk<T>* chunks, unsigned blocks, cudaStream_t s) {
        adam_kernel<T><<<blocks, kThreads, 0, s>>>(chunks, o);
      });
    });
  }
}

}  // namespace loupe::cuda
