// The faithfulness metrics (explain/evaluate/faithfulness.hpp), the randomisation check
// (sanity.hpp) and the image baselines (explain/baselines.hpp) with the model and input on the
// GPU, against the same calls on the CPU: a small ResNet18 (3x3 stem, width 8) on 16x16 inputs,
// two rows with different targets. Random draws (Philox) give the same numbers on both devices.
// The cases skip without a GPU.
//
// Tolerance: the two devices sum convolutions in different orders, and the metrics take
// differences of float32 scores: 1e-3 of the largest |value| (rank correlations: 2e-2).
#include <doctest/doctest.h>

#include <memory>

#include "explain/baselines.hpp"
#include "explain/evaluate/faithfulness.hpp"
#include "explain/evaluate/sanity.hpp"
#include "explain/explain.hpp"
#include "nn/models/zoo.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

namespace ex = explain;
namespace ev = explain::evaluate;

void check_relative(const Tensor& gpu_result, const Tensor& cpu_result, double tol, const std::string& what) {
  const auto vg = values(cpu(gpu_result)), vc = values(cpu(cpu_result));
  REQUIRE(vg.size() == vc.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < vc.size(); ++i) {
    err = std::max(err, std::abs(vg[i] - vc[i]));
    scale = std::max(scale, std::abs(vc[i]));
  }
  const double relative = scale > 0 ? err / scale : err;
  CHECK_MESSAGE(relative <= tol, what << ": GPU differs from CPU by " << relative << " of its scale (allowed " << tol << ")");
}

std::shared_ptr<nn::Module> small_resnet() {
  Generator gen(5);
  auto model = nn::resnet18({.num_classes = 4, .in_channels = 3, .generator = &gen}, {.small_input = true, .width = 8});
  model->eval();
  return model;
}

}  // namespace

TEST_CASE("cuda: faithfulness metrics and baselines on the GPU give the CPU's results" * doctest::skip(kNoGpu)) {
  auto model_cpu = small_resnet();
  auto model_gpu = small_resnet();
  model_gpu->to(kGpu);
  Generator g(8);
  const Tensor x = normal({2, 3, 16, 16}, 0.0, 1.0, DType::f32, &g);
  const ex::Query q_cpu{ex::as_forward(*model_cpu), {x}, ex::Target::per_row({1, 3}), ex::Output::softmax};
  const ex::Query q_gpu{ex::as_forward(*model_gpu), {gpu(x)}, ex::Target::per_row({1, 3}), ex::Output::softmax};
  const ex::Attribution a_cpu = ex::integrated_gradients(q_cpu, {.n_steps = 8});
  ex::Attribution a_gpu = a_cpu;
  a_gpu.attributions = {gpu(a_cpu.attributions[0])};

  for (ex::BaselineKind kind : {ex::BaselineKind::black, ex::BaselineKind::blur, ex::BaselineKind::uniform,
                                ex::BaselineKind::mean}) {
    const ex::BaselineOptions o{.mean = {0.4, 0.5, 0.6}, .std = {0.2, 0.25, 0.3}, .data_mean = {0.1, 0.2, 0.3}};
    const Tensor b = ex::make_baseline(kind, gpu(x), o);
    CHECK(b.device() == kGpu);
    check_relative(b, ex::make_baseline(kind, x, o), 1e-5, std::string("baseline ") + ex::baseline_name(kind));
  }

  const ev::CurveOptions curve{.steps = 8, .perturbations_per_eval = 5};
  check_relative(ev::deletion_curve(q_gpu, a_gpu, curve).scores, ev::deletion_curve(q_cpu, a_cpu, curve).scores, 1e-3,
                 "deletion");
  check_relative(ev::insertion_curve(q_gpu, a_gpu, curve).scores, ev::insertion_curve(q_cpu, a_cpu, curve).scores, 1e-3,
                 "insertion");
  const ev::CurveOptions blur{.steps = 8, .fill = ev::Fill::blur};
  check_relative(ev::deletion_curve(q_gpu, a_gpu, blur).auc, ev::deletion_curve(q_cpu, a_cpu, blur).auc, 1e-3,
                 "deletion (blur)");
  const Tensor grid = ex::grid_feature_mask(16, 16, 4, 4);
  Generator g1(3), g2(3);
  check_relative(ev::infidelity(q_gpu, a_gpu, {.noise = ev::InfidelityNoise::subset, .feature_mask = gpu(grid), .generator = &g1}),
                 ev::infidelity(q_cpu, a_cpu, {.noise = ev::InfidelityNoise::subset, .feature_mask = grid, .generator = &g2}),
                 1e-3, "infidelity (subset)");
  check_relative(ev::faithfulness_correlation(q_gpu, a_gpu, {.n_samples = 20, .feature_mask = grid, .generator = &g1}),
                 ev::faithfulness_correlation(q_cpu, a_cpu, {.n_samples = 20, .feature_mask = grid, .generator = &g2}),
                 1e-3, "faithfulness correlation");
  const ex::Method saliency = [](const ex::Query& q) { return ex::saliency(q, {.absolute = false}); };
  check_relative(ev::sensitivity_max(q_gpu, saliency, {.n_samples = 3, .generator = &g1}),
                 ev::sensitivity_max(q_cpu, saliency, {.n_samples = 3, .generator = &g2}), 1e-3, "sensitivity_max");
  const ev::RegionShares shares = ev::region_mass(a_gpu.attributions[0]);
  check_relative(shares.border, ev::region_mass(a_cpu.attributions[0]).border, 1e-6, "region mass");

  const auto steps_gpu = ev::cascading_randomisation(*model_gpu, q_gpu, saliency, {.blocks = {"fc", "layer4"}});
  const auto steps_cpu = ev::cascading_randomisation(*model_cpu, q_cpu, saliency, {.blocks = {"fc", "layer4"}});
  REQUIRE(steps_gpu.size() == 2);
  for (size_t k = 0; k < 2; ++k)
    for (size_t r = 0; r < 2; ++r) CHECK(steps_gpu[k].spearman[r] == doctest::Approx(steps_cpu[k].spearman[r]).epsilon(2e-2));
}

}  // namespace loupe::test
