// DType: the element types a tensor can hold, their sizes, names and PyTorch-like promotion.
// f16/bf16 are storage-only types reserved for the GPU backend; CPU kernels reject them.
// Tests: tests/tensor/test_dtype.cpp
#pragma once

#include <cstddef>
#include <cstdint>
#include <ostream>
#include <string>

namespace loupe {

enum class DType : uint8_t { f32, f64, i64, b8, f16, bf16 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "float64", "int64", "bool", ...
bool is_floating(DType dtype);
bool is_integral(DType dtype);         // i64 and bool

// Result type of a binary op on two tensors (torch.promote_types):
// bool < i64 < f16/bf16 < f32 < f64; f16 with bf16 gives f32.
DType promote_types(DType a, DType b);

// Result type when a tensor meets a plain C++ number: a float scalar lifts an integral tensor to
// f32 (the default float type) but never changes a floating tensor's precision.
DType promote_with_scalar(DType tensor_dtype, bool scalar_is_floating);

std::ostream& operator<<(std::ostream& out, DType dtype);

// The C++ type that holds one element of each CPU dtype.
template <typename T>
struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::b8; };

}  // namespace loupe
