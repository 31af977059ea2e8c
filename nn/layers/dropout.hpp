// Dropout: in training, zeroes each element with probability p and scales the rest by 1/(1-p)
// (loupe::dropout, autograd/functions/dropout.hpp); in eval, the identity. The mask comes from
// the module's Generator (null: the default generator), so a seeded generator repeats it.
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include <string>

#include "nn/module.hpp"

namespace loupe::nn {

class Dropout : public Module {
 public:
  explicit Dropout(double p = 0.5, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;
  std::string type_name() const override { return "Dropout"; }
  double p() const { return p_; }

 private:
  double p_;
  Generator* generator_;
};

}  // namespace loupe::nn
