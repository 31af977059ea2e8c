// Functions the CUDA backend's files call on each other (plain C++ declarations, so that the
// .cpp files compiled by the host compiler can call kernels launched from .cu files).
#pragma once

#include "tensor/cpu/conv.hpp"
#include "tensor/tensor.hpp"

namespace loupe::cuda {

// dst = src with dtype conversion and broadcasting, both on the same CUDA device (elementwise.cu).
// The cross-device cases are in transfer.cpp.
void copy_same_device(const Tensor& dst, const Tensor& src);

// Convolution by im2col + cuBLAS GEMM (conv_fallback.cu): used when cuDNN is absent or declines a
// case. Arguments already checked; x, weight and grad_out contiguous.
using ConvShape = cpu::ConvGeometry;  // the geometry the CPU op computes (tensor/ops/conv.hpp)
void conv2d_forward_fallback(const ConvShape& s, const Tensor& x, const Tensor& weight, const Tensor& bias,
                             const Tensor& out);
void conv2d_backward_input_fallback(const ConvShape& s, const Tensor& grad_out, const Tensor& weight,
                                    const Tensor& grad_x);
void conv2d_backward_weight_fallback(const ConvShape& s, const Tensor& grad_out, const Tensor& x,
                                     const Tensor& grad_w);

// C = alpha * op(A) @ op(B) + beta * C for column-major cuBLAS conventions hidden behind a
// row-major interface (blas.cpp): A is (m, k) (or (k, m) if trans_a), B is (k, n) (or (n, k)),
// C is (m, n) with leading dimension ldc; batched with element strides between matrices.
void gemm_strided_batched(DType dtype, int device, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k,
                          double alpha, const void* a, int64_t lda, int64_t stride_a, const void* b, int64_t ldb,
                          int64_t stride_b, double beta, void* c, int64_t ldc, int64_t stride_c, int64_t batch);

}  // namespace loupe::cuda
