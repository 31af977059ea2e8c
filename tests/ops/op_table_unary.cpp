// Op table entries: unary elementwise ops. References are std:: math on f64.
#include <cmath>

#include "tests/op_table.hpp"
#include "tests/support.hpp"

namespace loupe::test {
namespace {

// One entry per op: inputs drawn from [lo, hi) (kept away from kinks for gradcheck).
OpCase unary_case(const std::string& name, std::function<Tensor(const Tensor&)> op, std::function<double(double)> f,
                  double lo = -2.0, double hi = 2.0, bool differentiable = true) {
  OpCase c;
  c.name = name;
  c.make_inputs = [lo, hi](DType dtype) { return Inputs{random_tensor({3, 5}, dtype, lo, hi, 21)}; };
  c.make_empty_inputs = [](DType dtype) { return Inputs{zeros({0, 4}, dtype)}; };
  c.op = [op](const Inputs& in) { return op(in[0]); };
  c.reference = [f](const Inputs& in) { return ref::map(in[0], f); };
  c.differentiable = differentiable;
  return c;
}

double sigmoid_ref(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Inputs in (0.1, 2) with values away from 0, so abs/relu/leaky_relu/elu are differentiable there.
const bool registered = register_ops({
    unary_case("neg", [](const Tensor& x) { return neg(x); }, [](double x) { return -x; }),
    unary_case("abs", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, 0.1, 2.0),
    unary_case("abs/negative", [](const Tensor& x) { return abs(x); }, [](double x) { return std::abs(x); }, -2.0, -0.1),
    unary_case("sign", [](const Tensor& x) { return sign(x); }, [](double x) { return double((x > 0) - (x < 0)); },
               -2.0, 2.0, true),
    unary_case("exp", [](const Tensor& x) { return exp(x); }, [](double x) { return std::exp(x); }),
    unary_case("log", [](const Tensor& x) { return log(x); }, [](double x) { return std::log(x); }, 0.1, 3.0),
    unary_case("log1p", [](const Tensor& x) { return log1p(x); }, [](double x) { return std::log1p(x); }, -0.5, 3.0),
    unary_case("sqrt", [](const Tensor& x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.1, 3.0),
    unary_case("rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double x) { return 1.0 / std::sqrt(x); }, 0.1, 3.0),
    unary_case("square", [](const Tensor& x) { return square(x); }, [](double x) { return x * x; }),
    unary_case("reciprocal", [](const Tensor& x) { return reciprocal(x); }, [](double x) { return 1.0 / x; }, 0.2, 3.0),
    unary_case("sin", [](const Tensor& x) { return sin(x); }, [](double x) { return std::sin(x); }),
    unary_case("cos", [](const Tensor& x) { return cos(x); }, [](double x) { return std::cos(x); }),
    unary_case("relu/positive", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, 0.1, 2.0),
    unary_case("relu/negative", [](const Tensor& x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, -2.0, -0.1),
    unary_case("sigmoid", [](const Tensor& x) { return sigmoid(x); }, sigmoid_ref, -6.0, 6.0),
    unary_case("tanh", [](const Tensor& x) { return tanh(x); }, [](double x) { return std::tanh(x); }),
    unary_case("gelu", [](const Tensor& x) { return gelu(x); },
               [](double x) { return 0.5 * x * (1.0 + std::erf(x / std::sqrt(2.0))); }, -3.0, 3.0),
    unary_case("gelu_tanh", [](const Tensor& x) { return gelu(x, true); },
               [](double x) {
                 return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
               },
               -3.0, 3.0),
    unary_case("silu", [](const Tensor& x) { return silu(x); }, [](double x) { return x * sigmoid_ref(x); }, -4.0, 4.0),
    unary_case("softplus", [](const Tensor& x) { return softplus(x); },
               [](double x) { return std::log(1.0 + std::exp(x)); }, -4.0, 4.0),
    unary_case("softplus/beta", [](const Tensor& x) { return softplus(x, 2.0, 5.0); },
               [](double x) { return 2.0 * x > 5.0 ? x : std::log(1.0 + std::exp(2.0 * x)) / 2.0; }, -4.0, 2.0),
    unary_case("elu/positive", [](const Tensor& x) { return elu(x, 1.5); },
               [](double x) { return x > 0 ? x : 1.5 * (std::exp(x) - 1.0); }, 0.1, 2.0),
    unary_case("elu/negative", [](const Tensor& x) { return elu(x, 1.5); },
               [](double x) { return x > 0 ? x : 1.5 * (std::exp(x) - 1.0); }, -2.0, -0.1),
    unary_case("leaky_relu/negative", [](const Tensor& x) { return leaky_relu(x, 0.2); },
               [](double x) { return x > 0 ? x : 0.2 * x; }, -2.0, -0.1),
    unary_case("clamp", [](const Tensor& x) { return clamp(x, -0.5, 0.7); },
               [](double x) { return std::min(std::max(x, -0.5), 0.7); }),
    unary_case("clamp/min_only", [](const Tensor& x) { return clamp(x, -0.5, NAN); },
               [](double x) { return std::max(x, -0.5); }),
});

}  // namespace
}  // namespace loupe::test
