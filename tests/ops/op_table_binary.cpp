// Op table entries: binary elementwise ops with broadcasting, and where().
#include <cmath>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// a (3, 1, 4) with b (5, 1): broadcast to (3, 5, 4).
OpCase binary_case(const std::string& name, std::function<Tensor(const Tensor&, const Tensor&)> op,
                   std::function<double(double, double)> f, double lo = -2.0, double hi = 2.0,
                   bool differentiable = true) {
  OpCase c;
  c.name = name;
  c.make_inputs = [lo, hi](DType dtype) {
    return Inputs{random_tensor({3, 1, 4}, dtype, lo, hi, 31), random_tensor({5, 1}, dtype, lo, hi, 32)};
  };
  c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({0, 4}, dtype), zeros({1, 4}, dtype)}; };
  c.op = [op](const Inputs& in) { return op(in[0], in[1]); };
  c.reference = [f](const Inputs& in) { return ref::map2(in[0], in[1], f); };
  c.differentiable = differentiable;
  return c;
}

// Ops with one tensor operand (a tensor-scalar op, or a logical op on one tensor).
OpCase scalar_case(const std::string& name, std::function<Tensor(const Tensor&)> op, std::function<double(double)> f,
                   bool differentiable = true) {
  OpCase c;
  c.name = name;
  c.make_inputs = [](DType dtype) { return Inputs{random_tensor({4, 6}, dtype, -2, 2, 36)}; };
  c.op = [op](const Inputs& in) { return op(in[0]); };
  c.reference = [f](const Inputs& in) { return ref::map(in[0], f); };
  c.differentiable = differentiable;
  return c;
}

OpCase where_case() {
  OpCase c;
  c.name = "where";
  c.make_inputs = [](DType dtype) {
    return Inputs{ops::gt(random_tensor({4, 3}, DType::f64, -1, 1, 33), scalar_tensor(0.0, DType::f64)),
                  random_tensor({4, 3}, dtype, -1, 1, 34), random_tensor({3}, dtype, -1, 1, 35)};
  };
  c.op = [](const Inputs& in) { return where(in[0], in[1], in[2]); };
  c.reference = [](const Inputs& in) {
    const Shape shape = ref::broadcast(in[0].shape(), ref::broadcast(in[1].shape(), in[2].shape()));
    const auto cv = values(in[0]), av = values(in[1]), bv = values(in[2]);
    std::vector<double> out(static_cast<size_t>(shape_numel(shape)));
    for (int64_t i = 0; i < shape_numel(shape); ++i) {
      const auto idx = ref::unravel(i, shape);
      out[static_cast<size_t>(i)] = ref::at_broadcast(cv, in[0].shape(), idx) != 0
                                        ? ref::at_broadcast(av, in[1].shape(), idx)
                                        : ref::at_broadcast(bv, in[2].shape(), idx);
    }
    return ref::make(out, shape);
  };
  return c;
}

const bool registered = register_ops({
    binary_case("add", [](const Tensor& a, const Tensor& b) { return a + b; }, [](double a, double b) { return a + b; }),
    binary_case("sub", [](const Tensor& a, const Tensor& b) { return a - b; }, [](double a, double b) { return a - b; }),
    binary_case("mul", [](const Tensor& a, const Tensor& b) { return a * b; }, [](double a, double b) { return a * b; }),
    binary_case("div", [](const Tensor& a, const Tensor& b) { return a / b; }, [](double a, double b) { return a / b; },
                0.5, 2.0),
    binary_case("pow", [](const Tensor& a, const Tensor& b) { return pow(a, b); },
                [](double a, double b) { return std::pow(a, b); }, 0.5, 2.0),
    binary_case("maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
                [](double a, double b) { return std::max(a, b); }),
    binary_case("minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
                [](double a, double b) { return std::min(a, b); }),
    binary_case("eq", [](const Tensor& a, const Tensor& b) { return ops::eq(a, ops::mul(b, 0.0)); },
                [](double a, double) { return double(a == 0.0); }, -2, 2, false),
    binary_case("lt", [](const Tensor& a, const Tensor& b) { return ops::lt(a, b); },
                [](double a, double b) { return double(a < b); }, -2, 2, false),
    binary_case("le", [](const Tensor& a, const Tensor& b) { return ops::le(a, b); },
                [](double a, double b) { return double(a <= b); }, -2, 2, false),
    binary_case("gt", [](const Tensor& a, const Tensor& b) { return ops::gt(a, b); },
                [](double a, double b) { return double(a > b); }, -2, 2, false),
    binary_case("ge", [](const Tensor& a, const Tensor& b) { return ops::ge(a, b); },
                [](double a, double b) { return double(a >= b); }, -2, 2, false),
    binary_case("ne", [](const Tensor& a, const Tensor& b) { return ops::ne(a, b); },
                [](double a, double b) { return double(a != b); }, -2, 2, false),
    binary_case("logical_and", [](const Tensor& a, const Tensor& b) { return ops::logical_and(ops::gt(a, ops::scalar_like(0, a)), ops::gt(b, ops::scalar_like(0, b))); },
                [](double a, double b) { return double(a > 0 && b > 0); }, -2, 2, false),
    binary_case("logical_or", [](const Tensor& a, const Tensor& b) { return ops::logical_or(ops::gt(a, ops::scalar_like(0, a)), ops::gt(b, ops::scalar_like(0, b))); },
                [](double a, double b) { return double(a > 0 || b > 0); }, -2, 2, false),
    scalar_case("logical_not", [](const Tensor& a) { return ops::logical_not(ops::gt(a, ops::scalar_like(0, a))); },
                [](double a) { return double(!(a > 0)); }, false),
    scalar_case("add/scalar", [](const Tensor& a) { return a + 2.5; }, [](double a) { return a + 2.5; }),
    scalar_case("rsub/scalar", [](const Tensor& a) { return 1.0 - a; }, [](double a) { return 1.0 - a; }),
    scalar_case("mul/scalar", [](const Tensor& a) { return a * -3.0; }, [](double a) { return a * -3.0; }),
    scalar_case("rdiv/scalar", [](const Tensor& a) { return 2.0 / (a + 3.0); }, [](double a) { return 2.0 / (a + 3.0); }),
    scalar_case("pow/scalar", [](const Tensor& a) { return pow(a + 3.0, 1.7); }, [](double a) { return std::pow(a + 3.0, 1.7); }),
    where_case(),
});

}  // namespace
}  // namespace loupe::test
