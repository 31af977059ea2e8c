// Creation ops. See creation.hpp.
#include "tensor/ops/creation.hpp"
#include "tensor/ops/device.hpp"

#include <cmath>

#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe {

Tensor full(const Shape& shape, double value, DType dtype) {
  Tensor out = Tensor::empty(shape, dtype);
  ops::fill_(out, value);
  return out;
}

Tensor zeros(const Shape& shape, DType dtype) { return full(shape, 0.0, dtype); }
Tensor ones(const Shape& shape, DType dtype) { return full(shape, 1.0, dtype); }
Tensor scalar_tensor(double value, DType dtype) { return full({}, value, dtype); }

// The *_like family keeps like's device (a gradient of a CUDA tensor is made on the GPU).
Tensor zeros_like(const Tensor& like) { return full_like(like, 0.0); }
Tensor ones_like(const Tensor& like) { return full_like(like, 1.0); }
Tensor full_like(const Tensor& like, double value) {
  Tensor out = Tensor::empty(like.shape(), like.dtype(), like.device());
  ops::fill_(out, value);
  return out;
}
Tensor empty_like(const Tensor& like) { return Tensor::empty(like.shape(), like.dtype(), like.device()); }

Tensor arange(double start, double end, double step, DType dtype) {
  LOUPE_CHECK(step != 0.0, "arange: step must be non-zero");
  LOUPE_CHECK(std::isfinite(start) && std::isfinite(end), "arange: start and end must be finite");
  const double count = std::ceil((end - start) / step);
  const int64_t n = count > 0 ? static_cast<int64_t>(count) : 0;
  Tensor out = Tensor::empty({n}, dtype);
  dispatch_numeric(dtype, "arange", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + static_cast<double>(i) * step);
  });
  return out;
}

Tensor arange(int64_t end, DType dtype) { return arange(0.0, static_cast<double>(end), 1.0, dtype); }

Tensor linspace(double start, double end, int64_t steps, DType dtype) {
  LOUPE_CHECK(steps >= 0, "linspace: steps must be non-negative, got ", steps);
  Tensor out = Tensor::empty({steps}, dtype);
  dispatch_floating(dtype, "linspace", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    const double delta = steps > 1 ? (end - start) / static_cast<double>(steps - 1) : 0.0;
    // Fill from both ends so that the last element is exactly `end`, as PyTorch does.
    const int64_t half = steps / 2;
    for (int64_t i = 0; i < steps; ++i) {
      p[i] = static_cast<T>(i < half ? start + delta * static_cast<double>(i)
                                     : end - delta * static_cast<double>(steps - 1 - i));
    }
  });
  return out;
}

Tensor eye(int64_t n, int64_t m, DType dtype) {
  if (m < 0) m = n;
  LOUPE_CHECK(n >= 0, "eye: n must be non-negative, got ", n);
  Tensor out = zeros({n, m}, dtype);
  dispatch_all(dtype, "eye", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (int64_t i = 0; i < std::min(n, m); ++i) p[i * m + i] = static_cast<T>(1);
  });
  return out;
}

namespace {
template <typename V>
Tensor from_typed_values(const std::vector<V>& values, const Shape& shape, DType dtype) {
  LOUPE_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_values: ", values.size(),
              " values do not fill shape ", shape_str(shape));
  Tensor out = Tensor::empty(shape, dtype);
  dispatch_all(dtype, "from_values", [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* p = out.data<T>();
    for (size_t i = 0; i < values.size(); ++i) p[i] = static_cast<T>(values[i]);
  });
  return out;
}
}  // namespace

Tensor from_values(const std::vector<double>& values, const Shape& shape, DType dtype) {
  return from_typed_values(values, shape, dtype);
}
Tensor from_values(const std::vector<int64_t>& values, const Shape& shape, DType dtype) {
  return from_typed_values(values, shape, dtype);
}
Tensor from_values(const std::vector<float>& values, const Shape& shape) {
  return from_typed_values(values, shape, DType::f32);
}

template <typename T>
std::vector<T> to_vector(const Tensor& tensor) {
  // A tensor on a GPU is copied to the CPU first.
  const Tensor dense = ops::to_dtype(ops::contiguous(ops::to_device(tensor, Device::cpu())), dtype_of<T>::value);
  const T* p = dense.data<T>();
  return std::vector<T>(p, p + dense.numel());
}

template std::vector<float> to_vector<float>(const Tensor&);
template std::vector<double> to_vector<double>(const Tensor&);
template std::vector<int64_t> to_vector<int64_t>(const Tensor&);

}  // namespace loupe
