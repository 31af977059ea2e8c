// Binary elementwise ops. See binary.hpp.
//
// The reference kernel walks any strides and broadcast (cpu::map_binary). Contiguous float32 /
// float64 arithmetic in the three common layouts -- same shape, a scalar on either side, a row
// broadcast over leading dims (x + bias) -- takes a fast path of plain loops over fixed chunks,
// which the compiler vectorises (LOUPE_REFERENCE_KERNELS=1 turns it off).
#include "tensor/ops/binary.hpp"

#include <algorithm>
#include <cmath>
#include <type_traits>

#include "tensor/cpu/elementwise.hpp"
#include "tensor/cpu/fast_elementwise.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/parallel.hpp"

namespace loupe::ops {

namespace {

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::eq || op == BinaryOp::ne || op == BinaryOp::lt || op == BinaryOp::le ||
         op == BinaryOp::gt || op == BinaryOp::ge;
}
bool is_logical(BinaryOp op) { return op == BinaryOp::logical_and || op == BinaryOp::logical_or; }

// Calls body(f) with the scalar function of `op`.
template <typename Body>
void with_binary(BinaryOp op, Body&& body) {
  switch (op) {
    case BinaryOp::add: return body([](auto a, auto b) { return decltype(a)(a + b); });
    case BinaryOp::sub: return body([](auto a, auto b) { return decltype(a)(a - b); });
    case BinaryOp::mul: return body([](auto a, auto b) { return decltype(a)(a * b); });
    case BinaryOp::div: return body([](auto a, auto b) { return decltype(a)(a / b); });
    case BinaryOp::pow:
      return body([](auto a, auto b) {
        using T = decltype(a);
        if constexpr (std::is_same_v<T, bool>) {
          return T(a || !b);
        } else if constexpr (std::is_integral_v<T>) {
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
      });
    // NaN propagates through maximum/minimum, as in PyTorch.
    case BinaryOp::maximum:
      return body([](auto a, auto b) { return (a != a) ? a : ((b != b) ? b : (a > b ? a : b)); });
    case BinaryOp::minimum:
      return body([](auto a, auto b) { return (a != a) ? a : ((b != b) ? b : (a < b ? a : b)); });
    case BinaryOp::eq: return body([](auto a, auto b) { return a == b; });
    case BinaryOp::ne: return body([](auto a, auto b) { return a != b; });
    case BinaryOp::lt: return body([](auto a, auto b) { return a < b; });
    case BinaryOp::le: return body([](auto a, auto b) { return a <= b; });
    case BinaryOp::gt: return body([](auto a, auto b) { return a > b; });
    case BinaryOp::ge: return body([](auto a, auto b) { return a >= b; });
    case BinaryOp::logical_and: return body([](auto a, auto b) { return a != 0 && b != 0; });
    case BinaryOp::logical_or: return body([](auto a, auto b) { return a != 0 || b != 0; });
  }
}

void check_devices(const char* name, const Tensor& a, const Tensor& b) {
  LOUPE_CHECK(a.device() == b.device(), name, ": operands on different devices (", a.device().str(),
              " and ", b.device().str(), ")");
}

bool has_fast_path(BinaryOp op) {
  return op == BinaryOp::add || op == BinaryOp::sub || op == BinaryOp::mul || op == BinaryOp::div ||
         op == BinaryOp::maximum || op == BinaryOp::minimum;
}

// True when `small`, without its leading size-1 dims, is the trailing part of `shape`.
bool is_trailing_row(const Shape& small, const Shape& shape) {
  size_t first = 0;
  while (first < small.size() && small[first] == 1) ++first;
  const size_t nd = small.size() - first;
  if (nd > shape.size()) return false;
  return std::equal(small.begin() + static_cast<std::ptrdiff_t>(first), small.end(),
                    shape.end() - static_cast<std::ptrdiff_t>(nd));
}

// The fast path of binary(): returns false, writing nothing, unless both operands are contiguous
// and in one of the layouts it handles.
template <typename T, typename F>
bool binary_fast(const Tensor& out, const Tensor& a, const Tensor& b, F f) {
  if (!a.is_contiguous() || !b.is_contiguous()) return false;
  const int64_t n = out.numel();
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  T* po = out.data<T>();
  // Broadcasting only stretches size-1 dims, so an operand with n elements has out's layout.
  if (a.numel() == n && b.numel() == n) {
    cpu::fast::for_chunks(n, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) po[i] = f(pa[i], pb[i]);
    });
  } else if (a.numel() == n && b.numel() == 1) {
    const T v = *pb;
    cpu::fast::for_chunks(n, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) po[i] = f(pa[i], v);
    });
  } else if (a.numel() == 1 && b.numel() == n) {
    const T v = *pa;
    cpu::fast::for_chunks(n, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) po[i] = f(v, pb[i]);
    });
  } else if (a.numel() == n && b.numel() > 0 && is_trailing_row(b.shape(), out.shape())) {
    const int64_t k = b.numel();  // out (n / k, k) = a (n / k, k) op b (k)
    parallel_for(0, n / k, std::max<int64_t>(1, cpu::fast::kChunk / k), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t j = 0; j < k; ++j) po[r * k + j] = f(pa[r * k + j], pb[j]);
      }
    });
  } else if (b.numel() == n && a.numel() > 0 && is_trailing_row(a.shape(), out.shape())) {
    const int64_t k = a.numel();
    parallel_for(0, n / k, std::max<int64_t>(1, cpu::fast::kChunk / k), [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) {
        for (int64_t j = 0; j < k; ++j) po[r * k + j] = f(pa[j], pb[r * k + j]);
      }
    });
  } else {
    return false;
  }
  return true;
}

}  // namespace

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::add: return "add";
    case BinaryOp::sub: return "sub";
    case BinaryOp::mul: return "mul";
    case BinaryOp::div: return "div";
    case BinaryOp::pow: return "pow";
    case BinaryOp::maximum: return "maximum";
    case BinaryOp::minimum: return "minimum";
    case BinaryOp::eq: return "eq";
    case BinaryOp::ne: return "ne";
    case BinaryOp::lt: return "lt";
    case BinaryOp::le: return "le";
    case BinaryOp::gt: return "gt";
    case BinaryOp::ge: return "ge";
    case BinaryOp::logical_and: return "logical_and";
    case BinaryOp::logical_or: return "logical_or";
  }
  return "binary";
}

DType binary_compute_dtype(BinaryOp op, DType a, DType b) {
  const DType common = promote_types(a, b);
  if (op == BinaryOp::div && is_integral(common)) return DType::f32;
  if (common == DType::b8 && !is_comparison(op) && !is_logical(op)) return DType::i64;
  return common;
}

Tensor binary(BinaryOp op, const Tensor& a_in, const Tensor& b_in) {
  const char* name = binary_name(op);
  check_devices(name, a_in, b_in);
  const Shape shape = broadcast_shapes(a_in.shape(), b_in.shape(), name);
  const DType compute = binary_compute_dtype(op, a_in.dtype(), b_in.dtype());
  const Tensor a = to_dtype(a_in, compute);
  const Tensor b = to_dtype(b_in, compute);
  const bool returns_bool = is_comparison(op) || is_logical(op);
  Tensor out = Tensor::empty(shape, returns_bool ? DType::b8 : compute, a.device());
  with_binary(op, [&](auto f) {
    dispatch_all(compute, name, [&](auto tag) {
      using T = typename decltype(tag)::type;
      if (returns_bool) {
        cpu::map_binary<bool, T, T>(out, a, b, [&](T x, T y) { return static_cast<bool>(f(x, y)); });
      } else if constexpr (!std::is_same_v<T, bool>) {
        auto ft = [&](T x, T y) { return static_cast<T>(f(x, y)); };
        if constexpr (std::is_floating_point_v<T>) {
          if (cpu::fast::enabled() && has_fast_path(op) && binary_fast<T>(out, a, b, ft)) return;
        }
        cpu::map_binary<T, T, T>(out, a, b, ft);
      }
    });
  });
  return out;
}

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::div, a, b); }
Tensor pow(const Tensor& a, const Tensor& b) { return binary(BinaryOp::pow, a, b); }
Tensor maximum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return binary(BinaryOp::minimum, a, b); }
Tensor eq(const Tensor& a, const Tensor& b) { return binary(BinaryOp::eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary(BinaryOp::ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary(BinaryOp::le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary(BinaryOp::gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary(BinaryOp::ge, a, b); }
Tensor logical_and(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_and, a, b); }
Tensor logical_or(const Tensor& a, const Tensor& b) { return binary(BinaryOp::logical_or, a, b); }

Tensor logical_not(const Tensor& a) {
  Tensor out = Tensor::empty(a.shape(), DType::b8, a.device());
  dispatch_all(a.dtype(), "logical_not", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::map_unary<bool, T>(out, a, [](T v) { return v == T(0); });
  });
  return out;
}

Tensor scalar_like(double value, const Tensor& like) {
  const bool is_float_value = std::floor(value) != value || !std::isfinite(value);
  const DType dtype = promote_with_scalar(like.dtype(), is_float_value);
  Tensor out = Tensor::empty({}, dtype, like.device());
  fill_(out, value);
  return out;
}

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(b, a)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(b, a)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(b, a)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(b, a)); }
Tensor pow(const Tensor& a, double b) { return pow(a, scalar_like(b, a)); }

Tensor where(const Tensor& cond, const Tensor& a_in, const Tensor& b_in) {
  LOUPE_CHECK(cond.dtype() == DType::b8, "where: condition must be bool, got ", cond.dtype());
  check_devices("where", a_in, b_in);
  const Shape shape =
      broadcast_shapes(cond.shape(), broadcast_shapes(a_in.shape(), b_in.shape(), "where"), "where");
  const DType dtype = promote_types(a_in.dtype(), b_in.dtype());
  const Tensor a = to_dtype(a_in, dtype);
  const Tensor b = to_dtype(b_in, dtype);
  Tensor out = Tensor::empty(shape, dtype, a.device());
  dispatch_all(dtype, "where", [&](auto tag) {
    using T = typename decltype(tag)::type;
    cpu::map_ternary<T, bool, T, T>(out, cond, a, b, [](bool c, T x, T y) { return c ? x : y; });
  });
  return out;
}

void add_(const Tensor& a, const Tensor& b_in, double alpha) {
  const Shape shape = broadcast_shapes(a.shape(), b_in.shape(), "add_");
  LOUPE_CHECK(shape == a.shape(), "add_: shape ", shape_str(b_in.shape()), " does not broadcast to ",
              shape_str(a.shape()));
  const Tensor b = to_dtype(b_in, a.dtype());
  dispatch_numeric(a.dtype(), "add_", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T scale = static_cast<T>(alpha);
    cpu::map_binary<T, T, T>(a, a, b, [scale](T x, T y) { return static_cast<T>(x + scale * y); });
  });
}

}  // namespace loupe::ops
