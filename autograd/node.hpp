// Graph nodes of reverse-mode autograd.
//
// Every differentiable op that runs while some input requires a gradient records one Node on its
// output. The node knows its op kind (so a RuleSet can replace its backward), where each input's
// gradient goes (an Edge to the producing node or to a leaf), the tensors and numbers its backward
// needs, and the backward function itself. Nodes have exactly one output: ops with several results
// (max's values and indices, split's pieces) record one node per differentiable result.
// Tests: tests/autograd/test_engine.cpp
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::autograd {

// The op kinds rules can be attached to, one per differentiable op. Kept as one list so the
// enum and its printable names cannot drift apart. Conventions that rules rely on:
//   unary elementwise nodes:  saved = {x, y}, attrs = {param a, param b} (tensor/ops/unary.hpp)
//   max_pool2d:               saved = {x, y, indices}, attrs = {kh, kw, sh, sw, ph, pw, dh, dw, ceil}
//   softmax / log_softmax:    saved = {x, y}, attrs = {dim}
#define LOUPE_OP_KINDS(X)                                                                         \
  X(neg) X(abs) X(sign) X(exp) X(log) X(log1p) X(sqrt) X(rsqrt) X(square) X(reciprocal) X(sin)   \
  X(cos) X(relu) X(sigmoid) X(tanh) X(gelu) X(gelu_tanh) X(silu) X(softplus) X(elu)              \
  X(leaky_relu) X(clamp)                                                                         \
  X(add) X(sub) X(mul) X(div) X(pow) X(maximum) X(minimum) X(where)                              \
  X(sum) X(mean) X(max) X(min) X(amax) X(amin) X(var) X(std) X(norm) X(logsumexp) X(cumsum)      \
  X(softmax) X(log_softmax) X(topk) X(sort)                                                      \
  X(view) X(permute) X(slice) X(expand) X(copy) X(to_dtype)                                      \
  X(matmul) X(linear) X(conv2d) X(max_pool2d) X(avg_pool2d) X(adaptive_avg_pool2d)              \
  X(batch_norm) X(layer_norm) X(rms_norm) X(dropout) X(embedding)                                \
  X(gather) X(scatter_add) X(index_select) X(index_add) X(masked_fill) X(cat) X(pad)             \
  X(interpolate)                                                                                 \
  X(attention) X(rotary_embedding)                                                               \
  X(cross_entropy) X(nll_loss) X(bce_with_logits) X(mse_loss) X(l1_loss) X(smooth_l1_loss)       \
  X(custom)

enum class OpKind {
#define LOUPE_OP_KIND_ENUM(name) name,
  LOUPE_OP_KINDS(LOUPE_OP_KIND_ENUM)
#undef LOUPE_OP_KIND_ENUM
};

const char* op_kind_name(OpKind kind);

class Node;

// Where the gradient of one input goes: the node that produced the input, or the input itself
// when it is a leaf that requires a gradient. An empty edge means "this input needs no gradient".
struct Edge {
  std::shared_ptr<Node> node;
  std::shared_ptr<AutogradMeta> leaf;
  Shape shape;  // the input's shape and dtype, to check what backward returns
  DType dtype = DType::f32;

  bool needs_grad() const { return node != nullptr || leaf != nullptr; }
};

// The edges a grad(outputs, inputs) call needs: nodes and leaves from which a requested input is
// reachable. The engine installs one for the duration of such a call (thread-local).
struct EdgeFilter {
  std::unordered_set<const Node*> nodes;
  std::unordered_set<const AutogradMeta*> leaves;

  bool keeps(const Edge& edge) const {
    return edge.node ? nodes.count(edge.node.get()) > 0 : edge.leaf && leaves.count(edge.leaf.get()) > 0;
  }
};

const EdgeFilter* active_edge_filter();

class EdgeFilterScope {
 public:
  explicit EdgeFilterScope(const EdgeFilter* filter);
  ~EdgeFilterScope();
  EdgeFilterScope(const EdgeFilterScope&) = delete;
  EdgeFilterScope& operator=(const EdgeFilterScope&) = delete;

 private:
  const EdgeFilter* previous_;
};

class Node {
 public:
  // Returns one gradient per input (an undefined Tensor where an input gets none).
  using BackwardFn = std::function<std::vector<Tensor>(const Node& node, const Tensor& grad_output)>;

  Node(OpKind kind, std::string name, std::vector<Edge> inputs, BackwardFn backward)
      : kind_(kind), name_(std::move(name)), inputs_(std::move(inputs)), backward_(std::move(backward)) {}
  // Frees the chain of nodes only this node keeps alive without recursion (a long graph would
  // otherwise overflow the stack through nested shared_ptr destructors).
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  OpKind kind() const { return kind_; }
  const std::string& name() const { return name_; }
  const std::vector<Edge>& inputs() const { return inputs_; }
  // True when input i's gradient is wanted by the backward pass now running: the input needs a
  // gradient and, during grad(outputs, inputs), leads to one of the requested inputs. Backward
  // formulas check it to skip work (e.g. weight gradients when only the input's is asked for).
  bool needs_input_grad(size_t i) const;

  // What backward formulas and rules read. Saved tensors are detached (no history), so a node
  // never keeps its own output's graph alive.
  std::vector<Tensor> saved;
  std::vector<double> attrs;
  Shape output_shape;
  DType output_dtype = DType::f32;

  std::vector<Tensor> apply(const Tensor& grad_output) const;
  // Drops saved tensors and the backward function after a backward pass without retain_graph.
  void release();
  bool released() const { return released_; }

 private:
  OpKind kind_;
  std::string name_;
  std::vector<Edge> inputs_;
  BackwardFn backward_;
  bool released_ = false;
};

}  // namespace loupe::autograd
