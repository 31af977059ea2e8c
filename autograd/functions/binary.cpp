// Differentiable binary ops. See binary.hpp.
#include "autograd/functions/binary.hpp"

#include "autograd/autocast.hpp"
#include "autograd/functions/unary.hpp"
#include "autograd/grad_utils.hpp"
#include "autograd/record.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/unary.hpp"

namespace loupe {

namespace {
using autograd::Node;
using autograd::OpKind;
using autograd::reduce_to_input;
using Grads = std::vector<Tensor>;
}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = ops::add(a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(out, OpKind::add, "add", {a, b}, [](const Node& n, const Tensor& g) -> Grads {
    return {reduce_to_input(n, 0, g), reduce_to_input(n, 1, g)};
  });
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = ops::sub(a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(out, OpKind::sub, "sub", {a, b}, [](const Node& n, const Tensor& g) -> Grads {
    return {reduce_to_input(n, 0, g), n.needs_input_grad(1) ? reduce_to_input(n, 1, ops::neg(g)) : Tensor()};
  });
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = ops::mul(a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(
      out, OpKind::mul, "mul", {a, b},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& sa = n.saved[0];
        const Tensor& sb = n.saved[1];
        return {n.needs_input_grad(0) ? reduce_to_input(n, 0, ops::mul(g, sb)) : Tensor(),
                n.needs_input_grad(1) ? reduce_to_input(n, 1, ops::mul(g, sa)) : Tensor()};
      },
      {a, b});
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = ops::div(a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(
      out, OpKind::div, "div", {a, b},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& sa = n.saved[0];
        const Tensor& sb = n.saved[1];
        // d(a/b)/da = 1/b, d(a/b)/db = -a/b^2
        return {n.needs_input_grad(0) ? reduce_to_input(n, 0, ops::div(g, sb)) : Tensor(),
                n.needs_input_grad(1)
                    ? reduce_to_input(n, 1, ops::neg(ops::div(ops::mul(g, sa), ops::mul(sb, sb))))
                    : Tensor()};
      },
      {a, b});
}

Tensor pow(const Tensor& a_in, const Tensor& b_in) {
  const Tensor a = autocast_to_float(a_in), b = autocast_to_float(b_in);  // float32 under autocast
  Tensor out = ops::pow(a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(
      out, OpKind::pow, "pow", {a, b},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& sa = n.saved[0];
        const Tensor& sb = n.saved[1];
        const Tensor& y = n.saved[2];
        Tensor ga, gb;
        if (n.needs_input_grad(0)) {
          // d(a^b)/da = b * a^(b-1), taken as 0 where b == 0 (PyTorch's convention).
          const Tensor d = ops::mul(sb, ops::pow(sa, ops::sub(sb, 1.0)));
          const Tensor zero = ops::scalar_like(0.0, d);
          ga = reduce_to_input(n, 0, ops::mul(g, ops::where(ops::eq(sb, zero), zero, d)));
        }
        if (n.needs_input_grad(1)) {
          // d(a^b)/db = a^b * log(a), taken as 0 where a == 0 and b >= 0.
          const Tensor d = ops::mul(y, ops::log(sa));
          const Tensor zero = ops::scalar_like(0.0, d);
          const Tensor mask = ops::logical_and(ops::eq(sa, zero), ops::ge(sb, zero));
          gb = reduce_to_input(n, 1, ops::mul(g, ops::where(mask, zero, d)));
        }
        return {ga, gb};
      },
      {a, b, out});
}

namespace {
// maximum/minimum: the gradient goes to the chosen side, split in half on ties (as PyTorch).
Tensor extremum(ops::BinaryOp op, OpKind kind, const Tensor& a, const Tensor& b) {
  Tensor out = ops::binary(op, a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(
      out, kind, ops::binary_name(op), {a, b},
      [op](const Node& n, const Tensor& g) -> Grads {
        const Tensor& sa = n.saved[0];
        const Tensor& sb = n.saved[1];
        const Tensor a_wins = op == ops::BinaryOp::maximum ? ops::gt(sa, sb) : ops::lt(sa, sb);
        const Tensor tie = ops::eq(sa, sb);
        const Tensor zero = ops::scalar_like(0.0, g);
        const Tensor half = ops::mul(g, 0.5);
        const Tensor ga = ops::where(a_wins, g, ops::where(tie, half, zero));
        const Tensor gb = ops::where(a_wins, zero, ops::where(tie, half, g));
        return {reduce_to_input(n, 0, ga), reduce_to_input(n, 1, gb)};
      },
      {a, b});
}
}  // namespace

Tensor maximum(const Tensor& a, const Tensor& b) { return extremum(ops::BinaryOp::maximum, OpKind::maximum, a, b); }
Tensor minimum(const Tensor& a, const Tensor& b) { return extremum(ops::BinaryOp::minimum, OpKind::minimum, a, b); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  Tensor out = ops::where(cond, a, b);
  if (!autograd::should_record({a, b})) return out;
  return autograd::record(
      out, OpKind::where, "where", {cond, a, b},
      [](const Node& n, const Tensor& g) -> Grads {
        const Tensor& c = n.saved[0];
        const Tensor zero = ops::scalar_like(0.0, g);
        return {Tensor(), reduce_to_input(n, 1, ops::where(c, g, zero)),
                reduce_to_input(n, 2, ops::where(c, zero, g))};
      },
      {cond});
}

Tensor add(const Tensor& a, double b) { return add(a, ops::scalar_like(b, a)); }
Tensor sub(const Tensor& a, double b) { return sub(a, ops::scalar_like(b, a)); }
Tensor mul(const Tensor& a, double b) { return mul(a, ops::scalar_like(b, a)); }
Tensor div(const Tensor& a, double b) { return div(a, ops::scalar_like(b, a)); }
Tensor pow(const Tensor& a, double b) { return pow(a, ops::scalar_like(b, a)); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator-(const Tensor& a) { return neg(a); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(ops::scalar_like(a, b), b); }
Tensor operator-(double a, const Tensor& b) { return sub(ops::scalar_like(a, b), b); }
Tensor operator*(double a, const Tensor& b) { return mul(ops::scalar_like(a, b), b); }
Tensor operator/(double a, const Tensor& b) { return div(ops::scalar_like(a, b), b); }

}  // namespace loupe
