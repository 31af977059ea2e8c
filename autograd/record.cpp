// Recording graph nodes. See record.hpp.
#include "autograd/record.hpp"

namespace loupe::autograd {

bool should_record(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

Tensor record(const Tensor& out_in, OpKind kind, const char* name, const std::vector<Tensor>& inputs,
              Node::BackwardFn backward, const std::vector<Tensor>& saved, std::vector<double> attrs) {
  Tensor out = out_in;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.is_same(out)) out = out.detach();
  }
  std::vector<Edge> edges;
  edges.reserve(inputs.size());
  for (const Tensor& t : inputs) {
    Edge edge;
    if (t.defined()) {
      edge.shape = t.shape();
      edge.dtype = t.dtype();
      if (t.requires_grad()) {
        if (t.grad_fn()) {
          edge.node = t.grad_fn();
        } else {
          edge.leaf = t.autograd_meta_ptr();
        }
      }
    }
    edges.push_back(std::move(edge));
  }
  auto node = std::make_shared<Node>(kind, name, std::move(edges), std::move(backward));
  for (const Tensor& t : saved) node->saved.push_back(t.defined() ? t.detach() : Tensor());
  node->attrs = std::move(attrs);
  node->output_shape = out.shape();
  node->output_dtype = out.dtype();
  AutogradMeta& meta = out.autograd_meta();
  meta.requires_grad = true;
  meta.grad_fn = std::move(node);
  return out;
}

}  // namespace loupe::autograd
