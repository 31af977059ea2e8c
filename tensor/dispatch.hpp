// Turns a run-time DType into a compile-time element type for a kernel:
//   dispatch_floating(x.dtype(), "gelu", [&](auto tag) { using T = typename decltype(tag)::type; ... });
// Each family names the dtypes it accepts; any other dtype raises loupe::Error naming the op.
#pragma once

#include <cstdint>

#include "tensor/dtype.hpp"
#include "tensor/error.hpp"

namespace loupe {

template <typename T>
struct TypeTag {
  using type = T;
};

// f32, f64
template <typename F>
decltype(auto) dispatch_floating(DType dtype, const char* op, F&& body) {
  switch (dtype) {
    case DType::f32: return body(TypeTag<float>{});
    case DType::f64: return body(TypeTag<double>{});
    default: break;
  }
  throw Error(detail::make_message(op, ": expected a floating dtype (float32 or float64), got ", dtype));
}

// f32, f64, i64
template <typename F>
decltype(auto) dispatch_numeric(DType dtype, const char* op, F&& body) {
  switch (dtype) {
    case DType::f32: return body(TypeTag<float>{});
    case DType::f64: return body(TypeTag<double>{});
    case DType::i64: return body(TypeTag<int64_t>{});
    default: break;
  }
  throw Error(detail::make_message(op, ": dtype ", dtype, " is not supported (float32, float64, int64)"));
}

// f32, f64, i64, bool
template <typename F>
decltype(auto) dispatch_all(DType dtype, const char* op, F&& body) {
  switch (dtype) {
    case DType::f32: return body(TypeTag<float>{});
    case DType::f64: return body(TypeTag<double>{});
    case DType::i64: return body(TypeTag<int64_t>{});
    case DType::b8: return body(TypeTag<bool>{});
    default: break;
  }
  throw Error(detail::make_message(op, ": dtype ", dtype, " has no CPU kernels"));
}

}  // namespace loupe
