// Structural modules: Identity, and Branches — several modules applied to the same input with
// their outputs concatenated (Inception's multi-branch blocks). The children keep the names
// given (timm's "branch0", "branch1", ...), so state dicts match the reference models.
// Sequential is in basic.hpp.
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "nn/module.hpp"

namespace loupe::nn {

class Identity : public Module {
 public:
  Tensor forward(const Tensor& x) override { return x; }
  std::string type_name() const override { return "Identity"; }
};

// y = cat([branch(x) for each branch], dim). Every branch output must agree on every other dim.
class Branches : public Module {
 public:
  explicit Branches(std::vector<std::pair<std::string, std::shared_ptr<Module>>> branches, int64_t dim = 1);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Branches"; }

 private:
  std::vector<std::shared_ptr<Module>> branches_;
  int64_t dim_;
};

}  // namespace loupe::nn
