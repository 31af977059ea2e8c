// Resuming a training run from a checkpoint is bit-exact on the CPU: N steps straight give the same
// bytes as N/2 steps, a checkpoint, fresh objects loaded from it and N/2 more (nn/training.hpp).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>

#include "nn/layers/layers.hpp"
#include "nn/training.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// A tiny CNN with every kind of state a real model has: conv weights, batch-norm running stats,
// dropout drawing from a generator, a linear head.   (N, 1, 6, 6) -> (N, 3)
std::shared_ptr<nn::Module> tiny_model(Generator* generator) {
  return std::make_shared<nn::Sequential>(std::vector<std::shared_ptr<nn::Module>>{
      std::make_shared<nn::Conv2d>(1, 4, 3, nn::Conv2dOptions{}, generator), std::make_shared<nn::BatchNorm2d>(4),
      std::make_shared<nn::ReLU>(), std::make_shared<nn::AdaptiveAvgPool2d>(1), std::make_shared<nn::Flatten>(),
      std::make_shared<nn::Dropout>(0.3, generator), std::make_shared<nn::Linear>(4, 3, true, generator)});
}

std::shared_ptr<nn::Dataset> tiny_data(bool multilabel) {
  Generator g(11);
  Tensor images = normal({22, 1, 6, 6}, 0.0, 1.0, DType::f32, &g);
  Tensor labels = multilabel ? bernoulli({22, 3}, 0.5, DType::f32, &g) : randint(0, 3, {22}, &g);
  return std::make_shared<nn::TensorDataset>(images, labels);
}

struct Run {
  Generator generator;
  std::shared_ptr<nn::Module> model;
  std::shared_ptr<nn::Optimizer> optimizer;
  std::shared_ptr<nn::DataLoader> loader;
  std::unique_ptr<nn::Trainer> trainer;

  Run(const std::string& optimizer_name, bool multilabel, uint64_t init_seed) : generator(init_seed) {
    model = tiny_model(&generator);
    nn::OptimizerConfig config;
    config.name = optimizer_name;
    config.lr = 0.05;
    config.weight_decay = 1e-3;
    config.nesterov = optimizer_name == "sgd";
    optimizer = nn::make_optimizer(config, model->parameters());
    nn::LoaderOptions lo;
    lo.batch_size = 4;
    lo.shuffle = true;
    lo.seed = 5;
    lo.num_workers = 2;
    // A random transform too, so the per-example generators must line up after the resume.
    loader = std::make_shared<nn::DataLoader>(tiny_data(multilabel), lo, nn::Compose({nn::transforms::random_hflip()}));
    nn::TrainOptions to;
    to.multilabel = multilabel;
    to.clip = 0.5;
    to.schedule.kind = nn::ScheduleKind::cosine;
    to.schedule.base_lr = config.lr;
    to.schedule.warmup = 3;
    to.schedule.total = 20;
    trainer = std::make_unique<nn::Trainer>(model, optimizer, loader, to, &generator);
  }

  void steps(int64_t n) {
    const int64_t target = trainer->global_step() + n;
    while (trainer->global_step() < target) trainer->train_epoch({}, target - trainer->global_step());
  }
};

nn::ModelInfo tiny_info() {
  nn::ModelInfo info;
  info.model = "tiny";
  info.num_classes = 3;
  info.in_channels = 1;
  info.image_size = 6;
  info.labels = {"a", "b", "c"};
  return info;
}

bool same_bytes(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape() || a.dtype() != b.dtype()) return false;
  const Tensor ca = ops::contiguous(a), cb = ops::contiguous(b);
  return std::memcmp(ca.raw_data(), cb.raw_data(), static_cast<size_t>(ca.numel()) * dtype_size(ca.dtype())) == 0;
}

void check_same_state(Run& a, Run& b) {
  const auto sa = a.model->state_dict(), sb = b.model->state_dict();
  REQUIRE(sa.size() == sb.size());
  for (const auto& named : sa) {
    const std::string& name = named.first;  // not a structured binding: doctest's macros capture it
    const Tensor& tensor = named.second;
    INFO("model tensor " << name);
    CHECK(same_bytes(tensor, sb.at(name)));
  }
  const auto oa = a.optimizer->state_dict(), ob = b.optimizer->state_dict();
  REQUIRE(oa.size() == ob.size());
  for (const auto& named : oa) {
    const std::string& name = named.first;  // not a structured binding: doctest's macros capture it
    const Tensor& tensor = named.second;
    INFO("optimizer tensor " << name);
    CHECK(same_bytes(tensor, ob.at(name)));
  }
  CHECK(a.trainer->global_step() == b.trainer->global_step());
  CHECK(a.loader->state().epoch == b.loader->state().epoch);
  CHECK(a.loader->state().batch == b.loader->state().batch);
  CHECK(a.generator.offset() == b.generator.offset());
}

void check_resume(const std::string& optimizer_name, bool multilabel, int64_t first, int64_t second) {
  ScratchDir dir("resume");
  Run straight(optimizer_name, multilabel, 1);
  straight.steps(first + second);

  Run before(optimizer_name, multilabel, 1);
  before.steps(first);
  before.trainer->save_checkpoint(dir.file("mid.safetensors"), tiny_info());
  // Fresh objects, initialised differently: everything must come from the file.
  Run after(optimizer_name, multilabel, 99);
  after.trainer->load_checkpoint(nn::read_checkpoint(dir.file("mid.safetensors")));
  after.steps(second);
  check_same_state(straight, after);
  // And the two continue to agree (the epoch totals and the loader as well).
  straight.steps(3);
  after.steps(3);
  check_same_state(straight, after);
}

}  // namespace

TEST_CASE("resume: N steps straight equal N/2, checkpoint, reload into fresh objects, N/2 more (byte for byte)") {
  // 22 examples in batches of 4: 6 batches per epoch, so 7 + 7 steps cross an epoch boundary and
  // the checkpoint falls mid-epoch.
  SUBCASE("adam, single-label") { check_resume("adam", false, 7, 7); }
  SUBCASE("adamw, multilabel") { check_resume("adamw", true, 6, 5); }
  SUBCASE("sgd with nesterov momentum") { check_resume("sgd", false, 4, 9); }
}

TEST_CASE("resume: the checkpoint keeps the epoch's running totals and refuses another optimiser") {
  ScratchDir dir("resume-totals");
  Run a("adam", false, 1);
  a.steps(3);
  const nn::EpochStats mid = a.trainer->train_epoch({}, 0);
  a.trainer->save_checkpoint(dir.file("c.safetensors"), tiny_info());
  const nn::Checkpoint checkpoint = nn::read_checkpoint(dir.file("c.safetensors"));
  CHECK(checkpoint.metadata.at("train.global_step") == "3");
  CHECK(checkpoint.metadata.at("train.loader_batch") == "3");
  CHECK(checkpoint.metadata.at("train.epoch_images") == "12");
  CHECK(checkpoint.tensors.count("optimizer.exp_avg.0") == 1);

  Run b("adam", false, 2);
  b.trainer->load_checkpoint(checkpoint);
  const nn::EpochStats whole_b = b.trainer->train_epoch();
  const nn::EpochStats whole_a = a.trainer->train_epoch();
  CHECK(whole_b.images == 22);
  CHECK(whole_a.loss == whole_b.loss);
  CHECK(mid.images == 12);
  // The epoch's time adds up over the calls that made it (here: the steps before the checkpoint).
  CHECK(whole_a.seconds >= mid.seconds);
  CHECK(checkpoint.metadata.count("train.epoch_seconds") == 1);

  Run sgd("sgd", false, 1);
  CHECK_THROWS_WITH_AS(sgd.trainer->load_checkpoint(checkpoint, "c"), doctest::Contains("adam"), Error);
}

TEST_CASE("classification_loss: cross-entropy from classes or one-hot rows, BCE for multilabel") {
  const Tensor logits = from_values(std::vector<double>{1.0, 2.0, 0.5, -1.0, 0.0, 3.0}, {2, 3}, DType::f64);
  const Tensor classes = from_values(std::vector<double>{1, 2}, {2}, DType::i64);
  const Tensor one_hot = from_values(std::vector<double>{0, 1, 0, 0, 0, 1}, {2, 3}, DType::f64);
  const double ce = nn::classification_loss(logits, classes, false).item();
  CHECK(nn::classification_loss(logits, one_hot, false).item() == doctest::Approx(ce));
  // By hand: mean of -log softmax at the target.
  const double r0 = -(2.0 - std::log(std::exp(1.0) + std::exp(2.0) + std::exp(0.5)));
  const double r1 = -(3.0 - std::log(std::exp(-1.0) + std::exp(0.0) + std::exp(3.0)));
  CHECK(ce == doctest::Approx((r0 + r1) / 2));
  double bce = 0;
  const std::vector<double> x{1.0, 2.0, 0.5, -1.0, 0.0, 3.0}, y{0, 1, 0, 0, 0, 1};
  for (size_t i = 0; i < 6; ++i) bce += std::log1p(std::exp(-std::abs(x[i]))) + std::max(x[i], 0.0) - x[i] * y[i];
  CHECK(nn::classification_loss(logits, one_hot, true).item() == doctest::Approx(bce / 6));
  CHECK_THROWS_AS(nn::classification_loss(logits, classes, true), Error);
}

}  // namespace loupe::test
