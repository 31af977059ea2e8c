// Batch-norm folding. See fold_batch_norm.hpp.
#include "nn/fold_batch_norm.hpp"

#include <cmath>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>

#include "nn/layers/conv.hpp"
#include "nn/layers/norm.hpp"
#include "tensor/ops.hpp"

namespace loupe::nn {

namespace {

using autograd::Node;

// A module's calls seen by the traced forward: the graph node of each output.
struct Calls {
  std::string name;
  std::vector<std::shared_ptr<Node>> outputs;
};

// How many graph edges point at each node: the number of consumers of the node's output.
std::unordered_map<const Node*, int> consumer_counts(const std::shared_ptr<Node>& root) {
  std::unordered_map<const Node*, int> counts;
  std::unordered_set<const Node*> seen{root.get()};
  std::vector<const Node*> stack{root.get()};
  while (!stack.empty()) {
    const Node* node = stack.back();
    stack.pop_back();
    for (const autograd::Edge& edge : node->inputs()) {
      if (!edge.node) continue;
      ++counts[edge.node.get()];
      if (seen.insert(edge.node.get()).second) stack.push_back(edge.node.get());
    }
  }
  return counts;
}

// A float64 CPU copy of t (contiguous).
Tensor host_f64(const Tensor& t) { return ops::to_dtype(ops::to_device(t, Device::cpu()), DType::f64); }

// Writes the folded weight and bias into conv (see the head comment of fold_batch_norm.hpp).
void fold_pair(Conv2d& conv, const BatchNorm2d& bn) {
  NoGradGuard no_grad;
  const int64_t out = conv.out_channels();
  const Tensor w = host_f64(conv.weight);
  const Tensor mean = host_f64(bn.running_mean), var = host_f64(bn.running_var);
  const Tensor gamma = bn.weight.defined() ? host_f64(bn.weight) : Tensor();
  const Tensor beta = bn.bias.defined() ? host_f64(bn.bias) : Tensor();
  const Tensor b = conv.bias.defined() ? host_f64(conv.bias) : Tensor();
  const int64_t per_channel = w.numel() / out;
  Tensor w_new = Tensor::empty(w.shape(), DType::f64), b_new = Tensor::empty({out}, DType::f64);
  const double* pw = w.data<double>();
  double* pw_new = w_new.data<double>();
  for (int64_t o = 0; o < out; ++o) {
    const double s = (gamma.defined() ? gamma.data<double>()[o] : 1.0) / std::sqrt(var.data<double>()[o] + bn.options().eps);
    for (int64_t j = 0; j < per_channel; ++j) pw_new[o * per_channel + j] = pw[o * per_channel + j] * s;
    const double shift = beta.defined() ? beta.data<double>()[o] : 0.0;
    b_new.data<double>()[o] = ((b.defined() ? b.data<double>()[o] : 0.0) - mean.data<double>()[o]) * s + shift;
  }
  ops::copy_(conv.weight, ops::to_device(ops::to_dtype(w_new, conv.weight.dtype()), conv.weight.device()));
  conv.set_bias(ops::to_device(ops::to_dtype(b_new, conv.weight.dtype()), conv.weight.device()));
}

}  // namespace

FoldReport fold_batch_norms(Module& model, const Tensor& example_input) {
  LOUPE_CHECK(!model.is_training(), "fold_batch_norms: the model is in training mode; folding is an inference "
                                    "transform (call eval() first)");
  LOUPE_CHECK(example_input.defined(), "fold_batch_norms: example_input is undefined");
  std::map<Module*, Calls> convs, norms;
  std::vector<Module*> norm_order;  // the report lists batch norms in the model's order
  std::vector<ForwardHookHandle> hooks;
  for (auto& [name, m] : model.named_modules()) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) {
      LOUPE_CHECK(!bn->is_training(), "fold_batch_norms: batch norm '", name, "' is in training mode");
      if (bn->folded()) continue;
      norms[m].name = name;
      norm_order.push_back(m);
    } else if (dynamic_cast<Conv2d*>(m) != nullptr) {
      convs[m].name = name;
    } else {
      continue;
    }
    Calls* calls = convs.count(m) ? &convs[m] : &norms[m];
    hooks.push_back(m->add_forward_hook([calls](const Tensor& y) { calls->outputs.push_back(y.grad_fn()); }));
  }

  // The trace: one forward with every op recorded (the input requires a gradient, so even a
  // model whose parameters are frozen records its whole graph).
  Tensor root;
  {
    EnableGradGuard grad;
    const Tensor x = example_input.detach().set_requires_grad(true);
    root = model(x);
  }
  hooks.clear();
  LOUPE_CHECK(root.grad_fn() != nullptr, "fold_batch_norms: the traced forward recorded no graph");
  const std::unordered_map<const Node*, int> consumers = consumer_counts(root.grad_fn());
  std::unordered_map<const Node*, Module*> conv_of_node;
  for (auto& [m, calls] : convs) {
    if (calls.outputs.size() == 1 && calls.outputs[0]) conv_of_node[calls.outputs[0].get()] = m;
  }

  FoldReport report;
  for (Module* m : norm_order) {
    const Calls& calls = norms[m];
    auto* bn = static_cast<BatchNorm2d*>(m);
    auto keep = [&](const std::string& why) { report.kept.push_back(calls.name + ": " + why); };
    if (calls.outputs.size() != 1 || !calls.outputs[0]) {
      keep(calls.outputs.empty() ? "not called by the forward pass" : "called more than once");
      continue;
    }
    if (!bn->options().track_running_stats) {
      keep("no running statistics (normalises by each batch's)");
      continue;
    }
    const Node& node = *calls.outputs[0];
    const std::shared_ptr<Node>& input = node.inputs().empty() ? nullptr : node.inputs()[0].node;
    const auto producer = input ? conv_of_node.find(input.get()) : conv_of_node.end();
    if (node.kind() != autograd::OpKind::batch_norm || producer == conv_of_node.end()) {
      keep("its input is not a convolution's output");
      continue;
    }
    const auto uses = consumers.find(input.get());
    if (uses == consumers.end() || uses->second != 1) {
      keep("the convolution's output is used elsewhere too");
      continue;
    }
    const DType dtype = static_cast<Conv2d*>(producer->second)->weight.dtype();
    if (dtype != DType::f32 && dtype != DType::f64) {
      keep("the convolution's weights are not float32 or float64");
      continue;
    }
    fold_pair(*static_cast<Conv2d*>(producer->second), *bn);
    bn->mark_folded();
    report.folded.push_back({convs[producer->second].name, calls.name});
  }
  return report;
}

}  // namespace loupe::nn
