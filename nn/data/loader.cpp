// The threaded data loader. See loader.hpp.
#include "nn/data/loader.hpp"

#include <algorithm>

#include "tensor/ops/creation.hpp"
#include "tensor/ops/join.hpp"
#include "tensor/ops/random_ops.hpp"

namespace loupe::nn {

namespace {

// A generator key that depends only on (seed, a, b): one Philox block of (seed; a, b). The shuffle
// of epoch e uses (e, 0); example i of epoch e uses (e, i + 1), so no two streams share a key.
uint64_t derived_key(uint64_t seed, uint64_t a, uint64_t b) {
  const auto w = philox4x32(seed, a, b);
  return (static_cast<uint64_t>(w[0]) << 32) | w[1];
}

}  // namespace

DataLoader::DataLoader(std::shared_ptr<const Dataset> dataset, LoaderOptions options, Compose transform)
    : dataset_(std::move(dataset)), options_(options), transform_(std::move(transform)) {
  LOUPE_CHECK(dataset_ != nullptr, "DataLoader: the dataset is null");
  LOUPE_CHECK(options_.batch_size > 0, "DataLoader: batch_size must be positive, got ", options_.batch_size);
  LOUPE_CHECK(options_.num_workers >= 0, "DataLoader: num_workers must be >= 0, got ", options_.num_workers);
  LOUPE_CHECK(options_.prefetch_batches > 0, "DataLoader: prefetch_batches must be positive, got ",
              options_.prefetch_batches);
  LOUPE_CHECK(options_.shards >= 1 && options_.shard >= 0 && options_.shard < options_.shards, "DataLoader: shard ",
              options_.shard, " of ", options_.shards, " does not exist (0 <= shard < shards)");
}

DataLoader::~DataLoader() { stop_workers(); }

int64_t DataLoader::batches_per_epoch() const {
  const int64_t n = dataset_->size(), b = options_.batch_size;
  return options_.drop_last ? n / b : (n + b - 1) / b;
}

std::vector<int64_t> DataLoader::epoch_order(int64_t epoch) const {
  const int64_t n = dataset_->size();
  if (!options_.shuffle) {
    std::vector<int64_t> order(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
    return order;
  }
  Generator generator(derived_key(options_.seed, static_cast<uint64_t>(epoch), 0));
  return to_vector<int64_t>(permutation(n, &generator));
}

void DataLoader::start_epoch(int64_t epoch, int64_t start_batch) {
  LOUPE_CHECK(epoch >= 0, "DataLoader: epoch must be >= 0, got ", epoch);
  LOUPE_CHECK(start_batch >= 0 && start_batch <= batches_per_epoch(), "DataLoader: batch ", start_batch,
              " is out of range for an epoch of ", batches_per_epoch(), " batches");
  stop_workers();
  state_ = {epoch, start_batch};
  order_ready_ = false;
}

DataLoader::Built DataLoader::build_batch(int64_t epoch, int64_t b, const std::vector<int64_t>& order) const {
  Built built;
  try {
    const int64_t global_begin = b * options_.batch_size;
    const int64_t global_end = std::min<int64_t>(global_begin + options_.batch_size, static_cast<int64_t>(order.size()));
    // This loader's contiguous part of the global batch (all of it unless sharded).
    const int64_t global_size = global_end - global_begin;
    const int64_t begin = global_begin + global_size * options_.shard / options_.shards;
    const int64_t end = global_begin + global_size * (options_.shard + 1) / options_.shards;
    std::vector<Tensor> images, labels;
    Batch batch;
    for (int64_t pos = begin; pos < end; ++pos) {
      const int64_t index = order[static_cast<size_t>(pos)];
      Example example;
      try {
        example = dataset_->get(index);
      } catch (const Error& error) {
        if (dataset_->on_bad_file() != OnBadFile::skip) throw;
        built.skipped.push_back({dataset_->describe(index), error.what()});
        continue;
      }
      if (!transform_.empty()) {
        Generator generator(derived_key(options_.seed, static_cast<uint64_t>(epoch), static_cast<uint64_t>(index) + 1));
        example.image = transform_(example.image, generator);
      }
      if (!images.empty()) {
        LOUPE_CHECK(example.image.shape() == images.front().shape() && example.image.dtype() == images.front().dtype(),
                    "DataLoader: examples in one batch differ: '", dataset_->describe(batch.indices.front()),
                    "' gives an image of shape ", shape_str(images.front().shape()), " but '",
                    dataset_->describe(index), "' one of shape ", shape_str(example.image.shape()),
                    " (add a resize transform)");
        LOUPE_CHECK(example.label.shape() == labels.front().shape(), "DataLoader: labels in one batch differ: ",
                    shape_str(labels.front().shape()), " vs ", shape_str(example.label.shape()), " at '",
                    dataset_->describe(index), "'");
      }
      images.push_back(example.image);
      labels.push_back(example.label);
      batch.indices.push_back(index);
    }
    if (!images.empty()) {
      batch.images = ops::stack(images, 0);
      batch.labels = ops::stack(labels, 0);
      built.batch = std::move(batch);
    }
  } catch (...) {
    built.error = std::current_exception();
  }
  return built;
}

void DataLoader::take_skipped(const Built& built) {
  for (const auto& s : built.skipped) {
    if (skipped_files_.insert(s.file).second) skipped_.push_back(s);
  }
}

std::optional<Batch> DataLoader::next() {
  const int64_t total = batches_per_epoch();
  if (!order_ready_) {
    order_ = epoch_order(state_.epoch);
    order_ready_ = true;
  }
  while (state_.batch < total) {
    Built built;
    if (options_.num_workers == 0) {
      built = build_batch(state_.epoch, state_.batch, order_);
    } else {
      if (workers_.empty()) start_workers();
      std::unique_lock<std::mutex> lock(mutex_);
      ready_cv_.wait(lock, [&] { return ready_.count(state_.batch) != 0; });
      built = std::move(ready_.at(state_.batch));
      ready_.erase(state_.batch);
      next_hand_ = state_.batch + 1;
      lock.unlock();
      work_cv_.notify_all();
    }
    ++state_.batch;
    take_skipped(built);
    if (built.error) std::rethrow_exception(built.error);
    if (built.batch) return std::move(built.batch);
  }
  // End of the epoch: the next call runs the following one.
  stop_workers();
  state_ = {state_.epoch + 1, 0};
  order_ready_ = false;
  return std::nullopt;
}

void DataLoader::start_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = false;
    ready_.clear();
    next_claim_ = state_.batch;
    next_hand_ = state_.batch;
  }
  for (int w = 0; w < options_.num_workers; ++w) workers_.emplace_back([this, epoch = state_.epoch] { worker_loop(epoch); });
}

void DataLoader::stop_workers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& worker : workers_) worker.join();
  workers_.clear();
  std::lock_guard<std::mutex> lock(mutex_);
  ready_.clear();
}

void DataLoader::worker_loop(int64_t epoch) {
  // order_ and the options do not change while workers run (start_epoch and the
  // end of an epoch stop them first), so they are read without the lock.
  const int64_t total = batches_per_epoch();
  const int64_t look_ahead = static_cast<int64_t>(options_.num_workers) * options_.prefetch_batches;
  for (;;) {
    int64_t b = 0;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      work_cv_.wait(lock, [&] { return stop_ || (next_claim_ < total && next_claim_ < next_hand_ + look_ahead); });
      if (stop_) return;
      b = next_claim_++;
    }
    Built built = build_batch(epoch, b, order_);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
      ready_.emplace(b, std::move(built));
    }
    ready_cv_.notify_all();
  }
}

}  // namespace loupe::nn
