// Reductions built from the CUDA kernels rather than written as kernels of their own: each is a
// few calls of sum / amax / elementwise ops (all of which run on the GPU), computed in float64
// like the CPU's accumulations and converted back. Semantics as in tensor/ops/reduce.cpp.
// Tests: tests/cuda/test_cuda.cpp (op table: reduce entries)
#include <cmath>
#include <limits>

#include "tensor/cuda/ops.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/device.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

// Number of elements each output of a reduction over `dims` (normalised) combines.
int64_t reduced_count(const Tensor& x, const ops::Dims& dims) {
  if (dims.empty()) return x.numel();
  int64_t count = 1;
  for (int64_t d : dims) count *= x.size(d);
  return count;
}

// A 0-d tensor holding `value` in `dtype` on `device`.
Tensor constant(double value, DType dtype, Device device) {
  Tensor out = Tensor::empty({}, dtype, device);
  fill_(out, value);
  return out;
}

// A 0-d tensor holding `value` in like's dtype, on like's device.
Tensor scalar(double value, const Tensor& like) { return constant(value, like.dtype(), like.device()); }

}  // namespace

// Two passes (mean, then squared deviations), like the CPU: no E[x^2] - E[x]^2 cancellation.
Tensor var(const Tensor& x, const std::vector<int64_t>& dims_in, int64_t correction, bool keepdim, bool take_sqrt) {
  const char* op = take_sqrt ? "std" : "var";
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), op);
  LOUPE_CHECK(correction >= 0, op, ": correction must be non-negative, got ", correction);
  LOUPE_CHECK(is_floating(x.dtype()), op, ": expected a floating dtype (float32 or float64), got ", x.dtype());
  const Tensor xd = ops::to_dtype(x, DType::f64);
  const auto count = static_cast<double>(reduced_count(x, dims));
  const Tensor mean = ops::div(sum(xd, dims, true), scalar(count, xd));
  const Tensor deviation = ops::sub(xd, mean);
  const double divisor = std::max(0.0, count - static_cast<double>(correction));
  Tensor v = ops::div(sum(ops::mul(deviation, deviation), dims, keepdim), scalar(divisor, xd));
  if (take_sqrt) v = ops::sqrt(v);
  return ops::to_dtype(v, x.dtype());
}

// The vector p-norm (torch.linalg.vector_norm) with the CPU's special cases.
Tensor norm(const Tensor& x, double p, const std::vector<int64_t>& dims_in, bool keepdim) {
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), "norm");
  LOUPE_CHECK(!std::isnan(p), "norm: p must be a number, got NaN");
  LOUPE_CHECK(is_floating(x.dtype()), "norm: expected a floating dtype (float32 or float64), got ", x.dtype());
  LOUPE_CHECK(reduced_count(x, dims) > 0 || (p >= 0.0 && !std::isinf(p)), "norm: cannot compute the ", p,
              "-norm over a zero-size dim of shape ", shape_str(x.shape()), ": the reduction has no identity");
  const Tensor a = ops::abs(ops::to_dtype(x, DType::f64));
  Tensor out;
  if (std::isinf(p)) {
    out = p > 0 ? amax(a, dims, keepdim) : amin(a, dims, keepdim);
  } else if (p == 0.0) {
    out = sum(ops::to_dtype(ops::ne(a, scalar(0.0, a)), DType::f64), dims, keepdim);
  } else if (p == 1.0) {
    out = sum(a, dims, keepdim);
  } else if (p == 2.0) {
    out = ops::sqrt(sum(ops::mul(a, a), dims, keepdim));
  } else {
    out = ops::pow(sum(ops::pow(a, scalar(p, a)), dims, keepdim), scalar(1.0 / p, a));
  }
  return ops::to_dtype(out, x.dtype());
}

// m + log(sum(exp(x - m))) with an infinite max replaced by 0 (PyTorch's rule).
Tensor logsumexp(const Tensor& x_in, const std::vector<int64_t>& dims_in, bool keepdim) {
  const Tensor x = is_floating(x_in.dtype()) ? x_in : ops::to_dtype(x_in, DType::f32);
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), "logsumexp");
  const Shape shape = ops::reduced_shape(x.shape(), dims, keepdim);
  if (reduced_count(x, dims) == 0) {
    Tensor out = Tensor::empty(shape, x.dtype(), x.device());
    fill_(out, -std::numeric_limits<double>::infinity());  // log(0)
    return out;
  }
  const Tensor xd = ops::to_dtype(x, DType::f64);
  const Tensor m = amax(xd, dims, true);
  const Tensor finite_m = ops::where(ops::eq(ops::abs(m), scalar(std::numeric_limits<double>::infinity(), m)),
                                     scalar(0.0, m), m);
  const Tensor total = sum(ops::exp(ops::sub(xd, finite_m)), dims, true);
  return ops::to_dtype(ops::reshape(ops::add(ops::log(total), finite_m), shape), x.dtype());
}

// all: every element non-zero; any: some element non-zero. Non-zeros are counted, then compared.
Tensor all(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), "all");
  const Tensor nonzero = sum(ops::ne(x, scalar(0.0, x)), dims, keepdim);  // int64 counts
  return ops::eq(nonzero, constant(static_cast<double>(reduced_count(x, dims)), DType::i64, x.device()));
}

Tensor any(const Tensor& x, const std::vector<int64_t>& dims_in, bool keepdim) {
  const ops::Dims dims = ops::normalize_dims(dims_in, x.dim(), "any");
  const Tensor nonzero = sum(ops::ne(x, scalar(0.0, x)), dims, keepdim);
  return ops::gt(nonzero, constant(0.0, DType::i64, x.device()));
}

}  // namespace loupe::cuda
