// Ensembles. See ensemble.hpp.
#include "nn/metrics/ensemble.hpp"

#include "nn/metrics/classification.hpp"
#include "tensor/ops/creation.hpp"

namespace loupe::nn {

namespace {

// Checks that every model gave an (N, K) tensor of the same shape.
void check_same_shapes(const std::vector<Tensor>& models, const char* op) {
  LOUPE_CHECK(!models.empty(), op, ": no models were given");
  for (size_t m = 0; m < models.size(); ++m) {
    LOUPE_CHECK(models[m].defined() && models[m].dim() == 2, op, ": model ", m, " gave ",
                models[m].defined() ? shape_str(models[m].shape()) : std::string("an undefined tensor"),
                ", expected (N, K)");
    LOUPE_CHECK(models[m].shape() == models[0].shape(), op, ": model ", m, " gave ", shape_str(models[m].shape()),
                " but model 0 gave ", shape_str(models[0].shape()));
  }
}

}  // namespace

Tensor average_probabilities(const std::vector<Tensor>& probabilities) {
  check_same_shapes(probabilities, "average_probabilities");
  std::vector<double> sum(static_cast<size_t>(probabilities[0].numel()), 0.0);
  for (const Tensor& p : probabilities) {
    const std::vector<double> v = to_vector<double>(p);
    for (size_t i = 0; i < v.size(); ++i) sum[i] += v[i];
  }
  for (double& s : sum) s /= static_cast<double>(probabilities.size());
  const DType dtype = is_floating(probabilities[0].dtype()) ? probabilities[0].dtype() : DType::f32;
  return from_values(sum, probabilities[0].shape(), dtype);
}

Tensor majority_vote(const std::vector<Tensor>& probabilities, double threshold) {
  check_same_shapes(probabilities, "majority_vote");
  std::vector<int64_t> votes(static_cast<size_t>(probabilities[0].numel()), 0);
  for (const Tensor& p : probabilities) {
    const std::vector<double> v = to_vector<double>(p);
    for (size_t i = 0; i < v.size(); ++i) votes[i] += v[i] > threshold ? 1 : 0;
  }
  const int64_t models = static_cast<int64_t>(probabilities.size());
  std::vector<double> out(votes.size());
  for (size_t i = 0; i < votes.size(); ++i) out[i] = 2 * votes[i] > models ? 1.0 : 0.0;
  return from_values(out, probabilities[0].shape(), DType::f32);
}

Tensor majority_vote_classes(const std::vector<Tensor>& predictions, int64_t num_classes) {
  LOUPE_CHECK(!predictions.empty(), "majority_vote_classes: no models were given");
  LOUPE_CHECK(num_classes > 0, "majority_vote_classes: num_classes must be positive, got ", num_classes);
  std::vector<std::vector<int64_t>> classes;
  for (size_t m = 0; m < predictions.size(); ++m) {
    classes.push_back(to_vector<int64_t>(predicted_classes(predictions[m])));
    LOUPE_CHECK(classes.back().size() == classes.front().size(), "majority_vote_classes: model ", m, " gave ",
                classes.back().size(), " predictions but model 0 gave ", classes.front().size());
  }
  const size_t n = classes.front().size();
  std::vector<int64_t> out(n);
  std::vector<int64_t> count(static_cast<size_t>(num_classes));
  for (size_t i = 0; i < n; ++i) {
    std::fill(count.begin(), count.end(), 0);
    for (size_t m = 0; m < classes.size(); ++m) {
      const int64_t c = classes[m][i];
      LOUPE_CHECK(c >= 0 && c < num_classes, "majority_vote_classes: model ", m, " predicts class ", c,
                  " for example ", i, ", not in [0, ", num_classes, ")");
      ++count[static_cast<size_t>(c)];
    }
    int64_t best = 0;
    for (int64_t c = 1; c < num_classes; ++c) {
      if (count[static_cast<size_t>(c)] > count[static_cast<size_t>(best)]) best = c;
    }
    out[i] = best;
  }
  return from_values(out, {static_cast<int64_t>(n)});
}

}  // namespace loupe::nn
