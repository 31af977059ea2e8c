// Integrated gradients and its quadrature rules. See integrated_gradients.hpp.
#include "explain/integrated_gradients.hpp"

#include <cmath>
#include <numbers>

namespace loupe::explain {

Quadrature gauss_legendre(int64_t n) {
  LOUPE_CHECK(n >= 1, "gauss_legendre: need at least 1 point, got ", n);
  Quadrature q;
  q.alphas.resize(static_cast<size_t>(n));
  q.weights.resize(static_cast<size_t>(n));
  // Roots are symmetric: compute the upper half (descending from near 1) and mirror.
  for (int64_t i = 0; i < (n + 1) / 2; ++i) {
    double x = std::cos(std::numbers::pi * (static_cast<double>(i) + 0.75) / (static_cast<double>(n) + 0.5));
    double derivative = 0.0;
    for (int iteration = 0; iteration < 100; ++iteration) {
      // P_n(x) by the three-term recurrence (k+1) P_{k+1} = (2k+1) x P_k - k P_{k-1}.
      double p_prev = 1.0, p = x;
      for (int64_t k = 1; k < n; ++k) {
        const double next = ((2.0 * static_cast<double>(k) + 1.0) * x * p - static_cast<double>(k) * p_prev) /
                            (static_cast<double>(k) + 1.0);
        p_prev = p;
        p = next;
      }
      // P_n'(x) = n (x P_n - P_{n-1}) / (x^2 - 1).
      derivative = static_cast<double>(n) * (x * p - p_prev) / (x * x - 1.0);
      const double step = p / derivative;
      x -= step;
      if (std::abs(step) < 1e-16) break;
    }
    const double w = 2.0 / ((1.0 - x * x) * derivative * derivative);
    const auto hi = static_cast<size_t>(n - 1 - i), lo = static_cast<size_t>(i);
    q.alphas[hi] = x;
    q.alphas[lo] = -x;
    q.weights[hi] = w;
    q.weights[lo] = w;
  }
  if (n % 2 == 1) q.alphas[static_cast<size_t>(n / 2)] = 0.0;  // the middle root is exactly 0
  return q;
}

Quadrature quadrature(IntegrationRule rule, int64_t n) {
  Quadrature q;
  if (rule == IntegrationRule::gauss_legendre) {
    q = gauss_legendre(n);
    for (size_t i = 0; i < q.alphas.size(); ++i) {
      q.alphas[i] = (1.0 + q.alphas[i]) / 2.0;
      q.weights[i] /= 2.0;
    }
    return q;
  }
  // Captum requires more than one step for its Riemann rules.
  LOUPE_CHECK(n >= 2, "integrated_gradients: Riemann and trapezoid rules need n_steps >= 2, got ", n);
  const auto nd = static_cast<double>(n);
  for (int64_t i = 0; i < n; ++i) {
    const auto id = static_cast<double>(i);
    double a = 0.0, w = 1.0 / nd;
    switch (rule) {
      case IntegrationRule::riemann_left: a = id / nd; break;
      case IntegrationRule::riemann_right: a = (id + 1.0) / nd; break;
      case IntegrationRule::riemann_middle: a = (id + 0.5) / nd; break;
      case IntegrationRule::riemann_trapezoid: a = id / (nd - 1.0); break;
      case IntegrationRule::trapezoid:
        a = id / (nd - 1.0);
        w = 1.0 / (nd - 1.0);
        break;
      case IntegrationRule::gauss_legendre: break;
    }
    if (rule == IntegrationRule::riemann_trapezoid || rule == IntegrationRule::trapezoid) {
      if (i == 0 || i == n - 1) w /= 2.0;
    }
    q.alphas.push_back(a);
    q.weights.push_back(w);
  }
  return q;
}

namespace {

// A (len, 1, ..., 1) tensor of per-row values, shaped to broadcast against `like`'s rows.
Tensor row_column(const std::vector<double>& values, const Tensor& like) {
  Shape shape(static_cast<size_t>(like.dim()), 1);
  shape[0] = static_cast<int64_t>(values.size());
  return ops::to_device(from_values(values, shape, like.dtype()), like.device());
}

}  // namespace

Attribution integrated_gradients(const Query& query, const IntegratedGradientsOptions& options) {
  const detail::Prepared p = detail::prepare(query, "integrated_gradients");
  LOUPE_CHECK(options.n_steps >= 1, "integrated_gradients: n_steps must be >= 1, got ", options.n_steps);
  const Quadrature q = quadrature(options.method, options.n_steps);
  const auto r = static_cast<int64_t>(p.rows.size());

  std::vector<Tensor> differences, sums;
  for (size_t i = 0; i < p.inputs.size(); ++i) {
    differences.push_back(ops::sub(p.inputs[i], p.baselines[i]));
    sums.push_back(zeros_like(p.inputs[i]));
  }
  // Virtual rows v = step * R + row, run in chunks.
  detail::for_each_chunk(options.n_steps * r, options.internal_batch_size, [&](int64_t start, int64_t end) {
    std::vector<int64_t> rows, classes;
    std::vector<double> alphas, weights;
    for (int64_t v = start; v < end; ++v) {
      const auto step = static_cast<size_t>(v / r);
      const int64_t row = v % r;
      rows.push_back(row);
      classes.push_back(p.classes[static_cast<size_t>(row)]);
      alphas.push_back(q.alphas[step]);
      weights.push_back(q.weights[step]);
    }
    const Tensor index = detail::row_index(rows, p.inputs[0].device());
    std::vector<Tensor> points;
    for (size_t i = 0; i < p.inputs.size(); ++i) {
      const Tensor base = ops::index_select(p.baselines[i], 0, index);
      const Tensor diff = ops::index_select(differences[i], 0, index);
      points.push_back(ops::add(base, ops::mul(row_column(alphas, diff), diff)));  // x' + a (x - x')
    }
    const auto grads = detail::target_gradients(p.model, points, classes, p.output);
    for (size_t i = 0; i < grads.size(); ++i) {
      sums[i] = ops::index_add(sums[i], 0, index, ops::mul(grads[i], row_column(weights, grads[i])));
    }
  });

  std::vector<Tensor> full;  // (x - x') * integrated gradient: used for the delta in any case
  for (size_t i = 0; i < sums.size(); ++i) full.push_back(ops::mul(differences[i], sums[i]));
  Tensor delta;
  if (options.return_convergence_delta) {
    delta = detail::completeness_delta(full, detail::score_rows(p.model, p.inputs, p.classes, p.output),
                                       detail::score_rows(p.model, p.baselines, p.classes, p.output));
  }
  return detail::make_result(p, options.multiply_by_inputs ? full : sums, delta);
}

}  // namespace loupe::explain
