// Differentiable matmul and linear. See linalg.hpp.
//
// For out = a @ b (batched): grad_a = g @ b^T and grad_b = a^T @ g, then summed over the batch
// dims each operand was broadcast along. 1-d operands are handled by redoing the forward's
// promotion ((k) -> (1, k) on the left, (k, 1) on the right) and reshaping the gradients back.
#include "autograd/functions/linalg.hpp"

#include "autograd/autocast.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/view.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using Grads = std::vector<Tensor>;

// x as the matrix (product of leading dims, x.size(-1)); a view when the layout allows.
Tensor as_rows(const Tensor& x) {
  return ops::reshape(x, {shape_numel(Shape(x.shape().begin(), x.shape().end() - 1)), x.size(-1)});
}

Tensor transpose_last(const Tensor& x) { return ops::transpose(x, -1, -2); }
}  // namespace

Tensor matmul(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = autocast_to_lower(a_in), b = autocast_to_lower(b_in);  // bf16 under autocast
  Tensor out = ops::matmul(a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(
      out, OpKind::matmul, "matmul", {a, b},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& a = n.saved[0];
        const Tensor& b = n.saved[1];
        const Tensor a2 = a.dim() == 1 ? ops::unsqueeze(a, 0) : a;  // (a_batch..., m, k)
        const Tensor b2 = b.dim() == 1 ? ops::unsqueeze(b, 1) : b;  // (b_batch..., k, n)
        // g with the squeezed dims restored: (batch..., m, n).
        Shape out2 = broadcast_shapes(Shape(a2.shape().begin(), a2.shape().end() - 2),
                                      Shape(b2.shape().begin(), b2.shape().end() - 2), "matmul");
        out2.push_back(a2.size(-2));
        out2.push_back(b2.size(-1));
        const Tensor g2 = ops::reshape(g, out2);
        Tensor ga, gb;
        if (n.needs_input_grad(0)) {
          ga = ops::reshape(ops::sum_to(ops::matmul(g2, transpose_last(b2)), a2.shape()), a.shape());
        }
        if (n.needs_input_grad(1)) {
          if (b2.dim() == 2 && a2.dim() > 2) {
            // b is shared by every batch matrix: one GEMM over all rows, (k, B m) @ (B m, n).
            gb = ops::matmul(transpose_last(as_rows(a2)), as_rows(g2));
          } else {
            gb = ops::sum_to(ops::matmul(transpose_last(a2), g2), b2.shape());
          }
          gb = ops::reshape(gb, b.shape());
        }
        return {ga, gb};
      },
      {a, b});
}

Tensor linear(const Tensor& x_in, const Tensor& weight_in, const Tensor& bias_in) {
  // bf16 under autocast; the casts' backward gives the float32 parameters float32 gradients.
  const Tensor x = autocast_to_lower(x_in), weight = autocast_to_lower(weight_in), bias = autocast_to_lower(bias_in);
  Tensor out = ops::linear(x, weight, bias);
  if (!autograd::should_record({x, weight, bias})) return out;
  return autograd::record(
      out, OpKind::linear, "linear", {x, weight, bias},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& x = n.saved[0];  // (..., in)
        const Tensor& w = n.saved[1];  // (out, in)
        const Tensor g_rows = as_rows(g);  // (r, out)
        Tensor gx, gw, gb;
        if (n.needs_input_grad(0)) gx = ops::reshape(ops::matmul(g_rows, w), x.shape());  // (..., in)
        if (n.needs_input_grad(1)) gw = ops::matmul(transpose_last(g_rows), as_rows(x));  // (out, in)
        if (n.needs_input_grad(2)) gb = ops::sum(g_rows, {0});                            // (out)
        return {gx, gw, gb};
      },
      {x, weight});
}

}  // namespace loupe
