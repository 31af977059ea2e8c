// CUDA kernels of the unary elementwise ops and their derivatives (the same formulas as
// tensor/ops/unary.cpp, evaluated in the element type). Called from ops::unary and
// ops::unary_backward when the input is on a CUDA device. bfloat16 operands are computed in
// float and rounded back (common.cuh's ViaFloat).
// Tests: tests/cuda/test_cuda.cpp (op table: unary entries)
#include <cmath>
#include <type_traits>

#include "tensor/cuda/elementwise.cuh"
#include "tensor/cuda/ops.hpp"
#include "tensor/ops/copy.hpp"

namespace loupe::cuda {

namespace {

using ops::UnaryOp;

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
constexpr double kGeluTanhCubic = 0.044715;

template <typename T>
__device__ T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// Ops that also make sense on int64 (and keep the integer dtype), as on the CPU.
constexpr bool accepts_integers(UnaryOp op) {
  return op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::sign || op == UnaryOp::square ||
         op == UnaryOp::relu || op == UnaryOp::clamp;
}

// f(x) for one op; a and b are the op's parameters (ops::UnaryParams).
template <UnaryOp Op>
struct Forward {
  double a, b;
  template <typename T>
  __device__ T operator()(T x) const {
    if constexpr (Op == UnaryOp::neg) return T(-x);
    if constexpr (Op == UnaryOp::abs) return x < T(0) ? T(-x) : x;
    if constexpr (Op == UnaryOp::sign) return T((x > T(0)) - (x < T(0)));
    if constexpr (Op == UnaryOp::exp) return std::exp(x);
    if constexpr (Op == UnaryOp::log) return std::log(x);
    if constexpr (Op == UnaryOp::log1p) return std::log1p(x);
    if constexpr (Op == UnaryOp::sqrt) return std::sqrt(x);
    if constexpr (Op == UnaryOp::rsqrt) return T(1) / std::sqrt(x);
    if constexpr (Op == UnaryOp::square) return T(x * x);
    if constexpr (Op == UnaryOp::reciprocal) return T(1) / x;
    if constexpr (Op == UnaryOp::sin) return std::sin(x);
    if constexpr (Op == UnaryOp::cos) return std::cos(x);
    if constexpr (Op == UnaryOp::relu) return x > T(0) ? x : T(0);
    if constexpr (Op == UnaryOp::sigmoid) return stable_sigmoid(x);
    if constexpr (Op == UnaryOp::tanh) return std::tanh(x);
    if constexpr (Op == UnaryOp::gelu_erf) return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
    if constexpr (Op == UnaryOp::gelu_tanh) {
      return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x)));
    }
    if constexpr (Op == UnaryOp::silu) return x * stable_sigmoid(x);
    if constexpr (Op == UnaryOp::softplus) {
      // Above the threshold softplus is the identity to within float precision (PyTorch's rule).
      return x * T(a) > T(b) ? x : T(std::log1p(std::exp(x * T(a))) / T(a));
    }
    if constexpr (Op == UnaryOp::elu) return x > T(0) ? x : T(T(a) * std::expm1(x));
    if constexpr (Op == UnaryOp::leaky_relu) return x > T(0) ? x : T(T(a) * x);
    if constexpr (Op == UnaryOp::clamp) {
      if (a == a && x < T(a)) x = T(a);  // a NaN bound (a != a) means "no bound"
      if (b == b && x > T(b)) x = T(b);
      return x;
    }
  }
};

// g * f'(x), with y = f(x).
template <UnaryOp Op>
struct Derivative {
  double a, b;
  template <typename T>
  __device__ T operator()(T x, T y, T g) const {
    if constexpr (Op == UnaryOp::neg) return -g;
    if constexpr (Op == UnaryOp::abs) return x > T(0) ? g : (x < T(0) ? -g : T(0));
    if constexpr (Op == UnaryOp::sign) return T(0);
    if constexpr (Op == UnaryOp::exp) return g * y;
    if constexpr (Op == UnaryOp::log) return g / x;
    if constexpr (Op == UnaryOp::log1p) return g / (T(1) + x);
    if constexpr (Op == UnaryOp::sqrt) return g / (T(2) * y);
    if constexpr (Op == UnaryOp::rsqrt) return T(-0.5) * g * y * y * y;
    if constexpr (Op == UnaryOp::square) return T(2) * x * g;
    if constexpr (Op == UnaryOp::reciprocal) return -g * y * y;
    if constexpr (Op == UnaryOp::sin) return g * std::cos(x);
    if constexpr (Op == UnaryOp::cos) return -g * std::sin(x);
    if constexpr (Op == UnaryOp::relu) return x > T(0) ? g : T(0);  // ReLU'(0) = 0
    if constexpr (Op == UnaryOp::sigmoid) return g * y * (T(1) - y);
    if constexpr (Op == UnaryOp::tanh) return g * (T(1) - y * y);
    if constexpr (Op == UnaryOp::gelu_erf) {
      const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
      const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
      return g * (cdf + x * pdf);
    }
    if constexpr (Op == UnaryOp::gelu_tanh) {
      const T inner = T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x);
      const T t = std::tanh(inner);
      const T d_inner = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCubic) * x * x);
      return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * d_inner);
    }
    if constexpr (Op == UnaryOp::silu) {
      const T s = stable_sigmoid(x);
      return g * s * (T(1) + x * (T(1) - s));
    }
    if constexpr (Op == UnaryOp::softplus) return x * T(a) > T(b) ? g : g * stable_sigmoid(x * T(a));
    if constexpr (Op == UnaryOp::elu) return x > T(0) ? g : g * T(a) * std::exp(x);
    if constexpr (Op == UnaryOp::leaky_relu) return x > T(0) ? g : g * T(a);
    if constexpr (Op == UnaryOp::clamp) {
      // The gradient passes where min <= x <= max, as in PyTorch.
      const bool inside = (a != a || x >= T(a)) && (b != b || x <= T(b));
      return inside ? g : T(0);
    }
  }
};

// Calls body(std::integral_constant<UnaryOp, op>) so the op becomes a template argument.
template <typename Body>
void with_op(UnaryOp op, Body&& body) {
#define LOUPE_UNARY_CASE(name) \
  case UnaryOp::name: return body(std::integral_constant<UnaryOp, UnaryOp::name>{});
  switch (op) {
    LOUPE_UNARY_CASE(neg) LOUPE_UNARY_CASE(abs) LOUPE_UNARY_CASE(sign) LOUPE_UNARY_CASE(exp)
    LOUPE_UNARY_CASE(log) LOUPE_UNARY_CASE(log1p) LOUPE_UNARY_CASE(sqrt) LOUPE_UNARY_CASE(rsqrt)
    LOUPE_UNARY_CASE(square) LOUPE_UNARY_CASE(reciprocal) LOUPE_UNARY_CASE(sin) LOUPE_UNARY_CASE(cos)
    LOUPE_UNARY_CASE(relu) LOUPE_UNARY_CASE(sigmoid) LOUPE_UNARY_CASE(tanh) LOUPE_UNARY_CASE(gelu_erf)
    LOUPE_UNARY_CASE(gelu_tanh) LOUPE_UNARY_CASE(silu) LOUPE_UNARY_CASE(softplus) LOUPE_UNARY_CASE(elu)
    LOUPE_UNARY_CASE(leaky_relu) LOUPE_UNARY_CASE(clamp)
  }
#undef LOUPE_UNARY_CASE
}

}  // namespace

Tensor unary(UnaryOp op, const Tensor& x_in, ops::UnaryParams params) {
  const char* name = ops::unary_name(op);
  LOUPE_CHECK(x_in.dtype() != DType::b8, name, ": bool input of shape ", shape_str(x_in.shape()),
              " is not supported");
  const bool keep_integers = x_in.dtype() == DType::i64 && accepts_integers(op);
  const Tensor x = keep_integers || is_floating(x_in.dtype()) ? x_in : ops::to_dtype(x_in, DType::f32);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  with_op(op, [&](auto op_tag) {
    constexpr UnaryOp kOp = decltype(op_tag)::value;
    dispatch_numeric_bf16(x.dtype(), name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bf16>) {
        launch_map<T, T>(name, out, via_float(Forward<kOp>{params.a, params.b}), x);
      } else if constexpr (std::is_floating_point_v<T> || accepts_integers(kOp)) {
        launch_map<T, T>(name, out, Forward<kOp>{params.a, params.b}, x);
      }
    });
  });
  return out;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, ops::UnaryParams params) {
  const char* name = ops::unary_name(op);
  LOUPE_CHECK(x.shape() == g.shape() && y.shape() == g.shape(), name, "_backward: shapes ", shape_str(x.shape()),
              ", ", shape_str(y.shape()), ", ", shape_str(g.shape()), " differ");
  check_same_device(name, g.device(), {&x, &y});
  Tensor out = Tensor::empty(g.shape(), g.dtype(), g.device());
  const Tensor xs = ops::to_dtype(x, g.dtype());
  const Tensor ys = ops::to_dtype(y, g.dtype());
  with_op(op, [&](auto op_tag) {
    constexpr UnaryOp kOp = decltype(op_tag)::value;
    dispatch_floating_bf16(g.dtype(), name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if constexpr (std::is_same_v<T, bf16>) {
        launch_map<T, T, T, T>(name, out, via_float(Derivative<kOp>{params.a, params.b}), xs, ys, g);
      } else {
        launch_map<T, T, T, T>(name, out, Derivative<kOp>{params.a, params.b}, xs, ys, g);
      }
    });
  });
  return out;
}

}  // namespace loupe::cuda
