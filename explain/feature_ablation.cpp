// Feature ablation. See feature_ablation.hpp.
#include "explain/feature_ablation.hpp"

namespace loupe::explain {

Attribution feature_ablation(const Query& query, const FeatureAblationOptions& options) {
  const detail::Prepared p = detail::prepare(query, "feature_ablation");
  return detail::attribute_features(
      p, options.feature_mask, query.inputs[0].size(0), "feature_ablation", [&](const detail::CoalitionRow& row) {
        const int64_t m = row.features.count;
        const auto t = static_cast<int64_t>(row.group->classes.size());
        const Device device = row.x[0].device();
        // Rows 0..M-1: all features but g; row M: every feature (x itself, from the same passes).
        const Tensor z = ops::cat(
            {ops::sub(ones({m, m}, row.x[0].dtype(), device), ops::to_device(eye(m, m, row.x[0].dtype()), device)),
             ones({1, m}, row.x[0].dtype(), device)},
            0);
        const std::vector<double> s = detail::score_coalitions(p, row, z, options.perturbations_per_eval);
        std::vector<double> values(static_cast<size_t>(t * m));
        for (int64_t j = 0; j < t; ++j) {
          for (int64_t g = 0; g < m; ++g) {
            values[static_cast<size_t>(j * m + g)] =
                s[static_cast<size_t>(m * t + j)] - s[static_cast<size_t>(g * t + j)];
          }
        }
        return values;
      });
}

}  // namespace loupe::explain
