// Shapley value sampling. See shapley_sampling.hpp.
#include "explain/shapley_sampling.hpp"

#include "tensor/ops/random_ops.hpp"

namespace loupe::explain {

Attribution shapley_value_sampling(const Query& query, const ShapleySamplingOptions& options) {
  const detail::Prepared p = detail::prepare(query, "shapley_value_sampling");
  LOUPE_CHECK(options.n_samples >= 1, "shapley_value_sampling: n_samples must be >= 1, got ", options.n_samples);
  Generator& gen = options.generator != nullptr ? *options.generator : default_generator();
  return detail::attribute_features(
      p, options.feature_mask, query.inputs[0].size(0), "shapley_value_sampling", [&](const detail::CoalitionRow& row) {
        const int64_t m = row.features.count, n = options.n_samples;
        const auto t = static_cast<int64_t>(row.group->classes.size());
        // Coalition 0: the baseline (empty); coalition 1 + j M + k: the first k + 1 features of
        // permutation j.
        std::vector<int64_t> perms;
        std::vector<double> zh(static_cast<size_t>((1 + n * m) * m), 0.0);
        for (int64_t j = 0; j < n; ++j) {
          const std::vector<int64_t> perm = to_vector<int64_t>(permutation(m, &gen));
          for (int64_t k = 0; k < m; ++k) {
            const int64_t r = 1 + j * m + k;
            if (k > 0) std::copy_n(zh.begin() + (r - 1) * m, m, zh.begin() + r * m);
            zh[static_cast<size_t>(r * m + perm[static_cast<size_t>(k)])] = 1.0;
          }
          perms.insert(perms.end(), perm.begin(), perm.end());
        }
        const Tensor z = detail::coalition_tensor(zh, 1 + n * m, m, row.x[0].dtype(), row.x[0].device());
        const std::vector<double> v = detail::score_coalitions(p, row, z, options.perturbations_per_eval);
        std::vector<double> phi(static_cast<size_t>(t * m), 0.0);
        for (int64_t j = 0; j < n; ++j) {
          for (int64_t k = 0; k < m; ++k) {
            const int64_t r = 1 + j * m + k, prev = k == 0 ? 0 : r - 1;
            const int64_t g = perms[static_cast<size_t>(j * m + k)];
            for (int64_t c = 0; c < t; ++c) {
              phi[static_cast<size_t>(c * m + g)] +=
                  v[static_cast<size_t>(r * t + c)] - v[static_cast<size_t>(prev * t + c)];
            }
          }
        }
        for (double& x : phi) x /= static_cast<double>(n);
        return phi;
      });
}

}  // namespace loupe::explain
