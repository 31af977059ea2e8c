// matmul and linear. See linalg.hpp.
//
// Both reduce to 2-d GEMMs on strided operands (tensor/cpu/gemm.hpp): transposed and broadcast
// views are passed by their strides, never copied. float32/float64 use the fast kernel, int64 the
// reference loop.
#include "tensor/ops/linalg.hpp"

#include <algorithm>

#include "tensor/cpu/gemm.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/parallel.hpp"
#include "tensor/cuda/ops.hpp"

namespace loupe::ops {

namespace {

// Products smaller than this (multiply-adds per matrix) run one whole matrix per parallel chunk.
constexpr int64_t kSmallMatrixWork = 64 * 64 * 64;

template <typename T>
void gemm_dispatch(int64_t m, int64_t n, int64_t k, cpu::MatrixRef<const T> a, cpu::MatrixRef<const T> b, T beta,
                   cpu::MatrixRef<T> c) {
  if constexpr (std::is_floating_point_v<T>) {
    cpu::gemm<T>(m, n, k, T(1), a, b, beta, c);
  } else {
    cpu::gemm_reference<T>(m, n, k, T(1), a, b, beta, c);
  }
}

// x viewed (or copied) as a matrix (rows, x.size(-1)); rows is the product of the leading dims.
Tensor as_rows(const Tensor& x) {
  const int64_t cols = x.size(-1);
  const int64_t rows = shape_numel(Shape(x.shape().begin(), x.shape().end() - 1));
  return reshape(x, {rows, cols});
}

void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  LOUPE_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  LOUPE_CHECK(a.device().is_cpu() && b.device().is_cpu(), op, ": only CPU tensors are supported");
  LOUPE_CHECK(a.dtype() == b.dtype(), op, ": expected both operands to have the same dtype, got ", a.dtype(),
              " and ", b.dtype());
}

// (batch..., m, k) @ (batch..., k, n) with the batch dims already broadcast to `batch`.
// a and b keep their own strides (0 along broadcast dims); the result is contiguous.
Tensor batched_matmul(const Tensor& a, const Tensor& b, const Shape& batch) {
  const int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1);
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;

  // Offsets of each batch matrix in a and b (row-major over the batch shape).
  Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
  const Strides sa = broadcast_strides(a_batch, Strides(a.strides().begin(), a.strides().end() - 2), batch);
  const Strides sb = broadcast_strides(b_batch, Strides(b.strides().begin(), b.strides().end() - 2), batch);
  const int64_t count = shape_numel(batch);
  std::vector<int64_t> a_off(static_cast<size_t>(count)), b_off(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) {
    int64_t rest = i, oa = 0, ob = 0;
    for (size_t d = batch.size(); d-- > 0;) {
      const int64_t idx = rest % batch[d];
      rest /= batch[d];
      oa += idx * sa[d];
      ob += idx * sb[d];
    }
    a_off[static_cast<size_t>(i)] = oa;
    b_off[static_cast<size_t>(i)] = ob;
  }

  dispatch_numeric(a.dtype(), "matmul", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a.raw_data());
    const T* pb = static_cast<const T*>(b.raw_data());
    T* pc = static_cast<T*>(out.raw_data());
    // Many small matrices: one matrix per chunk. Large ones: one at a time, GEMM parallel inside.
    const int64_t grain = std::max<int64_t>(1, kSmallMatrixWork / std::max<int64_t>(1, m * n * k));
    parallel_for(0, count, grain, [&](int64_t i0, int64_t i1) {
      for (int64_t i = i0; i < i1; ++i) {
        gemm_dispatch<T>(m, n, k, {pa + a_off[static_cast<size_t>(i)], a.stride(-2), a.stride(-1)},
                         {pb + b_off[static_cast<size_t>(i)], b.stride(-2), b.stride(-1)}, T(0),
                         {pc + i * m * n, n, 1});
      }
    });
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  if (a.device().is_cuda() || b.device().is_cuda()) return cuda::matmul(a, b);
  check_operands(a, b, "matmul");
  LOUPE_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dimension, got shapes ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  LOUPE_CHECK(a.size(-1) == b.size(b.dim() == 1 ? 0 : -2), "matmul: inner dimensions differ: ",
              shape_str(a.shape()), " @ ", shape_str(b.shape()));
  dispatch_numeric(a.dtype(), "matmul", [](auto) {});  // rejects bool before any work

  // numpy rules: a 1-d left operand becomes a row (1, k), a 1-d right operand a column (k, 1);
  // the added dim is removed from the result.
  const Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
  const Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;

  Tensor out;
  if (b2.dim() == 2 && a2.dim() > 2) {
    // (batch..., m, k) @ (k, n): fold the batch into the rows, one large GEMM.
    const Tensor rows = as_rows(a2);
    out = batched_matmul(rows, b2, {});
    Shape shape(a2.shape().begin(), a2.shape().end() - 1);
    shape.push_back(b2.size(-1));
    out = view(out, shape);
  } else {
    const Shape a_batch(a2.shape().begin(), a2.shape().end() - 2);
    const Shape b_batch(b2.shape().begin(), b2.shape().end() - 2);
    out = batched_matmul(a2, b2, broadcast_shapes(a_batch, b_batch, "matmul"));
  }
  if (b.dim() == 1) out = squeeze(out, -1);
  if (a.dim() == 1) out = squeeze(out, -1 - (b.dim() == 1 ? 0 : 1));
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  if (x.device().is_cuda() || weight.device().is_cuda()) return cuda::linear(x, weight, bias);
  check_operands(x, weight, "linear");
  LOUPE_CHECK(is_floating(x.dtype()), "linear: expected a floating dtype (float32 or float64), got ", x.dtype());
  LOUPE_CHECK(weight.dim() == 2, "linear: weight must be 2-d (out_features, in_features), got shape ",
              shape_str(weight.shape()));
  LOUPE_CHECK(x.dim() >= 1, "linear: input must have at least 1 dimension, got shape ", shape_str(x.shape()));
  LOUPE_CHECK(x.size(-1) == weight.size(1), "linear: input shape ", shape_str(x.shape()),
              " does not match weight shape ", shape_str(weight.shape()), " (in_features ", weight.size(1), ")");
  if (bias.defined()) {
    LOUPE_CHECK(bias.dtype() == x.dtype(), "linear: bias dtype ", bias.dtype(), " differs from input dtype ",
                x.dtype());
    LOUPE_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias must have shape (",
                weight.size(0), "), got ", shape_str(bias.shape()));
  }
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const Tensor rows = as_rows(x);  // (r, in)
  const int64_t r = rows.size(0);
  Tensor out = Tensor::empty({r, out_features}, x.dtype(), x.device());  // (r, out)
  if (out.numel() > 0) {
    // The bias is written first and the product added on top (beta = 1): no second pass.
    if (bias.defined()) copy_(out, bias);
    dispatch_floating(x.dtype(), "linear", [&](auto tag) {
      using T = typename decltype(tag)::type;
      // out = rows @ weight^T: weight^T is weight with its strides swapped.
      cpu::gemm<T>(r, out_features, in, T(1), {static_cast<const T*>(rows.raw_data()), rows.stride(0), rows.stride(1)},
                   {static_cast<const T*>(weight.raw_data()), weight.stride(1), weight.stride(0)},
                   bias.defined() ? T(1) : T(0), {static_cast<T*>(out.raw_data()), out_features, 1});
    });
  }
  Shape shape(x.shape().begin(), x.shape().end() - 1);
  shape.push_back(out_features);
  return view(out, shape);
}

}  // namespace loupe::ops
