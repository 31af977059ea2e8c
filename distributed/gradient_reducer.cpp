// GradientReducer. See gradient_reducer.hpp.
#include "distributed/gradient_reducer.hpp"

#include "autograd/engine.hpp"
#include "autograd/grad_mode.hpp"
#include "autograd/hooks.hpp"
#include "tensor/ops.hpp"

namespace loupe::distributed {

namespace {

// The piece of a bucket's flat buffer that holds one parameter, in the parameter's shape.
Tensor slot_view(const Tensor& flat, int64_t offset, const Tensor& parameter) {
  return ops::view(ops::narrow(flat, 0, offset, parameter.numel()), parameter.shape());
}

}  // namespace

GradientReducer::GradientReducer(std::vector<Tensor> parameters, std::shared_ptr<Communicator> comm,
                                 int64_t bucket_bytes)
    : comm_(std::move(comm)) {
  LOUPE_CHECK(comm_ != nullptr, "GradientReducer: no communicator");
  LOUPE_CHECK(bucket_bytes > 0, "GradientReducer: bucket_bytes must be positive, got ", bucket_bytes);
  for (Tensor& p : parameters) {
    LOUPE_CHECK(p.defined(), "GradientReducer: an undefined parameter");
    if (p.requires_grad()) parameters_.push_back(p);
  }
  bucket_of_.resize(parameters_.size());
  slot_of_.resize(parameters_.size());
  arrived_.assign(parameters_.size(), false);
  // Reverse order: backward finishes the last layers first.
  int64_t bytes = 0, elements = 0;
  for (size_t k = parameters_.size(); k-- > 0;) {
    const Tensor& p = parameters_[k];
    const int64_t size = p.numel() * static_cast<int64_t>(dtype_size(p.dtype()));
    const bool fits = !buckets_.empty() && bytes + size <= bucket_bytes &&
                      parameters_[buckets_.back().parameters.front()].dtype() == p.dtype() &&
                      parameters_[buckets_.back().parameters.front()].device() == p.device();
    if (!fits) {
      if (!buckets_.empty()) {
        const Tensor& first = parameters_[buckets_.back().parameters.front()];
        buckets_.back().flat = ops::to_device(zeros({elements}, first.dtype()), first.device());
      }
      buckets_.emplace_back();
      bytes = elements = 0;
    }
    Bucket& bucket = buckets_.back();
    bucket_of_[k] = buckets_.size() - 1;
    slot_of_[k] = bucket.parameters.size();
    bucket.parameters.push_back(k);
    bucket.offsets.push_back(elements);
    bytes += size;
    elements += p.numel();
    index_of_[p.autograd_meta_ptr().get()] = k;
  }
  if (!buckets_.empty()) {
    const Tensor& first = parameters_[buckets_.back().parameters.front()];
    buckets_.back().flat = ops::to_device(zeros({elements}, first.dtype()), first.device());
  }
  reset();
}

void GradientReducer::reset() {
  for (Bucket& bucket : buckets_) {
    bucket.waiting = static_cast<int64_t>(bucket.parameters.size());
    bucket.work.reset();
  }
  arrived_.assign(parameters_.size(), false);
  next_to_start_ = 0;
}

void GradientReducer::start(Bucket& bucket) {
  // A single process has nothing to add: the buffer already holds the sum.
  bucket.work = comm_->size() > 1 ? comm_->all_reduce_sum_async(bucket.flat) : std::make_unique<DoneWork>();
}

void GradientReducer::start_ready_buckets() {
  while (next_to_start_ < buckets_.size() && buckets_[next_to_start_].waiting == 0) {
    start(buckets_[next_to_start_++]);
  }
  // Open MPI advances a non-blocking collective only inside MPI calls: poke the ones in flight.
  for (size_t b = 0; b < next_to_start_; ++b) {
    if (buckets_[b].work) buckets_[b].work->test();
  }
}

void GradientReducer::on_gradient_ready(AutogradMeta& leaf) {
  auto it = index_of_.find(&leaf);
  if (it == index_of_.end() || !leaf.grad) return;  // not one of ours
  const size_t k = it->second;
  if (arrived_[k]) return;
  Bucket& bucket = buckets_[bucket_of_[k]];
  ops::copy_(slot_view(bucket.flat, bucket.offsets[slot_of_[k]], parameters_[k]), *leaf.grad);
  arrived_[k] = true;
  --bucket.waiting;
  start_ready_buckets();
}

void GradientReducer::backward(const Tensor& loss) {
  reset();
  {
    autograd::GradReadyScope scope([this](AutogradMeta& leaf) { on_gradient_ready(leaf); });
    loupe::backward(loss);
  }
  started_during_backward_ = static_cast<int64_t>(next_to_start_);
  finish();
}

void GradientReducer::finish() {
  NoGradGuard no_grad;
  // Parameters backward did not reach (or a call without backward()): their .grad, or zeros.
  for (size_t k = 0; k < parameters_.size(); ++k) {
    if (arrived_[k]) continue;
    Bucket& bucket = buckets_[bucket_of_[k]];
    const Tensor slot = slot_view(bucket.flat, bucket.offsets[slot_of_[k]], parameters_[k]);
    const Tensor grad = parameters_[k].grad();
    if (grad.defined()) {
      ops::copy_(slot, grad);
    } else {
      ops::fill_(slot, 0.0);
    }
    arrived_[k] = true;
    --bucket.waiting;
  }
  start_ready_buckets();
  for (Bucket& bucket : buckets_) {
    bucket.work->wait();
    for (size_t s = 0; s < bucket.parameters.size(); ++s) {
      Tensor& p = parameters_[bucket.parameters[s]];
      p.set_grad(ops::clone(slot_view(bucket.flat, bucket.offsets[s], p)));
    }
  }
  reset();
}

std::vector<std::vector<size_t>> GradientReducer::bucket_parameters() const {
  std::vector<std::vector<size_t>> out;
  for (const Bucket& bucket : buckets_) out.push_back(bucket.parameters);
  return out;
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root) {
  if (comm.size() == 1) return;
  NoGradGuard no_grad;
  for (const Tensor& t : tensors) {
    if (!t.defined()) continue;
    if (t.is_contiguous() && (t.dtype() == DType::f32 || t.dtype() == DType::f64 || t.dtype() == DType::i64)) {
      comm.broadcast(t, root);
    } else {  // through a contiguous float64 copy (a strided view, a bool buffer)
      Tensor copy = ops::contiguous(ops::to_dtype(t, DType::f64));
      comm.broadcast(copy, root);
      ops::copy_(t, ops::to_dtype(copy, t.dtype()));
    }
  }
}

}  // namespace loupe::distributed
