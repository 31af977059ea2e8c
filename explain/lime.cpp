// LIME and C-LIME. See lime.hpp.
#include "explain/lime.hpp"

#include <algorithm>
#include <cmath>

#include "tensor/ops/random_ops.hpp"

namespace loupe::explain {

namespace {

std::vector<Tensor> products(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < a.size(); ++i)
    out.push_back(ops::mul(ops::to_dtype(a[i], DType::f64), ops::to_dtype(b[i], DType::f64)));
  return out;
}

std::vector<Tensor> differences(const std::vector<Tensor>& a, const std::vector<Tensor>& b) {
  std::vector<Tensor> out;
  for (size_t i = 0; i < a.size(); ++i)
    out.push_back(ops::sub(ops::to_dtype(a[i], DType::f64), ops::to_dtype(b[i], DType::f64)));
  return out;
}

// The kernel weights pi(z) of the coalitions z (n, M) (host), from per-feature sums of the row.
std::vector<double> kernel_weights(const detail::CoalitionRow& row, const std::vector<double>& z, int64_t n,
                                   const LimeOptions& options) {
  const int64_t m = row.features.count;
  const std::vector<double> a = detail::feature_sums(row.features, products(row.x, row.x));
  std::vector<double> b, c, d;
  if (options.distance == LimeDistance::cosine) {
    b = detail::feature_sums(row.features, products(row.x, row.baseline));
    c = detail::feature_sums(row.features, products(row.baseline, row.baseline));
  } else {
    const std::vector<Tensor> diff = differences(row.x, row.baseline);
    d = detail::feature_sums(row.features, products(diff, diff));
  }
  double x_norm2 = 0.0;
  for (double v : a) x_norm2 += v;
  constexpr double eps = 1e-8;  // torch.nn.CosineSimilarity's
  const double width2 = options.kernel_width * options.kernel_width;
  std::vector<double> w(static_cast<size_t>(n));
  for (int64_t s = 0; s < n; ++s) {
    const double* zs = z.data() + s * m;
    double distance2 = 0.0;
    if (options.distance == LimeDistance::cosine) {
      double dot = 0.0, z_norm2 = 0.0;
      for (int64_t g = 0; g < m; ++g) {
        const auto gi = static_cast<size_t>(g);
        dot += zs[g] * a[gi] + (1.0 - zs[g]) * b[gi];
        z_norm2 += zs[g] * a[gi] + (1.0 - zs[g]) * c[gi];
      }
      const double cosine =
          dot / (std::max(std::sqrt(x_norm2), eps) * std::max(std::sqrt(std::max(z_norm2, 0.0)), eps));
      distance2 = (1.0 - cosine) * (1.0 - cosine);
    } else {
      for (int64_t g = 0; g < m; ++g) distance2 += (1.0 - zs[g]) * d[static_cast<size_t>(g)];
    }
    w[static_cast<size_t>(s)] = std::exp(-distance2 / (2.0 * width2));
  }
  return w;
}

std::vector<double> coefficients(const LinearFit& fit) {
  return to_vector<double>(fit.coef);
}

}  // namespace

Attribution lime(const Query& query, const LimeOptions& options) {
  const detail::Prepared p = detail::prepare(query, "lime");
  LOUPE_CHECK(options.coalitions.defined() || options.n_samples >= 1, "lime: n_samples must be >= 1, got ",
              options.n_samples);
  LOUPE_CHECK(options.kernel_width > 0.0, "lime: kernel_width must be > 0, got ", options.kernel_width);
  Generator& gen = options.generator != nullptr ? *options.generator : default_generator();
  return detail::attribute_features(
      p, options.feature_mask, query.inputs[0].size(0), "lime", [&](const detail::CoalitionRow& row) {
        const int64_t m = row.features.count;
        detail::check_surrogate_features(m, "lime");
        const auto t = static_cast<int64_t>(row.group->classes.size());
        const DType dtype = row.x[0].dtype();
        const Device device = row.x[0].device();
        std::vector<double> zh;
        Tensor z;  // (n, M) on the device
        if (options.coalitions.defined()) {
          zh = detail::given_coalitions(options.coalitions, m, "lime");
          z = detail::coalition_tensor(zh, options.coalitions.size(0), m, dtype, device);
        } else {
          z = bernoulli({options.n_samples, m}, 0.5, dtype, &gen, device);
          zh = to_vector<double>(z);
        }
        const int64_t n = z.size(0);
        const std::vector<double> y = detail::score_coalitions(p, row, z, options.perturbations_per_eval);
        const Tensor weights = from_values(kernel_weights(row, zh, n, options), {n}, DType::f64);
        const Tensor xs = from_values(zh, {n, m}, DType::f64);
        const Tensor ys = from_values(y, {n, t}, DType::f64);
        if (options.fit == SurrogateFit::lasso) {
          LassoOptions lasso;
          lasso.alpha = options.alpha;
          return coefficients(weighted_lasso(xs, ys, weights, lasso));
        }
        return coefficients(weighted_least_squares(xs, ys, weights, true));
      });
}

Attribution clime(const Query& query, const CLimeOptions& options) {
  const detail::Prepared p = detail::prepare(query, "clime");
  LOUPE_CHECK(options.n_samples >= 1, "clime: n_samples must be >= 1, got ", options.n_samples);
  LOUPE_CHECK(std::isfinite(options.stdev) && options.stdev > 0.0, "clime: stdev must be > 0, got ", options.stdev);
  Generator& gen = options.generator != nullptr ? *options.generator : default_generator();
  return detail::attribute_features(
      p, options.feature_mask, query.inputs[0].size(0), "clime", [&](const detail::CoalitionRow& row) {
        const int64_t m = row.features.count, n = options.n_samples;
        detail::check_surrogate_features(m, "clime");
        const auto t = static_cast<int64_t>(row.group->classes.size());
        const Tensor e = normal({n, m}, 0.0, options.stdev, row.x[0].dtype(), &gen, row.x[0].device());  // (n, M)
        const Tensor scores = detail::score_perturbations(
            p.model, p.output, row.group->classes, n, options.perturbations_per_eval, [&](int64_t start, int64_t end) {
              const Tensor chunk = ops::narrow(e, 0, start, end - start);
              std::vector<Tensor> out;
              for (size_t i = 0; i < row.x.size(); ++i) {
                Shape shape = row.features.shapes[i];
                shape[0] = end - start;
                const Tensor noise = ops::index_select(ops::to_dtype(chunk, row.x[i].dtype()), 1, row.features.ids[i]);
                out.push_back(ops::add(row.x[i], ops::reshape(noise, shape)));  // x + e[g]
              }
              return out;
            });
        const Tensor xs = ops::to_device(ops::to_dtype(e, DType::f64), Device::cpu());
        const Tensor ys = ops::reshape(ops::to_device(scores, Device::cpu()), {n, t});
        return coefficients(weighted_least_squares(xs, ys, Tensor(), true));
      });
}

}  // namespace loupe::explain
