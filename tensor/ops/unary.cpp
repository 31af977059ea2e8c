// Unary elementwise ops and their derivative kernels. See unary.hpp.
//
// Each op is one entry of two tables below: its scalar forward function and its scalar
// derivative g * f'(x) (given x and y = f(x)). The generic kernels apply them over any layout;
// contiguous float32 inputs of the transcendental ops take the vectorised kernels of
// tensor/cpu/fast_elementwise.hpp, and contiguous backward operands a plain loop the compiler
// vectorises (LOUPE_REFERENCE_KERNELS=1 turns both off).
#include "tensor/ops/unary.hpp"

#include <cmath>
#include <limits>

#include "tensor/cpu/elementwise.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/cuda/ops.hpp"

namespace loupe::ops {

namespace {

constexpr double kSqrt2OverPi = 0.7978845608028654;
constexpr double kInvSqrt2 = 0.7071067811865476;
constexpr double kInvSqrt2Pi = 0.3989422804014327;
constexpr double kGeluTanhCubic = 0.044715;

template <typename T>
T stable_sigmoid(T x) {
  if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
  const T e = std::exp(x);
  return e / (T(1) + e);
}

// Calls body(f) with the scalar forward function of `op` (a generic lambda).
template <typename Body>
void with_forward(UnaryOp op, UnaryParams p, Body&& body) {
  switch (op) {
    case UnaryOp::neg: return body([](auto x) { return decltype(x)(-x); });
    case UnaryOp::abs: return body([](auto x) { return x < 0 ? decltype(x)(-x) : x; });
    case UnaryOp::sign: return body([](auto x) { using T = decltype(x); return T((x > T(0)) - (x < T(0))); });
    case UnaryOp::exp: return body([](auto x) { return std::exp(x); });
    case UnaryOp::log: return body([](auto x) { return std::log(x); });
    case UnaryOp::log1p: return body([](auto x) { return std::log1p(x); });
    case UnaryOp::sqrt: return body([](auto x) { return std::sqrt(x); });
    case UnaryOp::rsqrt: return body([](auto x) { using T = decltype(x); return T(1) / std::sqrt(x); });
    case UnaryOp::square: return body([](auto x) { return decltype(x)(x * x); });
    case UnaryOp::reciprocal: return body([](auto x) { using T = decltype(x); return T(1) / x; });
    case UnaryOp::sin: return body([](auto x) { return std::sin(x); });
    case UnaryOp::cos: return body([](auto x) { return std::cos(x); });
    case UnaryOp::relu: return body([](auto x) { using T = decltype(x); return x > T(0) ? x : T(0); });
    case UnaryOp::sigmoid: return body([](auto x) { return stable_sigmoid(x); });
    case UnaryOp::tanh: return body([](auto x) { return std::tanh(x); });
    case UnaryOp::gelu_erf:
      return body([](auto x) { using T = decltype(x); return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2))); });
    case UnaryOp::gelu_tanh:
      return body([](auto x) {
        using T = decltype(x);
        return T(0.5) * x * (T(1) + std::tanh(T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x)));
      });
    case UnaryOp::silu: return body([](auto x) { return x * stable_sigmoid(x); });
    case UnaryOp::softplus:
      return body([beta = p.a, threshold = p.b](auto x) {
        using T = decltype(x);
        // Above the threshold softplus is the identity to within float precision (PyTorch's rule).
        return x * T(beta) > T(threshold) ? x : std::log1p(std::exp(x * T(beta))) / T(beta);
      });
    case UnaryOp::elu:
      return body([alpha = p.a](auto x) { using T = decltype(x); return x > T(0) ? x : T(alpha) * std::expm1(x); });
    case UnaryOp::leaky_relu:
      return body([slope = p.a](auto x) { using T = decltype(x); return x > T(0) ? x : T(slope) * x; });
    case UnaryOp::clamp:
      return body([lo = p.a, hi = p.b](auto x) {
        using T = decltype(x);
        if (!std::isnan(lo) && x < T(lo)) x = T(lo);
        if (!std::isnan(hi) && x > T(hi)) x = T(hi);
        return x;
      });
  }
}

// Calls body(d) with d(x, y, g) = g * f'(x) for `op`.
template <typename Body>
void with_derivative(UnaryOp op, UnaryParams p, Body&& body) {
  switch (op) {
    case UnaryOp::neg: return body([](auto, auto, auto g) { return -g; });
    case UnaryOp::abs:
      return body([](auto x, auto, auto g) { using T = decltype(g); return x > 0 ? g : (x < 0 ? -g : T(0)); });
    case UnaryOp::sign: return body([](auto, auto, auto g) { return decltype(g)(0); });
    case UnaryOp::exp: return body([](auto, auto y, auto g) { return g * y; });
    case UnaryOp::log: return body([](auto x, auto, auto g) { return g / x; });
    case UnaryOp::log1p: return body([](auto x, auto, auto g) { using T = decltype(g); return g / (T(1) + x); });
    case UnaryOp::sqrt: return body([](auto, auto y, auto g) { using T = decltype(g); return g / (T(2) * y); });
    case UnaryOp::rsqrt: return body([](auto, auto y, auto g) { using T = decltype(g); return T(-0.5) * g * y * y * y; });
    case UnaryOp::square: return body([](auto x, auto, auto g) { using T = decltype(g); return T(2) * x * g; });
    case UnaryOp::reciprocal: return body([](auto, auto y, auto g) { return -g * y * y; });
    case UnaryOp::sin: return body([](auto x, auto, auto g) { return g * std::cos(x); });
    case UnaryOp::cos: return body([](auto x, auto, auto g) { return -g * std::sin(x); });
    case UnaryOp::relu:  // ReLU'(0) = 0 (REFERENCE.md section 1)
      return body([](auto x, auto, auto g) { using T = decltype(g); return x > 0 ? g : T(0); });
    case UnaryOp::sigmoid: return body([](auto, auto y, auto g) { using T = decltype(g); return g * y * (T(1) - y); });
    case UnaryOp::tanh: return body([](auto, auto y, auto g) { using T = decltype(g); return g * (T(1) - y * y); });
    case UnaryOp::gelu_erf:
      return body([](auto x, auto, auto g) {
        using T = decltype(g);
        const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
        const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
        return g * (cdf + x * pdf);
      });
    case UnaryOp::gelu_tanh:
      return body([](auto x, auto, auto g) {
        using T = decltype(g);
        const T inner = T(kSqrt2OverPi) * (x + T(kGeluTanhCubic) * x * x * x);
        const T t = std::tanh(inner);
        const T d_inner = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCubic) * x * x);
        return g * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * d_inner);
      });
    case UnaryOp::silu:
      return body([](auto x, auto, auto g) {
        using T = decltype(g);
        const T s = stable_sigmoid(x);
        return g * s * (T(1) + x * (T(1) - s));
      });
    case UnaryOp::softplus:
      return body([beta = p.a, threshold = p.b](auto x, auto, auto g) {
        using T = decltype(g);
        return x * T(beta) > T(threshold) ? g : g * stable_sigmoid(x * T(beta));
      });
    case UnaryOp::elu:
      return body([alpha = p.a](auto x, auto, auto g) {
        using T = decltype(g);
        return x > T(0) ? g : g * T(alpha) * std::exp(x);
      });
    case UnaryOp::leaky_relu:
      return body([slope = p.a](auto x, auto, auto g) { using T = decltype(g); return x > T(0) ? g : g * T(slope); });
    case UnaryOp::clamp:
      // The gradient passes where min <= x <= max, as in PyTorch.
      return body([lo = p.a, hi = p.b](auto x, auto, auto g) {
        using T = decltype(g);
        const bool inside = (std::isnan(lo) || x >= T(lo)) && (std::isnan(hi) || x <= T(hi));
        return inside ? g : T(0);
      });
  }
}

// Ops that also make sense on int64 (and keep the integer dtype).
bool accepts_integers(UnaryOp op) {
  return op == UnaryOp::neg || op == UnaryOp::abs || op == UnaryOp::sign || op == UnaryOp::square ||
         op == UnaryOp::relu || op == UnaryOp::clamp;
}

}  // namespace

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::neg: return "neg";
    case UnaryOp::abs: return "abs";
    case UnaryOp::sign: return "sign";
    case UnaryOp::exp: return "exp";
    case UnaryOp::log: return "log";
    case UnaryOp::log1p: return "log1p";
    case UnaryOp::sqrt: return "sqrt";
    case UnaryOp::rsqrt: return "rsqrt";
    case UnaryOp::square: return "square";
    case UnaryOp::reciprocal: return "reciprocal";
    case UnaryOp::sin: return "sin";
    case UnaryOp::cos: return "cos";
    case UnaryOp::relu: return "relu";
    case UnaryOp::sigmoid: return "sigmoid";
    case UnaryOp::tanh: return "tanh";
    case UnaryOp::gelu_erf: return "gelu";
    case UnaryOp::gelu_tanh: return "gelu_tanh";
    case UnaryOp::silu: return "silu";
    case UnaryOp::softplus: return "softplus";
    case UnaryOp::elu: return "elu";
    case UnaryOp::leaky_relu: return "leaky_relu";
    case UnaryOp::clamp: return "clamp";
  }
  return "unary";
}

Tensor unary(UnaryOp op, const Tensor& x_in, UnaryParams params) {
  if (x_in.device().is_cuda()) return cuda::unary(op, x_in, params);
  const char* name = unary_name(op);
  LOUPE_CHECK(x_in.dtype() != DType::b8, name, ": bool input of shape ", shape_str(x_in.shape()),
              " is not supported");
  const bool keep_integers = accepts_integers(op) && x_in.dtype() == DType::i64;
  const Tensor x = keep_integers || is_floating(x_in.dtype()) ? x_in : to_dtype(x_in, DType::f32);
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (cpu::fast::enabled() && x.dtype() == DType::f32 && x.is_contiguous() && cpu::fast::has_unary_f32(op)) {
    cpu::fast::unary_f32(op, x.data<float>(), out.data<float>(), x.numel());
    return out;
  }
  with_forward(op, params, [&](auto f) {
    dispatch_numeric(x.dtype(), name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      cpu::map_unary<T, T>(out, x, [&](T v) { return static_cast<T>(f(v)); });
    });
  });
  return out;
}

Tensor unary_backward(UnaryOp op, const Tensor& x, const Tensor& y, const Tensor& g, UnaryParams params) {
  if (g.device().is_cuda()) return cuda::unary_backward(op, x, y, g, params);
  const char* name = unary_name(op);
  LOUPE_CHECK(x.shape() == g.shape() && y.shape() == g.shape(), name, "_backward: shapes ",
              shape_str(x.shape()), ", ", shape_str(y.shape()), ", ", shape_str(g.shape()), " differ");
  Tensor out = Tensor::empty(g.shape(), g.dtype(), g.device());
  const Tensor xs = to_dtype(x, g.dtype());
  const Tensor ys = to_dtype(y, g.dtype());
  with_derivative(op, params, [&](auto d) {
    dispatch_floating(g.dtype(), name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      auto dt = [&](T xv, T yv, T gv) { return static_cast<T>(d(xv, yv, gv)); };
      if (cpu::fast::enabled() && xs.is_contiguous() && ys.is_contiguous() && g.is_contiguous()) {
        if constexpr (std::is_same_v<T, float>) {
          if (cpu::fast::unary_backward_f32(op, xs.data<float>(), g.data<float>(), out.data<float>(), g.numel())) return;
        }
        const T* px = xs.data<T>();
        const T* py = ys.data<T>();
        const T* pg = g.data<T>();
        T* po = out.data<T>();
        cpu::fast::for_chunks(g.numel(), [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) po[i] = dt(px[i], py[i], pg[i]);
        });
        return;
      }
      cpu::map_ternary<T, T, T, T>(out, xs, ys, g, dt);
    });
  });
  return out;
}

Tensor neg(const Tensor& x) { return unary(UnaryOp::neg, x); }
Tensor abs(const Tensor& x) { return unary(UnaryOp::abs, x); }
Tensor sign(const Tensor& x) { return unary(UnaryOp::sign, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::log, x); }
Tensor log1p(const Tensor& x) { return unary(UnaryOp::log1p, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::sqrt, x); }
Tensor rsqrt(const Tensor& x) { return unary(UnaryOp::rsqrt, x); }
Tensor square(const Tensor& x) { return unary(UnaryOp::square, x); }
Tensor reciprocal(const Tensor& x) { return unary(UnaryOp::reciprocal, x); }
Tensor sin(const Tensor& x) { return unary(UnaryOp::sin, x); }
Tensor cos(const Tensor& x) { return unary(UnaryOp::cos, x); }
Tensor relu(const Tensor& x) { return unary(UnaryOp::relu, x); }
Tensor sigmoid(const Tensor& x) { return unary(UnaryOp::sigmoid, x); }
Tensor tanh(const Tensor& x) { return unary(UnaryOp::tanh, x); }
Tensor gelu(const Tensor& x, bool tanh_approximation) {
  return unary(tanh_approximation ? UnaryOp::gelu_tanh : UnaryOp::gelu_erf, x);
}
Tensor silu(const Tensor& x) { return unary(UnaryOp::silu, x); }
Tensor softplus(const Tensor& x, double beta, double threshold) {
  return unary(UnaryOp::softplus, x, {beta, threshold});
}
Tensor elu(const Tensor& x, double alpha) { return unary(UnaryOp::elu, x, {alpha, 0.0}); }
Tensor leaky_relu(const Tensor& x, double negative_slope) {
  return unary(UnaryOp::leaky_relu, x, {negative_slope, 0.0});
}
Tensor clamp(const Tensor& x, double min, double max) { return unary(UnaryOp::clamp, x, {min, max}); }

}  // namespace loupe::ops
