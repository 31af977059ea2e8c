// Backward rules: replace the backward of chosen op kinds for the backward passes run inside a
// scope. This is how guided backprop, deconvolution and DeepLIFT are built: not with module hooks
// but per graph node, so a functional relu or a module used twice is handled like any other.
//
//   {
//     RuleScope scope(guided_backprop_rules());
//     auto grads = loupe::grad({score}, {input});   // every ReLU node uses the guided rule
//   }
//
// Tests: tests/autograd/test_rules.cpp
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <vector>

#include "autograd/node.hpp"

namespace loupe::autograd {

class RuleSet {
 public:
  // Same contract as Node::BackwardFn: one gradient per input of the node.
  using Rule = std::function<std::vector<Tensor>(const Node& node, const Tensor& grad_output)>;

  RuleSet& set(OpKind kind, Rule rule);
  const Rule* find(OpKind kind) const;
  bool empty() const { return rules_.empty(); }

 private:
  std::map<OpKind, Rule> rules_;
};

// Activates a rule set on this thread until the scope ends (scopes nest; the innermost wins).
class RuleScope {
 public:
  explicit RuleScope(RuleSet rules);
  ~RuleScope();
  RuleScope(const RuleScope&) = delete;
  RuleScope& operator=(const RuleScope&) = delete;

 private:
  std::shared_ptr<const RuleSet> previous_;
};

// The rule set active on this thread, or null.
const RuleSet* active_rules();

// Guided backprop: every ReLU's input gradient becomes 1[x > 0] * max(g, 0).
RuleSet guided_backprop_rules();
// Deconvolution: every ReLU's input gradient becomes max(g, 0).
RuleSet deconvolution_rules();
// DeepLIFT rescale (REFERENCE.md section 2): the forward ran on the doubled batch [x; x'] along
// dim 0. Elementwise nonlinearities use (y - y') / (x - x') (the ordinary derivative where
// |x - x'| < eps), max-pool routes the difference of the halves, softmax rescales and re-centres.
RuleSet deeplift_rescale_rules(double eps = 1e-10);

}  // namespace loupe::autograd
