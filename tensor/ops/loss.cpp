// Loss functions and their backward kernels. See loss.hpp and loss_backward.hpp.
//
// Class-index losses (cross_entropy, nll_loss) see the input as (N, C, D): sample n, class c,
// position d of the flattened trailing dims d1...; a "position" is one (n, d) pair with one target.
// The unbatched form (C) with a 0-d target is N = D = 1. Per-position losses are computed in
// parallel in float64 and reduced serially, so results do not depend on the thread count.
//
// PyTorch's reductions: `none` keeps the target's shape; `sum` adds up; `mean` divides by the sum
// of the class weights of the non-ignored targets (their count without weights) - for the label
// smoothing term too, as torch.nn.functional.cross_entropy does.
#include "tensor/ops/loss.hpp"

#include <algorithm>
#include <cmath>
#include <optional>
#include <vector>

#include "tensor/cpu/loops.hpp"
#include "tensor/cuda/ops.hpp"
#include "tensor/dispatch.hpp"
#include "tensor/ops/binary.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/loss_backward.hpp"
#include "tensor/ops/reduce.hpp"
#include "tensor/ops/unary.hpp"
#include "tensor/ops/view.hpp"
#include "tensor/parallel.hpp"
#include "tensor/ops/device.hpp"

namespace loupe::ops {

namespace {

// --- class-index losses ---

struct ClassLayout {
  int64_t n = 1, c = 0, d = 1;
  int64_t positions() const { return n * d; }
  // Element (n, 0, d) of position p = n * D + d; class k is `k * d` further on.
  int64_t offset(int64_t p) const { return (p / d) * c * d + p % d; }
};

ClassLayout class_layout(const Tensor& input, const Tensor& target, const char* op) {
  LOUPE_CHECK(is_floating(input.dtype()), op, ": expected a floating input, got ", input.dtype(), " of shape ",
              shape_str(input.shape()));
  LOUPE_CHECK(target.dtype() == DType::i64, op, ": target must hold class indices as int64, got ", target.dtype(),
              " of shape ", shape_str(target.shape()));
  LOUPE_CHECK(input.dim() >= 1, op, ": expected an input of shape (N, C, ...) or (C), got ",
              shape_str(input.shape()));
  ClassLayout l;
  Shape expected;  // the input's shape without the class dim
  if (input.dim() == 1) {
    l.c = input.shape()[0];
  } else {
    l.n = input.shape()[0];
    l.c = input.shape()[1];
    expected.push_back(l.n);
    for (size_t i = 2; i < input.shape().size(); ++i) {
      l.d *= input.shape()[i];
      expected.push_back(input.shape()[i]);
    }
  }
  LOUPE_CHECK(target.shape() == expected, op, ": target of shape ", shape_str(target.shape()),
              " does not match input of shape ", shape_str(input.shape()), " (expected target shape ",
              shape_str(expected), ")");
  return l;
}

// Everything a class-index loss needs besides the input values, validated.
struct ClassProblem {
  ClassLayout layout;
  std::vector<int64_t> target;  // one per position
  std::vector<double> weight;   // one per class (1 without weights)
  double total_weight = 0.0;    // sum of weight[target] over non-ignored positions: mean's divisor
};

// The layout, with the options checked (every device).
ClassLayout checked_layout(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o, const char* op) {
  const ClassLayout l = class_layout(input, target, op);
  LOUPE_CHECK(o.label_smoothing >= 0.0 && o.label_smoothing <= 1.0, op,
              ": label_smoothing must be between 0 and 1, got ", o.label_smoothing);
  if (o.weight.defined()) {
    LOUPE_CHECK(is_floating(o.weight.dtype()) && o.weight.shape() == Shape{l.c}, op,
                ": weight must be a floating tensor of shape (", l.c, "), got ", o.weight.dtype(), " of shape ",
                shape_str(o.weight.shape()));
  }
  return l;
}

void target_out_of_bounds(int64_t t, int64_t classes, const Tensor& input, const CrossEntropyOptions& o,
                          const char* op) {
  throw Error(detail::make_message(op, ": target ", t, " is out of bounds for ", classes, " classes (input of shape ",
                                   shape_str(input.shape()), ", ignore_index ", o.ignore_index, ")"));
}

// On a GPU: the checked layout, with every non-ignored target checked on the device (one
// synchronisation); the loss itself is computed by tensor/cuda/loss.cu.
ClassLayout checked_gpu_layout(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o,
                               const char* op) {
  const ClassLayout l = checked_layout(input, target, o, op);
  const std::optional<int64_t> bad = cuda::first_out_of_range(contiguous(target), 0, l.c, o.ignore_index);
  if (bad) target_out_of_bounds(*bad, l.c, input, o, op);
  return l;
}

ClassProblem class_problem(const Tensor& input, const Tensor& target, const CrossEntropyOptions& o, const char* op) {
  ClassProblem pr;
  pr.layout = checked_layout(input, target, o, op);
  const int64_t classes = pr.layout.c;
  if (o.weight.defined()) {
    pr.weight = to_vector<double>(o.weight);
  } else {
    pr.weight.assign(static_cast<size_t>(classes), 1.0);
  }
  pr.target = to_vector<int64_t>(target);
  for (int64_t t : pr.target) {
    if (t == o.ignore_index) continue;
    if (t < 0 || t >= classes) target_out_of_bounds(t, classes, input, o, op);
    pr.total_weight += pr.weight[static_cast<size_t>(t)];
  }
  return pr;
}

int64_t position_grain(int64_t classes) {
  return std::max<int64_t>(1, cpu::kElementwiseGrain / std::max<int64_t>(classes, 1));
}

// log(sum_k exp(row[k * stride])) over `n` classes, max-subtracted.
template <typename T>
double log_sum_exp(const T* row, int64_t n, int64_t stride) {
  double hi = -INFINITY;
  for (int64_t k = 0; k < n; ++k) hi = std::max(hi, static_cast<double>(row[k * stride]));
  if (std::isinf(hi)) return hi;
  double sum = 0.0;
  for (int64_t k = 0; k < n; ++k) sum += std::exp(static_cast<double>(row[k * stride]) - hi);
  return hi + std::log(sum);
}

// The unreduced loss of every position (0 where ignored). from_logits: cross_entropy, i.e.
//   (1 - eps) * (-w[t] * logp[t]) + eps / C * (-sum_k w[k] * logp[k]),  logp = log_softmax(row)
// else nll_loss on log-probabilities: -w[t] * row[t].
template <typename T>
std::vector<double> position_losses(const T* x, const ClassProblem& pr, const CrossEntropyOptions& o,
                                    bool from_logits) {
  const ClassLayout& l = pr.layout;
  const double eps = o.label_smoothing;
  std::vector<double> loss(static_cast<size_t>(l.positions()), 0.0);
  parallel_for(0, l.positions(), position_grain(l.c), [&](int64_t lo, int64_t hi) {
    for (int64_t p = lo; p < hi; ++p) {
      const int64_t t = pr.target[static_cast<size_t>(p)];
      if (t == o.ignore_index) continue;
      const T* row = x + l.offset(p);
      const double wt = pr.weight[static_cast<size_t>(t)];
      if (!from_logits) {
        loss[static_cast<size_t>(p)] = -wt * static_cast<double>(row[t * l.d]);
        continue;
      }
      const double lse = log_sum_exp(row, l.c, l.d);
      const double nll = -wt * (static_cast<double>(row[t * l.d]) - lse);
      double smooth = 0.0;
      if (eps > 0.0) {
        for (int64_t k = 0; k < l.c; ++k) {
          smooth -= pr.weight[static_cast<size_t>(k)] * (static_cast<double>(row[k * l.d]) - lse);
        }
      }
      loss[static_cast<size_t>(p)] = (1.0 - eps) * nll + eps / static_cast<double>(l.c) * smooth;
    }
  });
  return loss;
}

Tensor class_loss(const char* op, const Tensor& input, const Tensor& target, const CrossEntropyOptions& o,
                  bool from_logits) {
  check_same_device(op, {input, target, o.weight});
  if (input.device().is_cuda()) {
    const ClassLayout l = checked_gpu_layout(input, target, o, op);
    return cuda::class_loss(input, target, o, l.n, l.c, l.d, from_logits);
  }
  const ClassProblem pr = class_problem(input, target, o, op);
  const Tensor xc = contiguous(input);
  const std::vector<double> loss = dispatch_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    return position_losses<T>(xc.data<T>(), pr, o, from_logits);
  });
  if (o.reduction == Reduction::none) return from_values(loss, target.shape(), input.dtype());
  double total = 0.0;
  for (double v : loss) total += v;
  // An empty or all-ignored batch gives 0 / 0 = NaN under mean, as in PyTorch.
  if (o.reduction == Reduction::mean) total /= pr.total_weight;
  return scalar_tensor(total, input.dtype());
}

// The gradient of the loss w.r.t. each position's unreduced loss.
std::vector<double> position_scales(const Tensor& grad, const ClassProblem& pr, Reduction reduction) {
  const size_t positions = static_cast<size_t>(pr.layout.positions());
  if (reduction == Reduction::none) return to_vector<double>(grad);
  const double g = grad.item();
  return std::vector<double>(positions, reduction == Reduction::mean ? g / pr.total_weight : g);
}

Tensor class_loss_backward(const char* op, const Tensor& grad, const Tensor& input, const Tensor& target,
                           const CrossEntropyOptions& o, bool from_logits) {
  check_same_device(op, {grad, input, target, o.weight});
  if (input.device().is_cuda()) {
    const ClassLayout l = checked_gpu_layout(input, target, o, op);
    return cuda::class_loss_backward(grad, input, target, o, l.n, l.c, l.d, from_logits);
  }
  const ClassProblem pr = class_problem(input, target, o, op);
  const ClassLayout& l = pr.layout;
  const std::vector<double> scale = position_scales(grad, pr, o.reduction);
  const double eps = o.label_smoothing;
  double weight_sum = 0.0;
  for (double w : pr.weight) weight_sum += w;
  const Tensor xc = contiguous(input);
  Tensor dx = zeros(input.shape(), input.dtype());
  dispatch_floating(input.dtype(), op, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = xc.data<T>();
    T* out = dx.data<T>();
    parallel_for(0, l.positions(), position_grain(l.c), [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        const int64_t t = pr.target[static_cast<size_t>(p)];
        if (t == o.ignore_index) continue;
        const double s = scale[static_cast<size_t>(p)];
        const double wt = pr.weight[static_cast<size_t>(t)];
        T* drow = out + l.offset(p);
        if (!from_logits) {
          drow[t * l.d] = static_cast<T>(-wt * s);
          continue;
        }
        const T* row = x + l.offset(p);
        const double lse = log_sum_exp(row, l.c, l.d);
        for (int64_t k = 0; k < l.c; ++k) {
          const double prob = std::exp(static_cast<double>(row[k * l.d]) - lse);
          const double nll = wt * (prob - (k == t ? 1.0 : 0.0));
          const double smooth = weight_sum * prob - pr.weight[static_cast<size_t>(k)];
          drow[k * l.d] = static_cast<T>(s * ((1.0 - eps) * nll + eps / static_cast<double>(l.c) * smooth));
        }
      }
    });
  });
  return dx;
}

// --- binary cross-entropy with logits ---

const char* kBce = "binary_cross_entropy_with_logits";

// logits, target and pos_weight as contiguous tensors of the logits' dtype and shape.
struct BceInputs {
  Tensor x, y, pos_weight;  // pos_weight undefined when not given
};

BceInputs bce_inputs(const Tensor& logits, const Tensor& target, const Tensor& pos_weight) {
  LOUPE_CHECK(is_floating(logits.dtype()), kBce, ": expected floating logits, got ", logits.dtype());
  LOUPE_CHECK(is_floating(target.dtype()), kBce, ": expected a floating target, got ", target.dtype(), " of shape ",
              shape_str(target.shape()));
  LOUPE_CHECK(target.shape() == logits.shape(), kBce, ": target of shape ", shape_str(target.shape()),
              " must have the shape of the logits ", shape_str(logits.shape()));
  BceInputs in{contiguous(logits), contiguous(to_dtype(target, logits.dtype())), Tensor()};
  if (pos_weight.defined()) {
    LOUPE_CHECK(is_floating(pos_weight.dtype()), kBce, ": pos_weight must be floating, got ", pos_weight.dtype());
    LOUPE_CHECK(broadcast_shapes(pos_weight.shape(), logits.shape(), kBce) == logits.shape(), kBce,
                ": pos_weight of shape ", shape_str(pos_weight.shape()), " does not broadcast to the logits' shape ",
                shape_str(logits.shape()));
    in.pos_weight = contiguous(expand(to_dtype(pos_weight, logits.dtype()), logits.shape()));
  }
  return in;
}

// softplus(-x) = log(1 + exp(-x)), written so that exp never overflows.
double softplus_neg(double x) { return std::log1p(std::exp(-std::abs(x))) + std::max(-x, 0.0); }

// Calls f(i, x, y, pos_weight) for every element (pos_weight 1 when not given), in parallel.
template <typename T, typename F>
void for_each_bce_element(const BceInputs& in, F f) {
  const T* x = in.x.data<T>();
  const T* y = in.y.data<T>();
  const T* pw = in.pos_weight.defined() ? in.pos_weight.data<T>() : nullptr;
  parallel_for(0, in.x.numel(), cpu::kElementwiseGrain, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      f(i, static_cast<double>(x[i]), static_cast<double>(y[i]), pw ? static_cast<double>(pw[i]) : 1.0);
    }
  });
}

// --- elementwise regression losses ---

void check_pair(const Tensor& input, const Tensor& target, const char* op) {
  LOUPE_CHECK(is_floating(input.dtype()) && is_floating(target.dtype()), op,
              ": expected floating input and target, got ", input.dtype(), " and ", target.dtype());
  LOUPE_CHECK(input.shape() == target.shape(), op, ": input of shape ", shape_str(input.shape()),
              " and target of shape ", shape_str(target.shape()), " differ");
}

Tensor reduce_loss(const Tensor& loss, Reduction reduction) {
  switch (reduction) {
    case Reduction::none: return loss;
    case Reduction::sum: return sum(loss);
    case Reduction::mean: return mean(loss);
  }
  return loss;
}

}  // namespace

Tensor cross_entropy(const Tensor& logits, const Tensor& target, const CrossEntropyOptions& options) {
  return class_loss("cross_entropy", logits, target, options, /*from_logits=*/true);
}

Tensor nll_loss(const Tensor& log_probs, const Tensor& target, const CrossEntropyOptions& options) {
  LOUPE_CHECK(options.label_smoothing == 0.0, "nll_loss: label_smoothing is a cross_entropy option, got ",
              options.label_smoothing);
  return class_loss("nll_loss", log_probs, target, options, /*from_logits=*/false);
}

Tensor cross_entropy_backward(const Tensor& grad, const Tensor& logits, const Tensor& target,
                              const CrossEntropyOptions& options) {
  return class_loss_backward("cross_entropy_backward", grad, logits, target, options, /*from_logits=*/true);
}

Tensor nll_loss_backward(const Tensor& grad, const Tensor& log_probs, const Tensor& target,
                         const CrossEntropyOptions& options) {
  return class_loss_backward("nll_loss_backward", grad, log_probs, target, options, /*from_logits=*/false);
}

// loss = (1 - y) * x + lw * softplus(-x), lw = 1 + (pos_weight - 1) * y: the same value as
// -pos_weight * y * log(sigmoid(x)) - (1 - y) * log(1 - sigmoid(x)), without overflow.
Tensor binary_cross_entropy_with_logits(const Tensor& logits, const Tensor& target, const Tensor& pos_weight,
                                        Reduction reduction) {
  check_same_device(kBce, {logits, target, pos_weight});
  const BceInputs in = bce_inputs(logits, target, pos_weight);
  if (logits.device().is_cuda()) return reduce_loss(cuda::bce_with_logits(in.x, in.y, in.pos_weight), reduction);
  Tensor loss = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  dispatch_floating(logits.dtype(), kBce, [&](auto tag) {
    using T = typename decltype(tag)::type;
    T* out = loss.data<T>();
    for_each_bce_element<T>(in, [&](int64_t i, double x, double y, double pw) {
      const double lw = 1.0 + (pw - 1.0) * y;
      out[i] = static_cast<T>((1.0 - y) * x + lw * softplus_neg(x));
    });
  });
  return reduce_loss(loss, reduction);
}

BceGrads binary_cross_entropy_with_logits_backward(const Tensor& grad, const Tensor& logits, const Tensor& target,
                                                   const Tensor& pos_weight, Reduction reduction, bool need_logits,
                                                   bool need_target) {
  check_same_device("binary_cross_entropy_with_logits_backward", {grad, logits, target, pos_weight});
  const BceInputs in = bce_inputs(logits, target, pos_weight);
  // The per-element gradient g: grad itself, or the 0-d grad spread (and divided for mean).
  Tensor g = reduction == Reduction::mean ? div(grad, static_cast<double>(logits.numel())) : grad;
  g = contiguous(to_dtype(expand(g, logits.shape()), logits.dtype()));
  BceGrads out;
  if (need_logits) out.logits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  if (need_target) out.target = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  if (logits.device().is_cuda()) {
    cuda::bce_with_logits_backward(g, in.x, in.y, in.pos_weight, out.logits, out.target);
    return out;
  }
  dispatch_floating(logits.dtype(), kBce, [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pg = g.data<T>();
    T* dx = need_logits ? out.logits.data<T>() : nullptr;
    T* dy = need_target ? out.target.data<T>() : nullptr;
    for_each_bce_element<T>(in, [&](int64_t i, double x, double y, double pw) {
      const double gi = static_cast<double>(pg[i]);
      if (dx) {
        const double lw = 1.0 + (pw - 1.0) * y;
        const double sigmoid_neg = 1.0 / (1.0 + std::exp(x));  // sigmoid(-x)
        dx[i] = static_cast<T>(gi * ((1.0 - y) - lw * sigmoid_neg));
      }
      if (dy) dy[i] = static_cast<T>(gi * (-x + (pw - 1.0) * softplus_neg(x)));
    });
  });
  return out;
}

Tensor mse_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "mse_loss");
  return reduce_loss(square(sub(input, target)), reduction);
}

Tensor l1_loss(const Tensor& input, const Tensor& target, Reduction reduction) {
  check_pair(input, target, "l1_loss");
  return reduce_loss(abs(sub(input, target)), reduction);
}

// 0.5 * d^2 / beta where |d| < beta, else |d| - 0.5 * beta (d = input - target); beta = 0 is l1.
Tensor smooth_l1_loss(const Tensor& input, const Tensor& target, Reduction reduction, double beta) {
  check_pair(input, target, "smooth_l1_loss");
  LOUPE_CHECK(beta >= 0.0, "smooth_l1_loss: beta must be non-negative, got ", beta);
  const Tensor d = sub(input, target);
  const Tensor ad = abs(d);
  if (beta == 0.0) return reduce_loss(ad, reduction);
  const Tensor quadratic = div(mul(square(d), 0.5), beta);
  const Tensor linear = sub(ad, 0.5 * beta);
  return reduce_loss(where(lt(ad, scalar_like(beta, ad)), quadratic, linear), reduction);
}

}  // namespace loupe::ops
