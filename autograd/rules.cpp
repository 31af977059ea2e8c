// Rule sets and their scopes. See rules.hpp.
#include "autograd/rules.hpp"

namespace loupe::autograd {

namespace {
thread_local std::shared_ptr<const RuleSet> current_rules;
}

RuleSet& RuleSet::set(OpKind kind, Rule rule) {
  rules_[kind] = std::move(rule);
  return *this;
}

const RuleSet::Rule* RuleSet::find(OpKind kind) const {
  auto it = rules_.find(kind);
  return it == rules_.end() ? nullptr : &it->second;
}

RuleScope::RuleScope(RuleSet rules) : previous_(current_rules) {
  current_rules = std::make_shared<const RuleSet>(std::move(rules));
}

RuleScope::~RuleScope() { current_rules = previous_; }

const RuleSet* active_rules() { return current_rules.get(); }

}  // namespace loupe::autograd
