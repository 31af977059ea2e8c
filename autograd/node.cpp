// Node methods. See node.hpp.
#include "autograd/node.hpp"

namespace loupe::autograd {

const char* op_kind_name(OpKind kind) {
  switch (kind) {
#define LOUPE_OP_KIND_NAME(name) \
  case OpKind::name:             \
    return #name;
    LOUPE_OP_KINDS(LOUPE_OP_KIND_NAME)
#undef LOUPE_OP_KIND_NAME
  }
  return "unknown";
}

namespace {
thread_local const EdgeFilter* current_filter = nullptr;
}

const EdgeFilter* active_edge_filter() { return current_filter; }

EdgeFilterScope::EdgeFilterScope(const EdgeFilter* filter) : previous_(current_filter) { current_filter = filter; }

EdgeFilterScope::~EdgeFilterScope() { current_filter = previous_; }

bool Node::needs_input_grad(size_t i) const {
  if (i >= inputs_.size() || !inputs_[i].needs_grad()) return false;
  return current_filter == nullptr || current_filter->keeps(inputs_[i]);
}

std::vector<Tensor> Node::apply(const Tensor& grad_output) const {
  LOUPE_CHECK(!released_, "backward: the graph of ", name_, " was already freed by an earlier backward; ",
              "pass retain_graph=true to the first backward to run it twice");
  return backward_(*this, grad_output);
}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> orphans;
  for (Edge& edge : inputs_) {
    if (edge.node) orphans.push_back(std::move(edge.node));
  }
  while (!orphans.empty()) {
    std::shared_ptr<Node> node = std::move(orphans.back());
    orphans.pop_back();
    // Only a node that dies here has its inputs taken over; shared ones stay with their owners.
    if (node.use_count() == 1) {
      for (Edge& edge : node->inputs_) {
        if (edge.node) orphans.push_back(std::move(edge.node));
      }
    }
  }
}

void Node::release() {
  saved.clear();
  backward_ = nullptr;
  released_ = true;
}

}  // namespace loupe::autograd
