// Cascading model randomisation (Adebayo et al. 2018). See sanity.hpp.
#include "explain/evaluate/sanity.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <limits>
#include <numeric>

#include "explain/attribution.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain::evaluate {

namespace {

// Ranks 1..n with ties given their average rank.
std::vector<double> average_ranks(const std::vector<double>& v) {
  std::vector<size_t> order(v.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v[a] < v[b]; });
  std::vector<double> rank(v.size());
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j + 1 < order.size() && v[order[j + 1]] == v[order[i]]) ++j;
    const double average = (static_cast<double>(i) + static_cast<double>(j)) / 2.0 + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = average;
    i = j + 1;
  }
  return rank;
}

double pearson(const std::vector<double>& a, const std::vector<double>& b) {
  const double n = static_cast<double>(a.size());
  const double ma = std::accumulate(a.begin(), a.end(), 0.0) / n, mb = std::accumulate(b.begin(), b.end(), 0.0) / n;
  double sab = 0, saa = 0, sbb = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    sab += (a[i] - ma) * (b[i] - mb);
    saa += (a[i] - ma) * (a[i] - ma);
    sbb += (b[i] - mb) * (b[i] - mb);
  }
  return saa > 0 && sbb > 0 ? sab / std::sqrt(saa * sbb) : std::numeric_limits<double>::quiet_NaN();
}

std::string block_of(const std::string& name) {
  const size_t first = name.find('.');
  if (first == std::string::npos) return name;
  const size_t second = name.find('.', first + 1);
  const std::string next = name.substr(first + 1, second == std::string::npos ? std::string::npos : second - first - 1);
  const bool index = !next.empty() && std::all_of(next.begin(), next.end(), [](unsigned char c) { return std::isdigit(c); });
  return index && second != std::string::npos ? name.substr(0, second) : name.substr(0, first);
}

// Does parameter `name` belong to `block` (the block itself or a prefix of it at a '.')?
bool belongs(const std::string& name, const std::string& block) {
  return block_of(name) == block || name.rfind(block + ".", 0) == 0;
}

// Restores the trained parameter values when it goes out of scope.
class ParameterRestore {
 public:
  explicit ParameterRestore(const nn::NamedTensors& parameters) : parameters_(parameters) {
    for (const auto& [name, p] : parameters_) saved_.push_back(p.detach());
  }
  ~ParameterRestore() {
    for (size_t i = 0; i < parameters_.size(); ++i) parameters_[i].second.set_data(saved_[i]);
  }
  ParameterRestore(const ParameterRestore&) = delete;
  ParameterRestore& operator=(const ParameterRestore&) = delete;

 private:
  nn::NamedTensors parameters_;
  std::vector<Tensor> saved_;
};

// Row r of an attribution as a flat list of doubles.
std::vector<std::vector<double>> rows_of(const Attribution& a) {
  LOUPE_CHECK(a.attributions.size() == 1, "cascading_randomisation: expected one attribution tensor, got ",
              a.attributions.size());
  const Tensor t = ops::to_device(ops::contiguous(ops::to_dtype(a.attributions[0], DType::f64)), Device::cpu());
  std::vector<std::vector<double>> out;
  for (int64_t r = 0; r < t.size(0); ++r) out.push_back(to_vector<double>(ops::select(t, 0, r)));
  return out;
}

std::vector<double> absolute(std::vector<double> v) {
  for (double& x : v) x = std::abs(x);
  return v;
}

}  // namespace

double spearman(const std::vector<double>& a, const std::vector<double>& b) {
  LOUPE_CHECK(a.size() == b.size() && !a.empty(), "spearman: expected two equally long non-empty lists, got ",
              a.size(), " and ", b.size());
  return pearson(average_ranks(a), average_ranks(b));
}

std::vector<std::string> parameter_blocks(const nn::Module& model) {
  std::vector<std::string> blocks;
  for (const auto& [name, p] : model.named_parameters()) {
    const std::string block = block_of(name);
    if (std::find(blocks.begin(), blocks.end(), block) == blocks.end()) blocks.push_back(block);
  }
  std::reverse(blocks.begin(), blocks.end());
  return blocks;
}

std::vector<RandomisationStep> cascading_randomisation(nn::Module& model, const Query& query, const Method& method,
                                                       const RandomisationOptions& options) {
  const std::vector<std::string> blocks = options.blocks.empty() ? parameter_blocks(model) : options.blocks;
  const nn::NamedTensors parameters = model.named_parameters();
  for (const std::string& block : blocks) {
    const bool found = std::any_of(parameters.begin(), parameters.end(),
                                   [&](const auto& np) { return belongs(np.first, block); });
    LOUPE_CHECK(found, "cascading_randomisation: no parameter belongs to block '", block, "'");
  }
  const std::vector<std::vector<double>> original = rows_of(method(query));
  ParameterRestore restore(parameters);
  Generator generator(options.seed);
  std::vector<RandomisationStep> steps;
  for (const std::string& block : blocks) {
    for (const auto& [name, p] : parameters) {
      if (!belongs(name, block)) continue;
      const Tensor values = ops::to_dtype(p.detach(), DType::f64);
      const double mean = ops::mean(values).item();
      double stdev = p.numel() > 1 ? ops::std(values).item() : 0.0;
      if (!(stdev > 0.0)) stdev = 0.01;
      Tensor fresh = normal(p.shape(), mean, stdev, p.dtype(), &generator, p.device());
      Tensor(p).set_data(fresh);
    }
    const std::vector<std::vector<double>> now = rows_of(method(query));
    LOUPE_CHECK(now.size() == original.size(), "cascading_randomisation: the method returned ", now.size(),
                " rows after randomising and ", original.size(), " before");
    RandomisationStep step;
    step.block = block;
    for (size_t r = 0; r < now.size(); ++r) {
      step.spearman.push_back(spearman(original[r], now[r]));
      step.spearman_abs.push_back(spearman(absolute(original[r]), absolute(now[r])));
    }
    steps.push_back(std::move(step));
  }
  return steps;
}

}  // namespace loupe::explain::evaluate
