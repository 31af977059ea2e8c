// Binary elementwise ops with broadcasting and type promotion (raw forward), plus where().
// Arithmetic promotes both operands to promote_types(a, b); comparisons and logical ops return
// bool; true division of integers gives float32. Scalar overloads treat the number like PyTorch
// treats a Python scalar: it never widens a floating tensor.
// Tests: tests/ops/op_table_binary.cpp
#pragma once

#include "tensor/tensor.hpp"

namespace loupe::ops {

enum class BinaryOp { add, sub, mul, div, pow, maximum, minimum, eq, ne, lt, le, gt, ge, logical_and, logical_or };

const char* binary_name(BinaryOp op);
Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b);
// The dtype binary(op, a, b) computes in and the dtype it returns.
DType binary_compute_dtype(BinaryOp op, DType a, DType b);

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor pow(const Tensor& a, const Tensor& b);
Tensor maximum(const Tensor& a, const Tensor& b);
Tensor minimum(const Tensor& a, const Tensor& b);
Tensor eq(const Tensor& a, const Tensor& b);
Tensor ne(const Tensor& a, const Tensor& b);
Tensor lt(const Tensor& a, const Tensor& b);
Tensor le(const Tensor& a, const Tensor& b);
Tensor gt(const Tensor& a, const Tensor& b);
Tensor ge(const Tensor& a, const Tensor& b);
Tensor logical_and(const Tensor& a, const Tensor& b);
Tensor logical_or(const Tensor& a, const Tensor& b);
Tensor logical_not(const Tensor& a);

// A 0-d tensor holding `value` in the dtype a Python scalar would take next to `like`.
Tensor scalar_like(double value, const Tensor& like);

Tensor add(const Tensor& a, double b);
Tensor sub(const Tensor& a, double b);
Tensor mul(const Tensor& a, double b);
Tensor div(const Tensor& a, double b);
Tensor pow(const Tensor& a, double b);

// cond ? a : b elementwise, all three broadcast together; cond must be bool.
Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b);

// In place: a += b (b broadcast to a's shape, converted to a's dtype). Used by gradient
// accumulation and optimisers; not differentiable.
void add_(const Tensor& a, const Tensor& b, double alpha = 1.0);

}  // namespace loupe::ops
