// matmul and linear on the GPU through cuBLAS (same semantics as tensor/ops/linalg.cpp).
//
// cuBLAS is column-major; our matrices are row-major. A row-major (m, n) matrix read column-major
// is its transpose, so C = A B is computed as C^T = B^T A^T: swap the operands and the roles of m
// and n, and no data moves. A transposed view (unit stride along rows) is passed as "transposed"
// with its own leading dimension; only views that are neither (e.g. both strides > 1) are copied.
// float32 computes in full fp32 unless set_matmul_precision() opts into TF32 or bf16 tensor cores.
// bfloat16 operands (mixed precision, autograd/autocast.hpp) run on tensor cores with CUDA_R_16BF
// inputs and output and fp32 accumulation (CUBLAS_COMPUTE_32F).
// Tests: tests/cuda/test_cuda.cpp (op table: linalg entries, TF32 check)
#include <algorithm>

#include "tensor/cuda/internal.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/cuda/runtime.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::cuda {

namespace {

cublasComputeType_t compute_type(DType dtype) {
  if (dtype == DType::f64) return CUBLAS_COMPUTE_64F;
  if (dtype == DType::bf16) return CUBLAS_COMPUTE_32F;  // bf16 operands, fp32 accumulation
  switch (matmul_precision()) {
    case MatmulPrecision::tf32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MatmulPrecision::bf16: return CUBLAS_COMPUTE_32F_FAST_16BF;
    case MatmulPrecision::highest: break;
  }
  return CUBLAS_COMPUTE_32F;
}

// A batch of row-major matrices (batch, rows, cols) as cuBLAS wants it.
struct MatrixOperand {
  Tensor tensor;       // what the pointer comes from (a copy when the view was unusable)
  bool transposed;     // memory holds the transpose, row-major
  int64_t ld;          // leading dimension in elements
  int64_t batch_stride;
};

MatrixOperand matrix_operand(const Tensor& t) {
  const int64_t rows = t.size(1), cols = t.size(2);
  if (t.stride(2) == 1 || cols == 1) {
    const int64_t ld = rows == 1 ? std::max<int64_t>(cols, 1) : t.stride(1);
    if (ld >= std::max<int64_t>(cols, 1)) return {t, false, ld, t.stride(0)};
  }
  if (t.stride(1) == 1 || rows == 1) {
    const int64_t ld = cols == 1 ? std::max<int64_t>(rows, 1) : t.stride(2);
    if (ld >= std::max<int64_t>(rows, 1)) return {t, true, ld, t.stride(0)};
  }
  const Tensor dense = ops::contiguous(t);
  return {dense, false, std::max<int64_t>(cols, 1), rows * cols};
}

// out (batch, m, n), contiguous = a (batch, m, k) @ b (batch, k, n) (+ beta * out).
void batched_product(const Tensor& a, const Tensor& b, const Tensor& out, double beta) {
  const int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  if (out.numel() == 0) return;
  const MatrixOperand A = matrix_operand(a), B = matrix_operand(b);
  gemm_strided_batched(out.dtype(), out.device().index, A.transposed, B.transposed, m, n, k, 1.0, A.tensor.raw_data(),
                       A.ld, A.batch_stride, B.tensor.raw_data(), B.ld, B.batch_stride, beta, out.raw_data(),
                       std::max<int64_t>(n, 1), m * n, batch);
}

void check_operands(const Tensor& a, const Tensor& b, const char* op) {
  LOUPE_CHECK(a.defined() && b.defined(), op, ": undefined operand");
  LOUPE_CHECK(a.device() == b.device(), op, ": operands on different devices (", a.device().str(), " and ",
              b.device().str(), ")");
  LOUPE_CHECK(a.dtype() == b.dtype(), op, ": expected both operands to have the same dtype, got ", a.dtype(), " and ",
              b.dtype());
  LOUPE_CHECK(a.dtype() == DType::f32 || a.dtype() == DType::f64 || a.dtype() == DType::bf16, op, ": dtype ",
              a.dtype(), " is not implemented on ", a.device().str(), " yet (float32, float64 and bfloat16 are)");
}

}  // namespace

void gemm_strided_batched(DType dtype, int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                          double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb,
                          int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch) {
  DeviceGuard guard(device);
  cublasHandle_t handle = cublas_handle(device);
  LOUPE_CHECK(dtype == DType::f32 || dtype == DType::f64 || dtype == DType::bf16, "matmul: dtype ", dtype,
              " has no cuBLAS path");
  const cudaDataType_t type = dtype == DType::f64 ? CUDA_R_64F : dtype == DType::bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const cublasOperation_t op_a = trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = trans_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  const auto i32 = [](int64_t v) {
    LOUPE_CHECK(v <= INT32_MAX, "matmul: dimension ", v, " exceeds cuBLAS's 32-bit limit");
    return static_cast<int>(v);
  };
  // C^T (n, m) = B^T (n, k) @ A^T (k, m) in cuBLAS's column-major terms.
  if (dtype == DType::f64) {
    LOUPE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, op_b, op_a, i32(n), i32(m), i32(k), &alpha, b, type, i32(ldb),
                                                  stride_b, a, type, i32(lda), stride_a, &beta, c, type, i32(ldc),
                                                  stride_c, i32(batch), compute_type(dtype), CUBLAS_GEMM_DEFAULT));
  } else {
    // float32 and bfloat16 (whose inputs and output are bf16, products accumulated in fp32) take
    // float scalars.
    const float alpha_f = static_cast<float>(alpha), beta_f = static_cast<float>(beta);
    LOUPE_CUBLAS_CHECK(cublasGemmStridedBatchedEx(handle, op_b, op_a, i32(n), i32(m), i32(k), &alpha_f, b, type,
                                                  i32(ldb), stride_b, a, type, i32(lda), stride_a, &beta_f, c, type,
                                                  i32(ldc), stride_c, i32(batch), compute_type(dtype),
                                                  CUBLAS_GEMM_DEFAULT));
  }
}

Tensor matmul(const Tensor& a, const Tensor& b) {
  check_operands(a, b, "matmul");
  LOUPE_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: both operands need at least 1 dimension, got shapes ",
              shape_str(a.shape()), " and ", shape_str(b.shape()));
  LOUPE_CHECK(a.size(-1) == b.size(b.dim() == 1 ? 0 : -2), "matmul: inner dimensions differ: ", shape_str(a.shape()),
              " @ ", shape_str(b.shape()));
  // numpy rules: a 1-d left operand is a row (1, k), a 1-d right operand a column (k, 1).
  const Tensor a2 = a.dim() == 1 ? ops::unsqueeze(a, 0) : a;
  const Tensor b2 = b.dim() == 1 ? ops::unsqueeze(b, 1) : b;
  const int64_t m = a2.size(-2), k = a2.size(-1), n = b2.size(-1);
  Tensor out;
  if (b2.dim() == 2 && a2.dim() > 2) {
    // (batch..., m, k) @ (k, n): fold the batch into the rows, one large GEMM.
    const Tensor rows = ops::reshape(a2, {1, -1, k});
    out = Tensor::empty({1, rows.size(1), n}, a.dtype(), a.device());
    if (k == 0) ops::fill_(out, 0.0);
    else batched_product(rows, ops::unsqueeze(b2, 0), out, 0.0);
    Shape shape(a2.shape().begin(), a2.shape().end() - 1);
    shape.push_back(n);
    out = ops::view(out, shape);
  } else {
    const Shape a_batch(a2.shape().begin(), a2.shape().end() - 2);
    const Shape b_batch(b2.shape().begin(), b2.shape().end() - 2);
    const Shape batch = broadcast_shapes(a_batch, b_batch, "matmul");
    Shape a_shape = batch, b_shape = batch, out_shape = batch;
    a_shape.insert(a_shape.end(), {m, k});
    b_shape.insert(b_shape.end(), {k, n});
    out_shape.insert(out_shape.end(), {m, n});
    const int64_t count = shape_numel(batch);
    out = Tensor::empty({count, m, n}, a.dtype(), a.device());
    if (k == 0) {
      ops::fill_(out, 0.0);
    } else if (count > 0) {
      batched_product(ops::reshape(ops::expand(a2, a_shape), {count, m, k}),
                      ops::reshape(ops::expand(b2, b_shape), {count, k, n}), out, 0.0);
    }
    out = ops::view(out, out_shape);
  }
  if (b.dim() == 1) out = ops::squeeze(out, -1);
  if (a.dim() == 1) out = ops::squeeze(out, -1 - (b.dim() == 1 ? 0 : 1));
  return out;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  check_operands(x, weight, "linear");
  LOUPE_CHECK(weight.dim() == 2, "linear: weight must be 2-d (out_features, in_features), got shape ",
              shape_str(weight.shape()));
  LOUPE_CHECK(x.dim() >= 1, "linear: input must have at least 1 dimension, got shape ", shape_str(x.shape()));
  LOUPE_CHECK(x.size(-1) == weight.size(1), "linear: input shape ", shape_str(x.shape()), " does not match weight shape ",
              shape_str(weight.shape()), " (in_features ", weight.size(1), ")");
  if (bias.defined()) {
    LOUPE_CHECK(bias.device() == x.device(), "linear: bias is on ", bias.device().str(), ", input on ", x.device().str());
    LOUPE_CHECK(bias.dtype() == x.dtype(), "linear: bias dtype ", bias.dtype(), " differs from input dtype ", x.dtype());
    LOUPE_CHECK(bias.dim() == 1 && bias.size(0) == weight.size(0), "linear: bias must have shape (", weight.size(0),
                "), got ", shape_str(bias.shape()));
  }
  const int64_t in = weight.size(1), out_features = weight.size(0);
  const Tensor rows = ops::reshape(x, {1, -1, in});  // (1, r, in)
  Tensor out = Tensor::empty({1, rows.size(1), out_features}, x.dtype(), x.device());
  if (out.numel() > 0) {
    // The bias is written first and the product added on top (beta = 1).
    if (bias.defined()) {
      copy_same_device(out, bias);
    } else if (in == 0) {
      ops::fill_(out, 0.0);
    }
    if (in > 0) batched_product(rows, ops::unsqueeze(ops::transpose(weight, 0, 1), 0), out, bias.defined() ? 1.0 : 0.0);
  }
  Shape shape(x.shape().begin(), x.shape().end() - 1);
  shape.push_back(out_features);
  return ops::view(out, shape);
}

}  // namespace loupe::cuda
