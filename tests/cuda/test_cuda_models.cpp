// Whole models on the GPU against the same models on the CPU: Module::to, forward and backward of
// zoo models in training and eval mode, training steps with SGD and Adam, the Trainer fed from
// CPU batches, and every attribution method. The cases skip without a GPU; the device-free
// bookkeeping (Tensor::set_data, Module::device) is tested in tests/nn/models/test_module.cpp.
//
// Tolerances: whole networks in float32 sum in different orders on the two devices (cuDNN picks
// its own algorithms), so results are compared by the largest error relative to the largest
// |value| of the CPU result: 1e-4 for forward outputs and gradients, 1e-3 after several
// optimiser steps, 1e-3 for attributions.
#include <doctest/doctest.h>

#include <memory>

#include "explain/explain.hpp"
#include "nn/layers/layers.hpp"
#include "nn/models/zoo.hpp"
#include "nn/optim/optimizer.hpp"
#include "nn/training.hpp"
#include "tensor/cuda/backend.hpp"
#include "tensor/ops/device.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// max |a - b| / max |b|, with a copied to the CPU.
double relative_error(const Tensor& a, const Tensor& b) {
  const auto va = values(cpu(a)), vb = values(cpu(b));
  REQUIRE(va.size() == vb.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    err = std::max(err, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return scale > 0 ? err / scale : err;
}

void check_relative(const Tensor& gpu, const Tensor& cpu, double tol, const std::string& what) {
  const double err = relative_error(gpu, cpu);
  CHECK_MESSAGE(err <= tol, what << ": GPU differs from CPU by " << err << " of its scale (allowed " << tol << ")");
}

// A small ResNet18 (3x3 stem, width 8) for 16x16 inputs, the same weights for every call.
std::shared_ptr<nn::Module> small_resnet(uint64_t seed, int64_t classes = 5) {
  Generator gen(seed);
  return nn::resnet18({.num_classes = classes, .in_channels = 3, .generator = &gen}, {.small_input = true, .width = 8});
}

// Copies of one model on the CPU and on the GPU.
struct Twins {
  std::shared_ptr<nn::Module> cpu, gpu;
};
Twins twins(uint64_t seed) {
  Twins t{small_resnet(seed), small_resnet(seed)};
  t.gpu->to(kGpu);
  return t;
}

}  // namespace

TEST_CASE("cuda: Module::to moves parameters, gradients and buffers in place and back" * doctest::skip(kNoGpu)) {
  auto model = small_resnet(2);
  const Tensor first = model->parameters()[0];  // a handle held outside the model, as optimisers do
  const nn::StateDict before = model->state_dict();
  std::map<std::string, std::vector<double>> saved;
  for (const auto& [name, t] : before) saved[name] = values(t);
  backward(sum((*model)(random_tensor({2, 3, 16, 16}))));
  model->to(kGpu);
  CHECK(model->device() == kGpu);
  CHECK(first.device() == kGpu);
  CHECK(first.grad().device() == kGpu);
  for (const auto& [name, t] : model->named_state()) CHECK_MESSAGE(t.device() == kGpu, name);
  model->to(Device::cpu());
  CHECK(first.device() == Device::cpu());
  // Running statistics moved with the model (a training forward updated them before the move).
  for (const auto& [name, t] : model->state_dict()) CHECK_MESSAGE(values(t) == values(before.at(name)), name);
}

TEST_CASE("cuda: a ResNet's forward and backward on the GPU match the CPU, training and eval" *
          doctest::skip(kNoGpu)) {
  for (const bool training : {true, false}) {
    CAPTURE(training);
    Twins m = twins(3);
    m.cpu->train(training);
    m.gpu->train(training);
    const Tensor x = random_tensor({4, 3, 16, 16});
    const Tensor y_cpu = (*m.cpu)(x);
    const Tensor y_gpu = (*m.gpu)(ops::to_device(x, kGpu));
    CHECK(y_gpu.device() == kGpu);
    check_relative(y_gpu, y_cpu, 1e-4, "logits");
    backward(sum(mul(y_cpu, y_cpu)));
    backward(sum(mul(y_gpu, y_gpu)));
    const auto p_cpu = m.cpu->named_parameters(), p_gpu = m.gpu->named_parameters();
    for (size_t i = 0; i < p_cpu.size(); ++i) {
      check_relative(p_gpu[i].second.grad(), p_cpu[i].second.grad(), 1e-4, "grad of " + p_cpu[i].first);
    }
    // Batch norm's running statistics were updated the same way.
    const auto s_cpu = m.cpu->named_buffers(), s_gpu = m.gpu->named_buffers();
    for (size_t i = 0; i < s_cpu.size(); ++i) check_relative(s_gpu[i].second, s_cpu[i].second, 1e-5, s_cpu[i].first);
  }
}

TEST_CASE("cuda: training steps with SGD and Adam on the GPU follow the CPU's" * doctest::skip(kNoGpu)) {
  for (const std::string optimizer : {"sgd", "adam"}) {
    CAPTURE(optimizer);
    Twins m = twins(4);
    nn::OptimizerConfig config;
    config.name = optimizer;
    config.lr = optimizer == "sgd" ? 0.05 : 1e-3;
    config.momentum = 0.9;
    config.weight_decay = 1e-4;
    auto opt_cpu = nn::make_optimizer(config, m.cpu->parameters());
    auto opt_gpu = nn::make_optimizer(config, m.gpu->parameters());
    Generator gen(5);
    for (int step = 0; step < 3; ++step) {
      const Tensor x = uniform({8, 3, 16, 16}, -1, 1, DType::f32, &gen);
      const Tensor labels = randint(0, 5, {8}, &gen);
      for (auto [model, opt, device] : {std::tuple{m.cpu, opt_cpu, Device::cpu()}, std::tuple{m.gpu, opt_gpu, kGpu}}) {
        opt->zero_grad();
        backward(cross_entropy((*model)(ops::to_device(x, device)), ops::to_device(labels, device)));
        opt->step();
      }
    }
    const auto p_cpu = m.cpu->named_parameters(), p_gpu = m.gpu->named_parameters();
    for (size_t i = 0; i < p_cpu.size(); ++i) {
      CHECK(p_gpu[i].second.device() == kGpu);
      check_relative(p_gpu[i].second, p_cpu[i].second, 1e-3, p_cpu[i].first + " after 3 steps");
    }
  }
}

TEST_CASE("cuda: the Trainer and predict run a GPU model on the loader's CPU batches" * doctest::skip(kNoGpu)) {
  Generator gen(6);
  auto data = std::make_shared<nn::TensorDataset>(uniform({12, 3, 16, 16}, 0, 1, DType::f32, &gen),
                                                  randint(0, 5, {12}, &gen));
  auto loader = std::make_shared<nn::DataLoader>(data, nn::LoaderOptions{.batch_size = 4});
  std::shared_ptr<nn::Module> model = small_resnet(7);
  model->to(kGpu);
  nn::OptimizerConfig config;
  config.name = "sgd";
  config.lr = 0.01;
  nn::TrainOptions options;
  options.schedule.base_lr = 0.01;
  nn::Trainer trainer(model, nn::make_optimizer(config, model->parameters()), loader, options);
  const nn::EpochStats stats = trainer.train_epoch();
  CHECK(stats.batches == 3);
  CHECK(std::isfinite(stats.loss));
  const nn::Predictions p = nn::predict(*model, *loader, /*multilabel=*/false);
  CHECK(p.probabilities.device() == Device::cpu());
  CHECK(p.probabilities.shape() == Shape{12, 5});
  CHECK(std::isfinite(p.loss));
  CHECK(model->device() == kGpu);
}

TEST_CASE("cuda: every attribution method on a ResNet gives the CPU's result on the GPU" * doctest::skip(kNoGpu)) {
  namespace ex = explain;
  Twins m = twins(8);
  m.cpu->eval();
  m.gpu->eval();
  const Tensor x = random_tensor({2, 3, 16, 16});
  const auto query = [&](const std::shared_ptr<nn::Module>& model, Device device) {
    return ex::Query{ex::as_forward(*model), {ops::to_device(x, device)}, ex::Target::per_row({1, 3}), ex::Output::logit};
  };
  const auto both = [&](const std::string& name, const std::function<ex::Attribution(const ex::Query&)>& method) {
    const ex::Attribution a_cpu = method(query(m.cpu, Device::cpu()));
    const ex::Attribution a_gpu = method(query(m.gpu, kGpu));
    CHECK_MESSAGE(a_gpu.attributions[0].device() == kGpu, name);
    check_relative(a_gpu.attributions[0], a_cpu.attributions[0], 1e-3, name);
    if (a_cpu.delta.defined()) {
      // The delta is a small difference of two sums (attributions, score difference), so its
      // rounding is that of the sums: compared on their scale, not on its own.
      const Tensor a = a_cpu.attributions[0];
      const auto sums = values(ops::sum(ops::reshape(a, {a.size(0), -1}), {1}));
      double scale = 0;
      for (double v : sums) scale = std::max(scale, std::abs(v));
      const auto dg = values(cpu(a_gpu.delta)), dc = values(a_cpu.delta);
      for (size_t i = 0; i < dc.size(); ++i) {
        CHECK_MESSAGE(std::abs(dg[i] - dc[i]) <= 1e-3 * scale + 1e-6,
                      name << " delta of row " << i << ": GPU " << dg[i] << ", CPU " << dc[i] << " (sums up to " << scale << ")");
      }
    }
  };
  both("saliency", [](const ex::Query& q) { return ex::saliency(q); });
  both("input x gradient", [](const ex::Query& q) { return ex::input_x_gradient(q); });
  both("guided backprop", [](const ex::Query& q) { return ex::guided_backprop(q); });
  both("deconvolution", [](const ex::Query& q) { return ex::deconvolution(q); });
  both("integrated gradients", [](const ex::Query& q) {
    return ex::integrated_gradients(q, {.n_steps = 8, .internal_batch_size = 5, .return_convergence_delta = true});
  });
  both("deeplift", [](const ex::Query& q) { return ex::deeplift(q, {.return_convergence_delta = true}); });
  both("deeplift with a CPU baseline", [&](const ex::Query& q) {
    ex::Query with = q;
    with.baselines = {ex::Baseline(full({1, 3, 16, 16}, 0.25))};
    return ex::deeplift(with);
  });
  // The noise comes from the same Philox numbers on both devices.
  both("smoothgrad", [](const ex::Query& q) {
    Generator gen(9);
    ex::NoiseTunnelOptions options;
    options.n_samples = 4;
    options.internal_batch_size = 3;
    options.generator = &gen;
    return ex::noise_tunnel(q, [](const ex::Query& inner) { return ex::saliency(inner); }, options);
  });
}

TEST_CASE("cuda: every zoo model's forward and input gradient on the GPU match the CPU" * doctest::skip(kNoGpu)) {
  // The smallest inputs each architecture takes; eval mode (batch norm from running statistics).
  const std::pair<const char*, int64_t> models[] = {{"resnet18", 32},     {"resnet34", 32},
                                                    {"densenet121", 32},  {"densenet161", 32},
                                                    {"inception_v3", 75}, {"inception_resnet_v2", 75}};
  for (const auto& [name, size] : models) {
    CAPTURE(name);
    Generator gen(10);
    auto cpu_model = nn::make_model(name, 4, 3, &gen);
    Generator same(10);
    auto gpu_model = nn::make_model(name, 4, 3, &same);
    gpu_model->to(kGpu);
    cpu_model->eval();
    gpu_model->eval();
    const Tensor x = random_tensor({1, 3, size, size});
    const auto query = [&](nn::Module& model, Device device) {
      return explain::Query{explain::as_forward(model), {ops::to_device(x, device)}, explain::Target(2)};
    };
    const explain::Attribution cpu = explain::saliency(query(*cpu_model, Device::cpu()), {.absolute = false});
    const explain::Attribution gpu = explain::saliency(query(*gpu_model, kGpu), {.absolute = false});
    check_relative(gpu.attributions[0], cpu.attributions[0], 1e-3, std::string(name) + " input gradient");
  }
}

}  // namespace loupe::test
