// CUDA kernels of the binary elementwise ops (with broadcasting and type promotion, the same rules
// as tensor/ops/binary.cpp), logical_not, where and the in-place add_. bfloat16 operands are
// computed in float and rounded back (common.cuh's ViaFloat); bf16 with float32 promotes to float32.
// Tests: tests/cuda/test_cuda.cpp (op table: binary entries)
#include <cmath>
#include <type_traits>

#include "tensor/cuda/elementwise.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe::cuda {

namespace {

using ops::BinaryOp;

constexpr bool is_comparison(BinaryOp op) {
  return op == BinaryOp::eq || op == BinaryOp::ne || op == BinaryOp::lt || op == BinaryOp::le ||
         op == BinaryOp::gt || op == BinaryOp::ge;
}
constexpr bool is_logical(BinaryOp op) { return op == BinaryOp::logical_and || op == BinaryOp::logical_or; }

template <BinaryOp Op>
struct Binary {
  template <typename T>
  __device__ auto operator()(T a, T b) const {
    if constexpr (Op == BinaryOp::add) return T(a + b);
    if constexpr (Op == BinaryOp::sub) return T(a - b);
    if constexpr (Op == BinaryOp::mul) return T(a * b);
    if constexpr (Op == BinaryOp::div) return T(a / b);
    if constexpr (Op == BinaryOp::pow) {
      if constexpr (std::is_integral_v<T>) {
        // Integer power by squaring; negative exponents give 0 except for bases 1 and -1.
        if (b < 0) return T(a == 1 ? 1 : (a == -1 ? ((b % 2) ? -1 : 1) : 0));
        T result = 1, base = a;
        for (T e = b; e > 0; e >>= 1) {
          if (e & 1) result *= base;
          base *= base;
        }
        return result;
      } else {
        return T(std::pow(a, b));
      }
    }
    // NaN propagates through maximum/minimum, as in PyTorch.
    if constexpr (Op == BinaryOp::maximum) return (a != a) ? a : ((b != b) ? b : (a > b ? a : b));
    if constexpr (Op == BinaryOp::minimum) return (a != a) ? a : ((b != b) ? b : (a < b ? a : b));
    if constexpr (Op == BinaryOp::eq) return a == b;
    if constexpr (Op == BinaryOp::ne) return a != b;
    if constexpr (Op == BinaryOp::lt) return a < b;
    if constexpr (Op == BinaryOp::le) return a <= b;
    if constexpr (Op == BinaryOp::gt) return a > b;
    if constexpr (Op == BinaryOp::ge) return a >= b;
    if constexpr (Op == BinaryOp::logical_and) return a != T(0) && b != T(0);
    if constexpr (Op == BinaryOp::logical_or) return a != T(0) || b != T(0);
  }
};

template <typename Body>
void with_op(BinaryOp op, Body&& body) {
#define LOUPE_BINARY_CASE(name) \
  case BinaryOp::name: return body(std::integral_constant<BinaryOp, BinaryOp::name>{});
  switch (op) {
    LOUPE_BINARY_CASE(add) LOUPE_BINARY_CASE(sub) LOUPE_BINARY_CASE(mul) LOUPE_BINARY_CASE(div)
    LOUPE_BINARY_CASE(pow) LOUPE_BINARY_CASE(maximum) LOUPE_BINARY_CASE(minimum) LOUPE_BINARY_CASE(eq)
    LOUPE_BINARY_CASE(ne) LOUPE_BINARY_CASE(lt) LOUPE_BINARY_CASE(le) LOUPE_BINARY_CASE(gt)
    LOUPE_BINARY_CASE(ge) LOUPE_BINARY_CASE(logical_and) LOUPE_BINARY_CASE(logical_or)
  }
#undef LOUPE_BINARY_CASE
}

struct Not {
  template <typename T>
  __device__ bool operator()(T v) const {
    return v == T(0);
  }
};

struct Select {
  template <typename T>
  __device__ T operator()(bool c, T a, T b) const {
    return c ? a : b;
  }
};

template <typename T>
struct AddScaled {
  T scale;
  __device__ T operator()(T a, T b) const { return T(a + scale * b); }
};

void check_devices(const char* name, const Tensor& a, const Tensor& b) {
  LOUPE_CHECK(a.device() == b.device(), name, ": operands on different devices (", a.device().str(), " and ",
              b.device().str(), ")");
}

}  // namespace

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = ops::binary_name(op);
  check_devices(name, a_in, b_in);
  const Shape shape = broadcast_shapes(a_in.shape(), b_in.shape(), name);
  const DType compute = ops::binary_compute_dtype(op, a_in.dtype(), b_in.dtype());
  const Tensor a = ops::to_dtype(a_in, compute);
  const Tensor b = ops::to_dtype(b_in, compute);
  const bool returns_bool = is_comparison(op) || is_logical(op);
  Tensor out = Tensor::empty(shape, returns_bool ? DType::b8 : compute, a.device());
  with_op(op, [&](auto op_tag) {
    constexpr BinaryOp kOp = decltype(op_tag)::value;
    constexpr bool kBool = is_comparison(kOp) || is_logical(kOp);
    dispatch_all_bf16(compute, name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      // Arithmetic never computes in bool (binary_compute_dtype promotes it to int64).
      if constexpr (std::is_same_v<T, bf16>) {
        launch_map<std::conditional_t<kBool, bool, T>, T, T>(name, out, via_float(Binary<kOp>{}), a, b);
      } else if constexpr (kBool) {
        launch_map<bool, T, T>(name, out, Binary<kOp>{}, a, b);
      } else if constexpr (!std::is_same_v<T, bool>) {
        launch_map<T, T, T>(name, out, Binary<kOp>{}, a, b);
      }
    });
  });
  return out;
}

Tensor logical_not(const Tensor& x) {
  Tensor out = Tensor::empty(x.shape(), DType::b8, x.device());
  dispatch_all_bf16(x.dtype(), "logical_not", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      launch_map<bool, T>("logical_not", out, via_float(Not{}), x);
    } else {
      launch_map<bool, T>("logical_not", out, Not{}, x);
    }
  });
  return out;
}

Tensor where(const Tensor& cond, const Tensor& a_in, const Tensor& b_in) {
  LOUPE_CHECK(cond.dtype() == DType::b8, "where: condition must be bool, got ", cond.dtype());
  check_devices("where", a_in, b_in);
  check_devices("where", cond, a_in);
  const Shape shape = broadcast_shapes(cond.shape(), broadcast_shapes(a_in.shape(), b_in.shape(), "where"), "where");
  const DType dtype = promote_types(a_in.dtype(), b_in.dtype());
  const Tensor a = ops::to_dtype(a_in, dtype);
  const Tensor b = ops::to_dtype(b_in, dtype);
  Tensor out = Tensor::empty(shape, dtype, a.device());
  dispatch_all_bf16(dtype, "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    launch_map<T, bool, T, T>("where", out, Select{}, cond, a, b);
  });
  return out;
}

void add_(const Tensor& a, const Tensor& b_in, double alpha) {
  const Shape shape = broadcast_shapes(a.shape(), b_in.shape(), "add_");
  LOUPE_CHECK(shape == a.shape(), "add_: shape ", shape_str(b_in.shape()), " does not broadcast to ",
              shape_str(a.shape()));
  check_devices("add_", a, b_in);
  const Tensor b = ops::to_dtype(b_in, a.dtype());
  dispatch_numeric_bf16(a.dtype(), "add_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    if constexpr (std::is_same_v<T, bf16>) {
      launch_map<T, T, T>("add_", a, via_float(AddScaled<float>{static_cast<float>(alpha)}), a, b);
    } else {
      launch_map<T, T, T>("add_", a, AddScaled<T>{static_cast<T>(alpha)}, a, b);
    }
  });
}

}  // namespace loupe::cuda
