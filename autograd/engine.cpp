// The backward engine. See engine.hpp.
//
// 1. Find every node reachable from the outputs (iterative depth-first search) and count, for
//    each node, how many reachable edges point at it: its number of consumers (and the same for
//    each leaf, so that a gradient-ready hook (hooks.hpp) can be told when a leaf's .grad is final).
// 2. Kahn's algorithm: a node runs once all its consumers have handed it their gradient
//    contributions, which are summed first. That is a topological order without recursion.
// 3. A gradient reaching a leaf is accumulated into its .grad (backward) or captured (grad).
#include "autograd/engine.hpp"

#include <unordered_map>
#include <unordered_set>

#include "autograd/grad_mode.hpp"
#include "autograd/hooks.hpp"
#include "autograd/node.hpp"
#include "autograd/rules.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"

namespace loupe {

namespace {

using autograd::Edge;
using autograd::Node;

// Sum of two gradient contributions (either may be undefined).
Tensor add_gradients(const Tensor& total, const Tensor& more) {
  if (!total.defined()) return more;
  if (!more.defined()) return total;
  return ops::add(total, more);
}

struct Capture {
  std::unordered_map<const Node*, Tensor> node_grads;          // gradient w.r.t. a node's output
  std::unordered_map<const AutogradMeta*, Tensor> leaf_grads;  // gradient w.r.t. a leaf
};

// Runs the graph behind `roots`. With `capture` set, leaf gradients go into it instead of .grad,
// and the total gradient of each node in `wanted_nodes` is recorded too.
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads, bool retain_graph,
                  Capture* capture, const std::unordered_set<const Node*>& wanted_nodes,
                  const std::unordered_set<const AutogradMeta*>& wanted_leaves) {
  NoGradGuard no_grad;  // backward formulas use raw ops; nothing they do is recorded

  std::unordered_map<const Node*, Tensor> pending;  // summed incoming gradient per node
  std::unordered_map<const Node*, int> consumers;   // edges still to deliver per node
  std::unordered_map<AutogradMeta*, int> leaf_edges;  // edges still to deliver per leaf (hooks only)
  const autograd::GradReadyFn* ready_hook = capture ? nullptr : autograd::active_grad_ready_hook();
  std::vector<std::shared_ptr<Node>> start;

  auto deliver_to_leaf = [&](const std::shared_ptr<AutogradMeta>& leaf, const Tensor& g) {
    if (capture) {
      capture->leaf_grads[leaf.get()] = add_gradients(capture->leaf_grads[leaf.get()], g);
      return;
    }
    if (!leaf->requires_grad) return;
    if (!leaf->grad) {
      leaf->grad = std::make_shared<Tensor>(ops::clone(g));  // owned, so later += is safe
    } else {
      ops::add_(*leaf->grad, g);
    }
  };

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& root = roots[i];
    if (!root.requires_grad()) continue;
    if (root.grad_fn()) {
      const Node* node = root.grad_fn().get();
      if (!pending.count(node)) start.push_back(root.grad_fn());
      pending[node] = add_gradients(pending[node], root_grads[i]);
    } else {
      deliver_to_leaf(root.autograd_meta_ptr(), root_grads[i]);
    }
  }

  // 1. Reachable nodes and their consumer counts.
  std::unordered_set<const Node*> seen;
  std::vector<Node*> stack;
  for (const auto& node : start) {
    if (seen.insert(node.get()).second) stack.push_back(node.get());
  }
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const Edge& edge : node->inputs()) {
      if (ready_hook && edge.leaf) ++leaf_edges[edge.leaf.get()];
      if (!edge.node) continue;
      ++consumers[edge.node.get()];
      if (seen.insert(edge.node.get()).second) stack.push_back(edge.node.get());
    }
  }

  // grad(outputs, inputs) needs only the part of the graph that leads to the requested inputs:
  // walk back from them through the consumers of each node. Nodes outside it are not run, and
  // needs_input_grad() tells the nodes inside it which of their inputs matter.
  autograd::EdgeFilter filter;
  if (capture) {
    std::unordered_map<const Node*, std::vector<const Node*>> consumers_of;
    std::vector<const Node*> queue;
    for (const Node* node : seen) {
      bool feeds_wanted_leaf = false;
      for (const Edge& edge : node->inputs()) {
        if (edge.node) consumers_of[edge.node.get()].push_back(node);
        if (edge.leaf && wanted_leaves.count(edge.leaf.get())) feeds_wanted_leaf = true;
      }
      if (feeds_wanted_leaf || wanted_nodes.count(node)) queue.push_back(node);
    }
    filter.leaves = wanted_leaves;
    while (!queue.empty()) {
      const Node* node = queue.back();
      queue.pop_back();
      if (!filter.nodes.insert(node).second) continue;
      for (const Node* consumer : consumers_of[node]) queue.push_back(consumer);
    }
  }
  autograd::EdgeFilterScope filter_scope(capture ? &filter : nullptr);

  // 2. Kahn's algorithm from the nodes nobody inside the graph consumes.
  std::vector<std::shared_ptr<Node>> ready;
  for (const auto& node : start) {
    if (consumers[node.get()] == 0) ready.push_back(node);
  }
  const autograd::RuleSet* rules = autograd::active_rules();
  while (!ready.empty()) {
    std::shared_ptr<Node> node = ready.back();
    ready.pop_back();
    Tensor grad_output = std::move(pending[node.get()]);
    pending.erase(node.get());
    if (capture && wanted_nodes.count(node.get())) capture->node_grads[node.get()] = grad_output;

    std::vector<Tensor> input_grads;
    const bool needed = !capture || filter.nodes.count(node.get()) > 0;
    if (grad_output.defined() && needed) {
      const autograd::RuleSet::Rule* rule = rules ? rules->find(node->kind()) : nullptr;
      LOUPE_CHECK(!node->released(), "backward: the graph of ", node->name(),
                  " was already freed by an earlier backward; pass retain_graph=true to the first ",
                  "backward to run it twice");
      input_grads = rule ? (*rule)(*node, grad_output) : node->apply(grad_output);
      LOUPE_CHECK(input_grads.size() == node->inputs().size(), "backward of ", node->name(), " returned ",
                  input_grads.size(), " gradients for ", node->inputs().size(), " inputs");
    }
    for (size_t i = 0; i < node->inputs().size(); ++i) {
      const Edge& edge = node->inputs()[i];
      const bool kept = node->needs_input_grad(i);
      const Tensor g = kept && i < input_grads.size() ? input_grads[i] : Tensor();
      if (g.defined()) {
        LOUPE_CHECK(g.shape() == edge.shape, "backward of ", node->name(), ": gradient for input ", i,
                    " has shape ", shape_str(g.shape()), ", the input has shape ", shape_str(edge.shape));
      }
      if (edge.node) {
        const Node* next = edge.node.get();
        if (g.defined()) pending[next] = add_gradients(pending[next], g);
        if (--consumers[next] == 0) ready.push_back(edge.node);
      } else if (edge.leaf) {
        if (g.defined()) deliver_to_leaf(edge.leaf, g);
        // The last edge into this leaf has delivered (or had nothing to deliver): its .grad is final.
        if (ready_hook && --leaf_edges[edge.leaf.get()] == 0) (*ready_hook)(*edge.leaf);
      }
    }
    if (!retain_graph) node->release();
  }
}

Tensor default_grad_output(const Tensor& output, const Tensor& given, const char* op) {
  if (given.defined()) {
    LOUPE_CHECK(given.shape() == output.shape(), op, ": grad_output shape ", shape_str(given.shape()),
                " differs from output shape ", shape_str(output.shape()));
    return given;
  }
  LOUPE_CHECK(output.numel() == 1, op, ": grad_output can be omitted only for a one-element output, ",
              "got shape ", shape_str(output.shape()));
  return ones_like(output);  // on the output's device
}

}  // namespace

void backward(const Tensor& output, const Tensor& grad_output, bool retain_graph) {
  LOUPE_CHECK(output.requires_grad(), "backward: the output does not require a gradient (no input ",
              "requires one, or it was computed under no_grad)");
  run_backward({output}, {default_grad_output(output, grad_output, "backward")}, retain_graph, nullptr, {}, {});
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& grad_outputs, bool retain_graph, bool allow_unused) {
  LOUPE_CHECK(grad_outputs.empty() || grad_outputs.size() == outputs.size(), "grad: ", outputs.size(),
              " outputs but ", grad_outputs.size(), " grad_outputs");
  std::vector<Tensor> root_grads;
  for (size_t i = 0; i < outputs.size(); ++i) {
    LOUPE_CHECK(outputs[i].requires_grad(), "grad: output ", i, " does not require a gradient");
    root_grads.push_back(default_grad_output(outputs[i], grad_outputs.empty() ? Tensor() : grad_outputs[i], "grad"));
  }
  std::unordered_set<const Node*> wanted;
  std::unordered_set<const AutogradMeta*> wanted_leaves;
  for (const Tensor& input : inputs) {
    LOUPE_CHECK(input.requires_grad(), "grad: an input does not require a gradient");
    if (input.grad_fn()) {
      wanted.insert(input.grad_fn().get());
    } else {
      wanted_leaves.insert(input.autograd_meta_ptr().get());
    }
  }
  Capture capture;
  // A non-leaf input whose node is also a root receives the root gradient directly.
  run_backward(outputs, root_grads, retain_graph, &capture, wanted, wanted_leaves);
  std::vector<Tensor> result;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& input = inputs[i];
    Tensor g;
    if (input.grad_fn()) {
      auto it = capture.node_grads.find(input.grad_fn().get());
      if (it != capture.node_grads.end()) g = it->second;
    } else {
      auto it = capture.leaf_grads.find(input.autograd_meta_ptr().get());
      if (it != capture.leaf_grads.end()) g = it->second;
    }
    LOUPE_CHECK(g.defined() || allow_unused, "grad: input ", i, " is not used to compute the outputs");
    result.push_back(g);
  }
  return result;
}

void zero_grad(const std::vector<Tensor>& tensors) {
  for (Tensor t : tensors) t.set_grad(Tensor());
}

}  // namespace loupe
