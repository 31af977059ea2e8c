// The coalition and surrogate methods (feature ablation, LIME, C-LIME, KernelSHAP sampled and
// exact, Shapley value sampling) on the GPU against the CPU with the same seed, on a small CNN
// (a ResNet18 of width 8 on 16x16 inputs). Coalitions and noise come from the same Philox
// numbers on both devices, so only float32 rounding differs: attributions agree to 1e-3 of the
// largest |value| (surrogate fits amplify the score differences a little). Skips without a GPU.
#include <doctest/doctest.h>

#include <memory>

#include "explain/explain.hpp"
#include "nn/models/zoo.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

double surrogate_relative_error(const Tensor& a, const Tensor& b) {
  const auto va = values(cpu(a)), vb = values(cpu(b));
  REQUIRE(va.size() == vb.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < va.size(); ++i) {
    err = std::max(err, std::abs(va[i] - vb[i]));
    scale = std::max(scale, std::abs(vb[i]));
  }
  return scale > 0 ? err / scale : err;
}

// (size, size) int64 ids of a g x g grid of square patches.
Tensor grid_ids(int64_t size, int64_t g) { return explain::grid_feature_mask(size, size, g, g); }

}  // namespace

TEST_CASE("cuda: coalition and surrogate methods on the GPU give the CPU's result" * doctest::skip(kNoGpu)) {
  namespace ex = explain;
  Generator init_cpu(8), init_gpu(8);
  const auto net = [](Generator& gen) {
    return nn::resnet18({.num_classes = 5, .in_channels = 3, .generator = &gen}, {.small_input = true, .width = 8});
  };
  std::shared_ptr<nn::Module> m_cpu = net(init_cpu), m_gpu = net(init_gpu);
  m_gpu->to(kGpu);
  m_cpu->eval();
  m_gpu->eval();
  const Tensor x = random_tensor({2, 3, 16, 16});
  const Tensor grid16 = grid_ids(16, 4), grid4 = grid_ids(16, 2);
  const auto query = [&](const std::shared_ptr<nn::Module>& model, Device device) {
    return ex::Query{ex::as_forward(*model),
                     {ops::to_device(x, device)},
                     ex::Target::several({{1, 3}, {0}}),
                     ex::Output::logit,
                     {ex::Baseline(0.1)}};
  };
  const auto both = [&](const std::string& name, const std::function<ex::Attribution(const ex::Query&)>& method) {
    const ex::Attribution a_cpu = method(query(m_cpu, Device::cpu()));
    const ex::Attribution a_gpu = method(query(m_gpu, kGpu));
    CHECK_MESSAGE(a_gpu.attributions[0].device() == kGpu, name);
    const double err = surrogate_relative_error(a_gpu.attributions[0], a_cpu.attributions[0]);
    CHECK_MESSAGE(err <= 1e-3, name << ": GPU differs from CPU by " << err << " of its scale (allowed 1e-3)");
  };
  both("feature ablation", [&](const ex::Query& q) {
    ex::FeatureAblationOptions o;
    o.feature_mask = {grid16};
    o.perturbations_per_eval = 5;
    return ex::feature_ablation(q, o);
  });
  both("lime", [&](const ex::Query& q) {
    Generator gen(3);
    ex::LimeOptions o;
    o.feature_mask = {grid16};
    o.n_samples = 150;
    o.perturbations_per_eval = 64;
    o.generator = &gen;
    return ex::lime(q, o);
  });
  both("clime", [&](const ex::Query& q) {
    Generator gen(4);
    ex::CLimeOptions o;
    o.feature_mask = {grid16};
    o.n_samples = 200;
    o.perturbations_per_eval = 64;
    o.generator = &gen;
    return ex::clime(q, o);
  });
  both("kernel shap", [&](const ex::Query& q) {
    Generator gen(5);
    ex::KernelShapOptions o;
    o.feature_mask = {grid16};
    o.n_samples = 200;
    o.perturbations_per_eval = 64;
    o.generator = &gen;
    return ex::kernel_shap(q, o);
  });
  both("exact kernel shap", [&](const ex::Query& q) {
    ex::KernelShapOptions o;
    o.feature_mask = {grid4};
    o.exact = true;
    return ex::kernel_shap(q, o);
  });
  both("shapley value sampling", [&](const ex::Query& q) {
    Generator gen(6);
    ex::ShapleySamplingOptions o;
    o.feature_mask = {grid16};
    o.n_samples = 3;
    o.generator = &gen;
    return ex::shapley_value_sampling(q, o);
  });
}

}  // namespace loupe::test
