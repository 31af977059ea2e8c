// GradientReducer: sums the parameter gradients of all ranks after each backward, in buckets whose
// all-reduce starts while backward is still running (the scheme of PyTorch's DDP).
//
// Buckets. The parameters are taken in reverse registration order (the order backward finishes
// them: the last layer's first) and cut into buckets of about `bucket_bytes` (4 MiB by default;
// a bucket holds one dtype and device). Each bucket owns a flat buffer.
// During backward, an autograd gradient-ready hook (autograd/hooks.hpp) copies each parameter's
// final gradient into its bucket's buffer; when a bucket is complete, and every bucket before it
// has started, its all-reduce is started (non-blocking). Every rank therefore starts the same
// collectives in the same order, which MPI and NCCL require. After backward, finish() starts the
// buckets still waiting (those holding parameters this step did not reach get zeros there),
// waits for all of them and writes the sums back into each parameter's .grad.
//
// The reducer sums; it does not divide. Data-parallel training scales each rank's loss by its
// share of the global batch (n_rank / n_global) before backward, so the sum is the gradient of
// the global batch's mean loss, also when the ranks' shards differ in size (nn/training.cpp).
//
//   GradientReducer reducer(model.parameters(), comm);
//   reducer.backward(scaled_loss);   // backward with the hooks, then finish()
//   optimizer.step();
// Tests: tests/distributed/test_communicator.cpp (thread ranks), tests/cli/test_distributed.cpp
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "distributed/communicator.hpp"

namespace loupe::distributed {

constexpr int64_t kDefaultBucketBytes = int64_t{4} << 20;

class GradientReducer {
 public:
  GradientReducer(std::vector<Tensor> parameters, std::shared_ptr<Communicator> comm,
                  int64_t bucket_bytes = kDefaultBucketBytes);

  // backward(loss) with the bucket hooks installed, then finish().
  void backward(const Tensor& loss);
  // Starts what is left, waits for every bucket and writes the summed gradients to .grad.
  void finish();

  // Parameter indices (into the constructor's list) of each bucket, in the order they start.
  std::vector<std::vector<size_t>> bucket_parameters() const;
  // Of the last backward: how many buckets had started before backward returned.
  int64_t buckets_started_during_backward() const { return started_during_backward_; }
  int64_t bucket_count() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> parameters;  // indices into parameters_
    std::vector<int64_t> offsets;    // element offset of each in `flat`
    Tensor flat;                     // (total elements) of the bucket's dtype and device
    int64_t waiting = 0;             // parameters whose gradient has not arrived this step
    std::unique_ptr<Work> work;      // the all-reduce in flight (null before it starts)
  };
  void on_gradient_ready(AutogradMeta& leaf);
  void start_ready_buckets();
  void start(Bucket& bucket);
  void reset();

  std::vector<Tensor> parameters_;
  std::shared_ptr<Communicator> comm_;
  std::vector<Bucket> buckets_;
  std::vector<size_t> bucket_of_;   // per parameter
  std::vector<size_t> slot_of_;     // per parameter: its position in its bucket
  std::vector<bool> arrived_;       // per parameter, this step
  std::unordered_map<const AutogradMeta*, size_t> index_of_;
  size_t next_to_start_ = 0;
  int64_t started_during_backward_ = 0;
};

// Copies rank `root`'s values of each tensor to every rank (parameters and buffers at the start of
// data-parallel training, so that all ranks start from the same model).
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors, int root = 0);

}  // namespace loupe::distributed
