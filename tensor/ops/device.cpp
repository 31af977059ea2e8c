// Device moves, creation on a device, and the same-device check. See device.hpp.
#include "tensor/ops/device.hpp"

#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/random_ops.hpp"

namespace loupe::ops {

Tensor to_device(const Tensor& x, Device device) {
  LOUPE_CHECK(x.defined(), "to_device: undefined tensor");
  if (x.device() == device) return x;
  return cuda::to_device(x, device);  // every move that is not cpu -> cpu involves a GPU
}

void check_same_device(const char* op, const std::vector<Tensor>& tensors) {
  const Tensor* first = nullptr;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (first == nullptr) first = &t;
    LOUPE_CHECK(t.device() == first->device(), op, ": expected every tensor on one device, got ",
                first->device().str(), " and ", t.device().str());
  }
}

}  // namespace loupe::ops

namespace loupe {

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor out = Tensor::empty(shape, dtype, device);
  ops::fill_(out, value);
  return out;
}

Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

namespace {
Generator& resolve(Generator* generator) { return generator ? *generator : default_generator(); }
}  // namespace

Tensor uniform(const Shape& shape, double low, double high, DType dtype, Generator* generator, Device device) {
  if (device.is_cpu()) return uniform(shape, low, high, dtype, generator);
  return cuda::uniform(shape, low, high, dtype, resolve(generator), device);
}

Tensor normal(const Shape& shape, double mean, double std, DType dtype, Generator* generator, Device device) {
  if (device.is_cpu()) return normal(shape, mean, std, dtype, generator);
  return cuda::normal(shape, mean, std, dtype, resolve(generator), device);
}

Tensor bernoulli(const Shape& shape, double p, DType dtype, Generator* generator, Device device) {
  if (device.is_cpu()) return bernoulli(shape, p, dtype, generator);
  return cuda::bernoulli(shape, p, dtype, resolve(generator), device);
}

}  // namespace loupe
