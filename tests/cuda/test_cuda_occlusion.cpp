// Occlusion (explain/occlusion.hpp) on the GPU against the same on the CPU: a small ResNet18
// (3x3 stem, width 8) on 16x16 inputs, several targets per row, a baseline given on the CPU, a
// clipped last window, chunk sizes that split the windows unevenly, and two inputs. The cases
// skip without a GPU.
//
// Tolerance: the networks sum convolutions in different orders on the two devices (cuDNN picks
// its own algorithms), and occlusion takes differences of float32 scores, so results are compared
// by the largest error relative to the largest |value| of the CPU result: 1e-3.
#include <doctest/doctest.h>

#include <memory>

#include "explain/explain.hpp"
#include "nn/models/zoo.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

void check_relative(const Tensor& gpu_result, const Tensor& cpu_result, double tol, const std::string& what) {
  CHECK_MESSAGE(gpu_result.device() == kGpu, what << " came back on " << gpu_result.device().str());
  const auto vg = values(cpu(gpu_result)), vc = values(cpu_result);
  REQUIRE(vg.size() == vc.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < vc.size(); ++i) {
    err = std::max(err, std::abs(vg[i] - vc[i]));
    scale = std::max(scale, std::abs(vc[i]));
  }
  const double relative = scale > 0 ? err / scale : err;
  CHECK_MESSAGE(relative <= tol,
                what << ": GPU differs from CPU by " << relative << " of its scale (allowed " << tol << ")");
}

std::shared_ptr<nn::Module> small_resnet(uint64_t seed) {
  Generator gen(seed);
  auto model = nn::resnet18({.num_classes = 5, .in_channels = 3, .generator = &gen}, {.small_input = true, .width = 8});
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("cuda: occlusion on the GPU gives the CPU's result (small ResNet, several targets)" * doctest::skip(kNoGpu)) {
  namespace ex = explain;
  const auto cpu_model = small_resnet(21), gpu_model = small_resnet(21);
  gpu_model->to(kGpu);
  const Tensor x = random_tensor({2, 3, 16, 16}, DType::f32, -1, 1, 22);
  const Tensor baseline = random_tensor({1, 3, 16, 16}, DType::f32, -0.2, 0.2, 23);  // stays on the CPU
  const auto query = [&](nn::Module& model, Device device) {
    return ex::Query{ex::as_forward(model),
                     {ops::to_device(x, device)},
                     ex::Target::several({{1, 3}, {0}}),
                     ex::Output::softmax,
                     {ex::Baseline(baseline)}};
  };
  // (3, 5, 5) windows with strides (3, 2, 2): 7 x 7 positions, the last ones clipped to [12, 16).
  for (int64_t per_eval : {0, 10}) {
    const ex::OcclusionOptions options{
        .windows = {{3, 5, 5}}, .strides = {{3, 2, 2}}, .perturbations_per_eval = per_eval};
    const ex::Attribution on_cpu = ex::occlusion(query(*cpu_model, Device::cpu()), options);
    const ex::Attribution on_gpu = ex::occlusion(query(*gpu_model, kGpu), options);
    CHECK(on_gpu.targets == on_cpu.targets);
    check_relative(on_gpu.attributions[0], on_cpu.attributions[0], 1e-3, "per_eval " + std::to_string(per_eval));
  }
}

TEST_CASE("cuda: occlusion of two inputs on the GPU gives the CPU's result" * doctest::skip(kNoGpu)) {
  namespace ex = explain;
  const Tensor w_image = random_tensor({4, 2 * 6 * 5}, DType::f32, -0.5, 0.5, 31);
  const Tensor w_features = random_tensor({4, 7}, DType::f32, -0.5, 0.5, 32);
  const Tensor w_out = random_tensor({3, 4}, DType::f32, -1, 1, 33);
  const auto model_on = [&](Device device) -> ex::ForwardFn {
    const Tensor a = ops::to_device(w_image, device), b = ops::to_device(w_features, device),
                 c = ops::to_device(w_out, device);
    return [=](const std::vector<Tensor>& in) {
      return linear(tanh(add(linear(flatten(in[0], 1), a), linear(in[1], b))), c);
    };
  };
  const Tensor images = random_tensor({3, 2, 6, 5}, DType::f32, -1, 1, 34);
  const Tensor features = random_tensor({3, 7}, DType::f32, -1, 1, 35);
  const ex::OcclusionOptions options{
      .windows = {{1, 3, 2}, {3}}, .strides = {{1, 2, 2}, {2}}, .perturbations_per_eval = 5};
  const auto run = [&](Device device) {
    return ex::occlusion(ex::Query{model_on(device),
                                   {ops::to_device(images, device), ops::to_device(features, device)},
                                   ex::Target::per_row({2, 0, 1}),
                                   ex::Output::logit,
                                   {0.1, -0.2}},
                         options);
  };
  const ex::Attribution on_cpu = run(Device::cpu()), on_gpu = run(kGpu);
  check_relative(on_gpu.attributions[0], on_cpu.attributions[0], 1e-3, "images");
  check_relative(on_gpu.attributions[1], on_cpu.attributions[1], 1e-3, "features");
}

}  // namespace loupe::test
