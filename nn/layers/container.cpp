// Structural modules. See container.hpp.
#include "nn/layers/container.hpp"

namespace loupe::nn {

Branches::Branches(std::vector<std::pair<std::string, std::shared_ptr<Module>>> branches, int64_t dim) : dim_(dim) {
  LOUPE_CHECK(!branches.empty(), "Branches: needs at least one branch");
  for (auto& [name, module] : branches) branches_.push_back(register_module(name, std::move(module)));
}

Tensor Branches::forward(const Tensor& x) {
  std::vector<Tensor> outputs;
  outputs.reserve(branches_.size());
  for (auto& branch : branches_) outputs.push_back((*branch)(x));
  return cat(outputs, dim_);
}

}  // namespace loupe::nn
