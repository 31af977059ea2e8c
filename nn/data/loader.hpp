// DataLoader: turns a Dataset into batches (N, C, H, W) + labels (N, ...), optionally shuffled,
// transformed and loaded by worker threads ahead of the consumer.
//
// Determinism. Everything random is a pure function of (seed, epoch, ...), never of timing:
//   - the order of epoch e is permutation(n) drawn from a Philox generator keyed by (seed, e);
//   - example i in epoch e is transformed with its own generator keyed by (seed, e, i);
//   - batch b holds positions [b * batch_size, (b + 1) * batch_size) of that order;
//   - workers claim whole batches, and next() hands them out strictly in batch order;
//   - with shards = N (data-parallel training, one loader per rank), shard r gets only positions
//     [begin + n*r/N, begin + n*(r+1)/N) of each batch of n: the shards of ranks 0..N-1, in rank
//     order, are exactly the batch one unsharded loader gives (a shard may be empty when n < N).
// So the content and order of the batches are the same for any num_workers, and a run can resume
// mid-epoch from a checkpoint that saved state() (the epoch and the next batch).
//
// Bounded look-ahead: at most num_workers * prefetch_batches batches are decoded ahead of the one
// next() hands out, so memory stays bounded however slow the consumer is.
//
// Bad files: when the dataset's policy is OnBadFile::skip, an example whose get() throws
// loupe::Error is left out of its batch (the batch is smaller; an all-bad batch is passed over)
// and listed in skipped(). Under OnBadFile::stop the error is rethrown by next() at that batch.
//
// Usage:
//   DataLoader loader(dataset, {.batch_size = 8, .shuffle = true, .seed = 42, .num_workers = 4}, transform);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch) {
//     loader.start_epoch(epoch);
//     while (auto batch = loader.next()) train_step(batch->images, batch->labels);
//   }
// Tests: tests/nn/data/test_loader.cpp
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>
#include <vector>

#include "nn/data/dataset.hpp"
#include "nn/data/transforms.hpp"

namespace loupe::nn {

struct LoaderOptions {
  int64_t batch_size = 1;
  bool shuffle = false;
  uint64_t seed = 0;  // shuffling and random transforms (e.g. a Generator's seed())
  int num_workers = 0;  // 0: next() loads each batch itself
  bool drop_last = false;  // leave out a last batch smaller than batch_size
  int64_t prefetch_batches = 2;  // per worker
  int shard = 0;   // this loader's part of every batch (see above)
  int shards = 1;
};

struct Batch {
  Tensor images;  // (N, C, H, W): the examples' images stacked along a new first dim
  Tensor labels;  // (N,) for class indices, (N, K) for multi-hot labels
  std::vector<int64_t> indices;  // the dataset index of each row
};

// Where the loader is: the batch next() hands out next is batch `batch` of epoch `epoch`.
struct LoaderState {
  int64_t epoch = 0;
  int64_t batch = 0;
};

class DataLoader {
 public:
  DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options = {}, Compose transform = {});
  ~DataLoader();
  DataLoader(const DataLoader&) = delete;
  DataLoader& operator=(const DataLoader&) = delete;

  // Batches in one epoch (the last one partial unless drop_last).
  int64_t batches_per_epoch() const;
  // Starts epoch `epoch` at batch `start_batch` (0 for a fresh epoch, or where a checkpoint left off).
  void start_epoch(int64_t epoch, int64_t start_batch = 0);
  // The next batch, or nullopt at the end of the epoch; after that the state is (epoch + 1, 0), so
  // calling next() again runs the following epoch.
  std::optional<Batch> next();

  LoaderState state() const { return state_; }
  void set_state(LoaderState state) { start_epoch(state.epoch, state.batch); }

  // Dataset indices in the order epoch `epoch` visits them (a permutation when shuffling).
  std::vector<int64_t> epoch_order(int64_t epoch) const;
  // Examples left out so far under OnBadFile::skip, each file once, in the order met.
  const std::vector<SkippedFile>& skipped() const { return skipped_; }
  const Dataset& dataset() const { return *dataset_; }

 private:
  struct Built {
    std::optional<Batch> batch;         // empty when every example in it was skipped
    std::vector<SkippedFile> skipped;
    std::exception_ptr error;
  };
  Built build_batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order) const;
  void start_workers();
  void stop_workers();
  void worker_loop(int64_t epoch);
  void take_skipped(const Built& built);

  std::shared_ptr<const Dataset> dataset_;
  LoaderOptions options_;
  Compose transform_;
  LoaderState state_;
  std::vector<int64_t> order_;  // of state_.epoch
  bool order_ready_ = false;
  std::vector<SkippedFile> skipped_;
  std::set<std::string> skipped_files_;

  // Worker side (guarded by mutex_).
  std::vector<std::thread> workers_;
  std::mutex mutex_;
  std::condition_variable work_cv_;   // workers wait for room or stop
  std::condition_variable ready_cv_;  // the consumer waits for its batch
  std::map<int64_t, Built> ready_;
  int64_t next_claim_ = 0;
  int64_t next_hand_ = 0;  // mirrors state_.batch for the workers
  bool stop_ = false;
};

}  // namespace loupe::nn
