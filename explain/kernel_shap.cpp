// KernelSHAP, sampled and exact. See kernel_shap.hpp.
#include "explain/kernel_shap.hpp"

#include <algorithm>
#include <bit>
#include <numeric>

#include "explain/linear_fit.hpp"
#include "tensor/ops/random_ops.hpp"

namespace loupe::explain {

namespace {

constexpr double kAnchorWeight = 1e6;  // Captum's inf_weight
constexpr int64_t kMaxExactFeatures = 16;

// Exact Shapley values of every target from the 2^M coalition values v (2^M, T), row-major;
// coalition s holds feature g when bit g of s is set. Returns (T, M) row-major.
std::vector<double> exact_shapley(const std::vector<double>& v, int64_t m, int64_t t) {
  // w(s) = s! (M - s - 1)! / M! = 1 / (M * C(M - 1, s)) for a coalition of s features without g.
  std::vector<double> w(static_cast<size_t>(m));
  for (int64_t s = 0; s < m; ++s) {
    double binom = 1.0;  // C(M - 1, s)
    for (int64_t i = 1; i <= s; ++i) binom = binom * static_cast<double>(m - 1 - s + i) / static_cast<double>(i);
    w[static_cast<size_t>(s)] = 1.0 / (static_cast<double>(m) * binom);
  }
  std::vector<double> phi(static_cast<size_t>(t * m), 0.0);
  const int64_t count = int64_t{1} << m;
  for (int64_t g = 0; g < m; ++g) {
    const int64_t bit = int64_t{1} << g;
    for (int64_t s = 0; s < count; ++s) {
      if (s & bit) continue;
      const double ws = w[static_cast<size_t>(std::popcount(static_cast<uint64_t>(s)))];
      for (int64_t j = 0; j < t; ++j) {
        phi[static_cast<size_t>(j * m + g)] +=
            ws * (v[static_cast<size_t>((s | bit) * t + j)] - v[static_cast<size_t>(s * t + j)]);
      }
    }
  }
  return phi;
}

}  // namespace

std::vector<double> kernel_shap_coalitions(int64_t n_samples, int64_t m, Generator& generator) {
  LOUPE_CHECK(n_samples >= 2 && m >= 1, "kernel_shap: need n_samples >= 2 (the two anchors) and M >= 1, got ",
              n_samples, " and ", m);
  const int64_t n = m == 1 ? 2 : n_samples;  // one feature: only the anchors are coalitions at all
  std::vector<double> z(static_cast<size_t>(n * m), 0.0);
  std::fill(z.begin(), z.begin() + m, 1.0);  // row 0: all ones; row 1: all zeros
  if (n == 2) return z;
  // p(k) ~ (M - 1) / (k (M - k)), k = 1..M-1, as a cumulative table.
  std::vector<double> cdf(static_cast<size_t>(m - 1));
  double total = 0.0;
  for (int64_t k = 1; k < m; ++k) {
    total += 1.0 / static_cast<double>(k * (m - k));
    cdf[static_cast<size_t>(k - 1)] = total;
  }
  for (double& c : cdf) c /= total;
  const std::vector<double> u = to_vector<double>(uniform({n - 2, m + 1}, 0.0, 1.0, DType::f64, &generator));
  std::vector<int64_t> order(static_cast<size_t>(m));
  for (int64_t s = 0; s < n - 2; ++s) {
    const double* us = u.data() + s * (m + 1);
    const auto k = static_cast<int64_t>(std::upper_bound(cdf.begin(), cdf.end() - 1, us[0]) - cdf.begin()) + 1;
    // A uniform k-subset: the k features with the smallest uniforms.
    std::iota(order.begin(), order.end(), 0);
    std::nth_element(order.begin(), order.begin() + (k - 1), order.end(),
                     [&](int64_t a, int64_t b) { return us[1 + a] < us[1 + b]; });
    for (int64_t i = 0; i < k; ++i) z[static_cast<size_t>((s + 2) * m + order[static_cast<size_t>(i)])] = 1.0;
  }
  return z;
}

Attribution kernel_shap(const Query& query, const KernelShapOptions& options) {
  const detail::Prepared p = detail::prepare(query, "kernel_shap");
  LOUPE_CHECK(!(options.exact && options.coalitions.defined()), "kernel_shap: give either exact or coalitions");
  Generator& gen = options.generator != nullptr ? *options.generator : default_generator();
  return detail::attribute_features(
      p, options.feature_mask, query.inputs[0].size(0), "kernel_shap", [&](const detail::CoalitionRow& row) {
        const int64_t m = row.features.count;
        const auto t = static_cast<int64_t>(row.group->classes.size());
        const DType dtype = row.x[0].dtype();
        const Device device = row.x[0].device();
        if (options.exact) {
          LOUPE_CHECK(m <= kMaxExactFeatures, "kernel_shap: exact enumeration needs M <= ", kMaxExactFeatures,
                      " features (2^M model evaluations), got M = ", m, "; group the scalars with a feature mask");
          const int64_t count = int64_t{1} << m;
          std::vector<double> zh(static_cast<size_t>(count * m));
          for (int64_t s = 0; s < count; ++s) {
            for (int64_t g = 0; g < m; ++g) zh[static_cast<size_t>(s * m + g)] = static_cast<double>((s >> g) & 1);
          }
          const Tensor z = detail::coalition_tensor(zh, count, m, dtype, device);
          return exact_shapley(detail::score_coalitions(p, row, z, options.perturbations_per_eval), m, t);
        }
        detail::check_surrogate_features(m, "kernel_shap");
        const std::vector<double> zh = options.coalitions.defined()
                                           ? detail::given_coalitions(options.coalitions, m, "kernel_shap")
                                           : kernel_shap_coalitions(options.n_samples, m, gen);
        const auto n = static_cast<int64_t>(zh.size()) / m;
        std::vector<double> w(static_cast<size_t>(n));
        for (int64_t s = 0; s < n; ++s) {
          const double k = std::accumulate(zh.begin() + s * m, zh.begin() + (s + 1) * m, 0.0);
          w[static_cast<size_t>(s)] = (k == 0.0 || k == static_cast<double>(m)) ? kAnchorWeight : 1.0;
        }
        const Tensor z = detail::coalition_tensor(zh, n, m, dtype, device);
        const std::vector<double> y = detail::score_coalitions(p, row, z, options.perturbations_per_eval);
        const LinearFit fit =
            weighted_least_squares(from_values(zh, {n, m}, DType::f64), from_values(y, {n, t}, DType::f64),
                                   from_values(w, {n}, DType::f64), true);
        return to_vector<double>(fit.coef);
      });
}

}  // namespace loupe::explain
