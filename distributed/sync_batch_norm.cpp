// Synchronised batch norm. See sync_batch_norm.hpp.
#include "distributed/sync_batch_norm.hpp"

#include <cmath>

#include "autograd/record.hpp"
#include "tensor/ops.hpp"

namespace loupe::distributed {

namespace {

// (C) -> (1, C, 1, 1) (or (1, C) for 2-D input), to broadcast against x.
Tensor per_channel(const Tensor& v, int64_t dims) {
  Shape shape(static_cast<size_t>(dims), 1);
  shape[1] = v.numel();
  return ops::view(v, shape);
}

ops::Dims reduced_dims(int64_t dims) {
  ops::Dims out{0};
  for (int64_t d = 2; d < dims; ++d) out.push_back(d);
  return out;
}

}  // namespace

Tensor sync_batch_norm(const Tensor& x, const Tensor& running_mean, const Tensor& running_var, const Tensor& weight,
                       const Tensor& bias, double momentum, double eps, Communicator& comm) {
  LOUPE_CHECK(x.defined() && (x.dim() == 4 || x.dim() == 2), "sync_batch_norm: x must be (N, C, H, W) or (N, C), got ",
              x.defined() ? shape_str(x.shape()) : "undefined");
  LOUPE_CHECK(x.dtype() == DType::f32 || x.dtype() == DType::f64, "sync_batch_norm: x must be float32 or float64, got ",
              dtype_name(x.dtype()));
  LOUPE_CHECK(eps > 0, "sync_batch_norm: eps must be positive, got ", eps);
  const int64_t channels = x.size(1);
  for (const Tensor* t : {&running_mean, &running_var, &weight, &bias}) {
    LOUPE_CHECK(!t->defined() || (t->dim() == 1 && t->size(0) == channels), "sync_batch_norm: x ",
                shape_str(x.shape()), " needs per-channel tensors of shape (", channels, "), got ", shape_str(t->shape()));
  }
  const int64_t dims = x.dim();
  const ops::Dims over = reduced_dims(dims);
  Tensor mean, invstd, y;
  {
    NoGradGuard no_grad;
    const Tensor xd = ops::to_dtype(x, DType::f64);
    const double local_count = static_cast<double>(x.numel() / channels);
    // (sum (C), sum of squares (C), count (1)) of this rank, then of all ranks.
    Tensor stats = ops::cat({ops::sum(xd, over), ops::sum(ops::mul(xd, xd), over),
                             ops::to_device(ops::reshape(scalar_tensor(local_count, DType::f64), {1}), x.device())});
    stats = ops::contiguous(stats);
    comm.all_reduce_sum(stats);
    const double n = ops::to_device(ops::narrow(stats, 0, 2 * channels, 1), Device::cpu()).item();
    LOUPE_CHECK(n > 1, "sync_batch_norm: the global batch has ", n, " values per channel; batch statistics need more than one");
    mean = ops::div(ops::narrow(stats, 0, 0, channels), n);
    const Tensor var = ops::clamp(ops::sub(ops::div(ops::narrow(stats, 0, channels, channels), n), ops::mul(mean, mean)),
                                  0.0, NAN);
    invstd = ops::rsqrt(ops::add(var, eps));
    Tensor yd = ops::mul(ops::sub(xd, per_channel(mean, dims)), per_channel(invstd, dims));
    if (weight.defined()) yd = ops::mul(yd, per_channel(ops::to_dtype(weight, DType::f64), dims));
    if (bias.defined()) yd = ops::add(yd, per_channel(ops::to_dtype(bias, DType::f64), dims));
    y = ops::to_dtype(yd, x.dtype());
    if (running_mean.defined()) {
      ops::copy_(running_mean, ops::add(ops::mul(ops::to_dtype(running_mean, DType::f64), 1.0 - momentum),
                                        ops::mul(mean, momentum)));
    }
    if (running_var.defined()) {
      ops::copy_(running_var, ops::add(ops::mul(ops::to_dtype(running_var, DType::f64), 1.0 - momentum),
                                       ops::mul(var, momentum * n / (n - 1.0))));
    }
  }
  if (!autograd::should_record({x, weight, bias})) return y;
  Communicator* group = &comm;
  return autograd::record(
      y, autograd::OpKind::custom, "sync_batch_norm", {x, weight, bias},
      [group, dims, channels](const autograd::Node& node, const Tensor& g_out) -> std::vector<Tensor> {
        const Tensor& x_saved = node.saved[0];
        const Tensor& mean_saved = node.saved[1];
        const Tensor& invstd_saved = node.saved[2];
        const Tensor& w = node.saved[3];
        const ops::Dims over_dims = reduced_dims(dims);
        const Tensor g = ops::to_dtype(g_out, DType::f64);
        const Tensor xhat = ops::mul(ops::sub(ops::to_dtype(x_saved, DType::f64), per_channel(mean_saved, dims)),
                                     per_channel(invstd_saved, dims));
        const Tensor sum_g = ops::sum(g, over_dims);                    // (C), this rank
        const Tensor sum_gx = ops::sum(ops::mul(g, xhat), over_dims);   // (C), this rank
        std::vector<Tensor> grads(3);
        if (node.needs_input_grad(1)) grads[1] = ops::to_dtype(sum_gx, node.inputs()[1].dtype);
        if (node.needs_input_grad(2)) grads[2] = ops::to_dtype(sum_g, node.inputs()[2].dtype);
        if (node.needs_input_grad(0)) {
          Tensor sums = ops::contiguous(ops::cat({sum_g, sum_gx,
                                                  ops::to_device(ops::reshape(scalar_tensor(static_cast<double>(x_saved.numel() / channels), DType::f64), {1}),
                             x_saved.device())}));
          group->all_reduce_sum(sums);
          const double n = ops::to_device(ops::narrow(sums, 0, 2 * channels, 1), Device::cpu()).item();
          const Tensor mean_g = ops::div(ops::narrow(sums, 0, 0, channels), n);
          const Tensor mean_gx = ops::div(ops::narrow(sums, 0, channels, channels), n);
          Tensor scale = invstd_saved;
          if (w.defined()) scale = ops::mul(scale, ops::to_dtype(w, DType::f64));
          const Tensor dx = ops::mul(ops::sub(ops::sub(g, per_channel(mean_g, dims)),
                                              ops::mul(xhat, per_channel(mean_gx, dims))),
                                     per_channel(scale, dims));
          grads[0] = ops::to_dtype(dx, node.inputs()[0].dtype);
        }
        return grads;
      },
      {x, mean, invstd, weight});
}

}  // namespace loupe::distributed
