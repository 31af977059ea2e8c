// Differentiable attention and rotary embeddings. See attention.hpp.
#include "autograd/functions/attention.hpp"

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;
}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in,
                                    const AttentionOptions& options) {
  // float32 under autocast (the CPU and the reference path compute in float32 / float64).
  const Tensor q = autocast_to_float(q_in), k = autocast_to_float(k_in), v = autocast_to_float(v_in);
  AttentionOptions o = options;
  if (o.mask.defined()) o.mask = o.mask.detach();
  ops::AttentionForward f = ops::attention_forward(q, k, v, o);
  if (!autograd::should_record({q, k, v})) return f.out;
  const double scale = ops::check_attention(q, k, v, o, "scaled_dot_product_attention").scale;
  return autograd::record(
      f.out, OpKind::attention, "scaled_dot_product_attention", {q, k, v},
      [](const Node& n, const Tensor& g) -> Grads {
        AttentionOptions o;
        o.mask = n.saved[5];
        o.causal = static_cast<CausalMode>(static_cast<int>(n.attrs[0]));
        o.scale = n.attrs[1];
        ops::AttentionGrads d = ops::attention_backward(g, n.saved[0], n.saved[1], n.saved[2], n.saved[3], n.saved[4], o);
        return {d.dq, d.dk, d.dv};
      },
      {q, k, v, f.out, f.lse, o.mask}, {static_cast<double>(static_cast<int>(o.causal)), scale});
}

Tensor rotary_embedding(const Tensor& x_in, const Tensor& positions, double theta) {
  const Tensor x = autocast_to_float(x_in);
  Tensor y = ops::rotary_embedding(x, positions, theta, /*inverse=*/false);
  if (!autograd::should_record({x})) return y;
  return autograd::record(
      y, OpKind::rotary_embedding, "rotary_embedding", {x},
      [](const Node& n, const Tensor& g) -> Grads {
        // The rotation is orthogonal: its adjoint is the inverse rotation.
        return {ops::rotary_embedding(g, n.saved[0], n.attrs[0], /*inverse=*/true)};
      },
      {positions}, {theta});
}

}  // namespace loupe
