// Data parallelism inside the test program, without mpirun: the loader's shards and the Trainer
// on thread ranks (distributed/thread_group.hpp).
//   - shards r = 0..N-1 of a loader, in rank order, are the unsharded loader's batches (also the
//     uneven last one);
//   - 2 Trainers on 2 thread ranks, each with its shard and synchronised batch norm, take the same
//     steps as 1 Trainer on the whole batches: same losses and parameters (float tolerance), and
//     both ranks hold identical parameters.
#include <doctest/doctest.h>

#include <mutex>

#include "distributed/thread_group.hpp"
#include "nn/layers/norm.hpp"
#include "nn/training.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

std::shared_ptr<nn::Dataset> tiny_images(int64_t n) {
  Tensor images = random_tensor({n, 1, 8, 8}, DType::f32, 0, 1, 31);
  Tensor labels = random_indices({n}, 0, 3, 32);
  return std::make_shared<nn::TensorDataset>(images, labels);
}

nn::ModelInfo tiny_resnet() {
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 3;
  info.in_channels = 1;
  info.image_size = 8;
  info.small_input = true;
  info.width = 4;
  return info;
}

}  // namespace

TEST_CASE("loader shards: the ranks' parts of every batch, in rank order, are the unsharded batch") {
  auto dataset = tiny_images(11);
  nn::LoaderOptions options{.batch_size = 4, .shuffle = true, .seed = 5};
  nn::DataLoader whole(dataset, options);
  for (int shards : {2, 3}) {
    std::vector<std::unique_ptr<nn::DataLoader>> parts;
    for (int r = 0; r < shards; ++r) {
      nn::LoaderOptions o = options;
      o.shard = r;
      o.shards = shards;
      parts.push_back(std::make_unique<nn::DataLoader>(dataset, o));
    }
    whole.start_epoch(1);
    for (auto& part : parts) part->start_epoch(1);
    while (auto batch = whole.next()) {
      std::vector<int64_t> joined;
      for (auto& part : parts) {
        auto piece = part->next();
        REQUIRE(piece.has_value());
        joined.insert(joined.end(), piece->indices.begin(), piece->indices.end());
      }
      CHECK(joined == batch->indices);  // 4, 4, 3 images: the last batch is split 1/1/1 or 1/2
    }
  }
  nn::LoaderOptions bad = options;
  bad.shard = 2;
  bad.shards = 2;
  CHECK_THROWS_WITH_AS(nn::DataLoader(dataset, bad), doctest::Contains("shard 2 of 2"), Error);
}

TEST_CASE("Trainer on 2 thread ranks with synchronised batch norm takes the steps of 1 Trainer") {
  auto dataset = tiny_images(24);
  const nn::ModelInfo info = tiny_resnet();
  auto make = [&](int rank, int ranks, std::shared_ptr<distributed::Communicator> comm, std::vector<double>* losses) {
    Generator generator(9);
    auto model = nn::build_model(info, &generator);
    if (comm) nn::set_sync_batch_norm(*model, comm);
    nn::OptimizerConfig config;
    config.name = "sgd";
    config.lr = 0.01;
    auto optimizer = nn::make_optimizer(config, model->parameters());
    nn::LoaderOptions o{.batch_size = 8, .shuffle = true, .seed = 3};
    o.shard = rank;
    o.shards = ranks;
    auto loader = std::make_shared<nn::DataLoader>(dataset, o);
    nn::TrainOptions options;
    options.schedule.base_lr = config.lr;
    options.communicator = comm;
    options.bucket_bytes = 4096;  // several buckets even for this small model
    nn::Trainer trainer(model, optimizer, loader, options, &generator);
    trainer.train_epoch([&](const nn::StepInfo& s) { losses->push_back(s.loss); });
    trainer.train_epoch([&](const nn::StepInfo& s) { losses->push_back(s.loss); });
    return model->named_parameters();
  };
  std::vector<double> reference_losses;
  const auto reference = make(0, 1, nullptr, &reference_losses);
  std::mutex mutex;
  std::vector<std::vector<double>> losses(2);
  std::vector<nn::NamedTensors> results(2);
  distributed::run_thread_group(2, [&](distributed::Communicator& comm) {
    std::vector<double> mine;
    auto parameters = make(comm.rank(), 2, std::shared_ptr<distributed::Communicator>(&comm, [](auto*) {}), &mine);
    std::lock_guard<std::mutex> lock(mutex);
    losses[comm.rank()] = mine;
    results[comm.rank()] = parameters;
  });
  REQUIRE(reference_losses.size() == 6);
  for (int r = 0; r < 2; ++r) {
    REQUIRE(losses[r].size() == reference_losses.size());
    for (size_t i = 0; i < losses[r].size(); ++i) CHECK(losses[r][i] == doctest::Approx(reference_losses[i]).epsilon(1e-5));
    REQUIRE(results[r].size() == reference.size());
    for (size_t k = 0; k < reference.size(); ++k) {
      CHECK(check_close(results[r][k].second, reference[k].second, 1e-5, 1e-4, reference[k].first));
      CHECK(max_abs_diff(results[r][k].second, results[0][k].second) == 0.0);  // the replicas are identical
    }
  }
}

}  // namespace loupe::test
