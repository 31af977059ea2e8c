// Normalisation layers. See norm.hpp.
#include "nn/layers/norm.hpp"

#include "distributed/sync_batch_norm.hpp"

namespace loupe::nn {

BatchNorm2d::BatchNorm2d(int64_t num_features, const BatchNormOptions& options)
    : num_features_(num_features), options_(options) {
  LOUPE_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, got ", num_features);
  LOUPE_CHECK(options.eps > 0, "BatchNorm2d: eps must be positive, got ", options.eps);
  if (options.affine) {
    weight = register_parameter("weight", ones({num_features}));
    bias = register_parameter("bias", zeros({num_features}));
  }
  if (options.track_running_stats) {
    running_mean = register_buffer("running_mean", zeros({num_features}));
    running_var = register_buffer("running_var", ones({num_features}));
    num_batches_tracked = register_buffer("num_batches_tracked", zeros({}, DType::i64));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) { return run(x, false); }

Tensor BatchNorm2d::forward_then_relu(const Tensor& x) { return run(x, true); }

Tensor batch_norm_then_relu(BatchNorm2d& norm, Module& relu, const Tensor& x) {
  if (norm.forward_hook_count() == 0 && relu.forward_hook_count() == 0) return norm.forward_then_relu(x);
  return relu(norm(x));
}

Tensor BatchNorm2d::run(const Tensor& x, bool then_relu) {
  LOUPE_CHECK(x.defined() && x.dim() == 4, "BatchNorm2d: expected 4D input (N, C, H, W), got ",
              x.defined() ? shape_str(x.shape()) : "undefined");
  LOUPE_CHECK(x.size(1) == num_features_, "BatchNorm2d: input ", shape_str(x.shape()), " has ", x.size(1),
              " channels, expected ", num_features_);
  if (folded_) {
    LOUPE_CHECK(!is_training(), "BatchNorm2d: this layer was folded into the preceding convolution (an inference "
                                "transform, nn/fold_batch_norm.hpp); a folded model cannot be trained");
    return then_relu ? relu(x) : x;
  }
  const bool tracking = options_.track_running_stats;
  double momentum = options_.momentum;
  if (is_training() && tracking) {
    // The count advances before the update, so the cumulative average's first factor is 1.
    if (num_batches_tracked.device().is_cpu()) {
      int64_t& count = *num_batches_tracked.data<int64_t>();
      count += 1;
      if (momentum < 0) momentum = 1.0 / static_cast<double>(count);
    } else {  // on a GPU: counted there; read back (one sync) only for the cumulative average
      ops::add_(num_batches_tracked, ops::scalar_like(1, num_batches_tracked), 1.0);
      if (momentum < 0) momentum = 1.0 / ops::to_device(num_batches_tracked, Device::cpu()).item();
    }
  }
  if (is_training() && sync_group_ && sync_group_->size() > 1) {
    const Tensor y = distributed::sync_batch_norm(x, tracking ? running_mean : Tensor(),
                                                  tracking ? running_var : Tensor(), weight, bias, momentum,
                                                  options_.eps, *sync_group_);
    return then_relu ? relu(y) : y;
  }
  const bool use_batch_stats = is_training() || !tracking;
  // In training without tracking there are no running tensors to update; in eval with tracking
  // batch_norm reads them.
  auto normalize = then_relu ? batch_norm_relu : batch_norm;
  return normalize(x, tracking ? running_mean : Tensor(), tracking ? running_var : Tensor(), weight, bias,
                   use_batch_stats, momentum, options_.eps);
}

int64_t set_sync_batch_norm(Module& model, std::shared_ptr<distributed::Communicator> group) {
  int64_t count = 0;
  for (auto& [name, module] : model.named_modules()) {
    if (auto* bn = dynamic_cast<BatchNorm2d*>(module)) {
      bn->set_sync_group(group);
      ++count;
    }
  }
  return count;
}

LayerNorm::LayerNorm(Shape normalized_shape, double eps, bool elementwise_affine, bool with_bias)
    : normalized_shape_(std::move(normalized_shape)), eps_(eps) {
  LOUPE_CHECK(!normalized_shape_.empty(), "LayerNorm: normalized_shape must not be empty");
  if (elementwise_affine) {
    weight = register_parameter("weight", ones(normalized_shape_));
    if (with_bias) bias = register_parameter("bias", zeros(normalized_shape_));
  }
}

Tensor LayerNorm::forward(const Tensor& x) { return layer_norm(x, normalized_shape_, weight, bias, eps_); }

RMSNorm::RMSNorm(Shape normalized_shape, double eps, bool elementwise_affine)
    : normalized_shape_(std::move(normalized_shape)), eps_(eps) {
  LOUPE_CHECK(!normalized_shape_.empty() && shape_numel(normalized_shape_) > 0,
              "RMSNorm: normalized_shape must be non-empty and positive, got ", shape_str(normalized_shape_));
  if (elementwise_affine) weight = register_parameter("weight", ones(normalized_shape_));
}

Tensor RMSNorm::forward(const Tensor& x) { return rms_norm(x, normalized_shape_, weight, eps_); }

}  // namespace loupe::nn
