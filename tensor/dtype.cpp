// DType helpers. See dtype.hpp.
#include "tensor/dtype.hpp"

#include "tensor/error.hpp"

namespace loupe {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::f32: return 4;
    case DType::f64: return 8;
    case DType::i64: return 8;
    case DType::b8: return 1;
    case DType::f16: return 2;
    case DType::bf16: return 2;
  }
  throw Error("dtype_size: unknown dtype");
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::f32: return "float32";
    case DType::f64: return "float64";
    case DType::i64: return "int64";
    case DType::b8: return "bool";
    case DType::f16: return "float16";
    case DType::bf16: return "bfloat16";
  }
  return "unknown";
}

bool is_floating(DType dtype) {
  return dtype == DType::f32 || dtype == DType::f64 || dtype == DType::f16 || dtype == DType::bf16;
}

bool is_integral(DType dtype) { return dtype == DType::i64 || dtype == DType::b8; }

namespace {
int promotion_rank(DType dtype) {
  switch (dtype) {
    case DType::b8: return 0;
    case DType::i64: return 1;
    case DType::f16: return 2;
    case DType::bf16: return 2;
    case DType::f32: return 3;
    case DType::f64: return 4;
  }
  return 0;
}
}  // namespace

DType promote_types(DType a, DType b) {
  if (a == b) return a;
  if ((a == DType::f16 && b == DType::bf16) || (a == DType::bf16 && b == DType::f16)) return DType::f32;
  return promotion_rank(a) >= promotion_rank(b) ? a : b;
}

DType promote_with_scalar(DType tensor_dtype, bool scalar_is_floating) {
  if (is_floating(tensor_dtype)) return tensor_dtype;
  if (scalar_is_floating) return DType::f32;
  return tensor_dtype == DType::b8 ? DType::i64 : tensor_dtype;
}

std::ostream& operator<<(std::ostream& out, DType dtype) { return out << dtype_name(dtype); }

}  // namespace loupe
