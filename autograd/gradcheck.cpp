// Finite-difference gradient checking. See gradcheck.hpp.
#include "autograd/gradcheck.hpp"

#include <cmath>
#include <random>
#include <sstream>

#include "autograd/engine.hpp"
#include "autograd/grad_mode.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"

namespace loupe {

namespace {

// Fresh float64 leaves (contiguous copies) for the differentiable inputs; others unchanged.
std::vector<Tensor> make_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.dtype() == DType::f64) {
      Tensor leaf = ops::clone(t);
      leaf.set_requires_grad(true);
      leaves.push_back(leaf);
    } else {
      leaves.push_back(t);
    }
  }
  return leaves;
}

// f evaluated without a graph, flattened to a contiguous f64 vector.
std::vector<double> evaluate(const DifferentiableFn& f, const std::vector<Tensor>& inputs) {
  NoGradGuard no_grad;
  return to_vector<double>(f(inputs));
}

double dot(const std::vector<double>& a, const std::vector<double>& b) {
  double s = 0.0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Gradient of <f(inputs), u> w.r.t. input k (zeros when f does not depend on it).
std::vector<double> vjp(const DifferentiableFn& f, const std::vector<Tensor>& inputs, size_t k,
                        const std::vector<double>& u) {
  std::vector<Tensor> leaves = make_leaves(inputs);
  Tensor out = f(leaves);
  LOUPE_CHECK(out.dtype() == DType::f64, "gradcheck: the function must return float64, got ", out.dtype());
  if (!out.requires_grad()) return std::vector<double>(static_cast<size_t>(inputs[k].numel()), 0.0);
  const Tensor g = grad({out}, {leaves[k]}, {from_values(u, out.shape(), DType::f64)})[0];
  if (!g.defined()) return std::vector<double>(static_cast<size_t>(inputs[k].numel()), 0.0);
  return to_vector<double>(g);
}

// `inputs` with input k replaced by x_k + scale * direction (direction flattened).
std::vector<Tensor> shifted(const std::vector<Tensor>& inputs, size_t k, const std::vector<double>& direction,
                            double scale) {
  std::vector<Tensor> moved = inputs;
  std::vector<double> values = to_vector<double>(inputs[k]);
  for (size_t i = 0; i < values.size(); ++i) values[i] += scale * direction[i];
  moved[k] = from_values(values, inputs[k].shape(), DType::f64);
  return moved;
}

bool close(double analytic, double numeric, const GradcheckOptions& o) {
  return std::abs(analytic - numeric) <= o.atol + o.rtol * std::abs(numeric);
}

}  // namespace

GradcheckResult gradcheck(const DifferentiableFn& f, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  GradcheckResult result;
  int64_t total = 0;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.dtype() == DType::f64) total += t.numel();
  }
  const std::vector<double> y0 = evaluate(f, inputs);
  const size_t out_size = y0.size();
  std::mt19937_64 rng(options.seed);
  std::normal_distribution<double> normal(0.0, 1.0);
  auto random_vector = [&](size_t n) {
    std::vector<double> v(n);
    for (double& x : v) x = normal(rng);
    return v;
  };
  auto fail = [&](const std::string& message, double error) {
    if (result.ok) {
      result.ok = false;
      result.message = message;
    }
    result.max_error = std::max(result.max_error, error);
  };

  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].defined() || inputs[k].dtype() != DType::f64) continue;
    const size_t n = static_cast<size_t>(inputs[k].numel());
    if (total <= options.full_jacobian_limit) {
      // Whole Jacobian: column j from finite differences, row i from backward with a one-hot u.
      std::vector<std::vector<double>> numeric(n);
      for (size_t j = 0; j < n; ++j) {
        std::vector<double> e(n, 0.0);
        e[j] = 1.0;
        const auto plus = evaluate(f, shifted(inputs, k, e, options.eps));
        const auto minus = evaluate(f, shifted(inputs, k, e, -options.eps));
        numeric[j].resize(out_size);
        for (size_t i = 0; i < out_size; ++i) numeric[j][i] = (plus[i] - minus[i]) / (2 * options.eps);
      }
      for (size_t i = 0; i < out_size; ++i) {
        std::vector<double> u(out_size, 0.0);
        u[i] = 1.0;
        const auto row = vjp(f, inputs, k, u);
        for (size_t j = 0; j < n; ++j) {
          const double err = std::abs(row[j] - numeric[j][i]);
          result.max_error = std::max(result.max_error, err);
          if (!close(row[j], numeric[j][i], options)) {
            std::ostringstream msg;
            msg << "input " << k << ": d out[" << i << "] / d in[" << j << "]: analytic " << row[j]
                << " vs numeric " << numeric[j][i];
            fail(msg.str(), err);
          }
        }
      }
    } else {
      for (int p = 0; p < options.projections; ++p) {
        const auto u = random_vector(out_size);
        const auto v = random_vector(n);
        const double analytic = dot(vjp(f, inputs, k, u), v);
        const double numeric = (dot(u, evaluate(f, shifted(inputs, k, v, options.eps))) -
                                dot(u, evaluate(f, shifted(inputs, k, v, -options.eps)))) /
                               (2 * options.eps);
        const double err = std::abs(analytic - numeric);
        result.max_error = std::max(result.max_error, err);
        // A projection sums many terms, so scale the tolerance by the vector sizes.
        const double scale = std::sqrt(static_cast<double>(n) * static_cast<double>(std::max<size_t>(out_size, 1)));
        if (err > options.atol * scale + options.rtol * std::abs(numeric)) {
          std::ostringstream msg;
          msg << "input " << k << ": projection " << p << ": analytic " << analytic << " vs numeric " << numeric;
          fail(msg.str(), err);
        }
      }
    }
  }
  return result;
}

}  // namespace loupe
