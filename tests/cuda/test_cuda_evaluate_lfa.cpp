// The LFA framework and PGI/PGU on the GPU (explain/evaluate/lfa.hpp, perturbation_gap.hpp): the
// same generator gives the same draws on both devices, so the GPU's LFA fits and prediction gaps
// equal the CPU's up to float32 rounding. Skipped without a GPU.
#include <doctest/doctest.h>

#include "explain/evaluate/lfa.hpp"
#include "explain/evaluate/perturbation_gap.hpp"
#include "explain/explain.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

explain::ForwardFn mlp_on(Device device) {
  const Tensor w1 = ops::to_device(random_tensor({8, 6}, DType::f32, -1, 1, 41), device);
  const Tensor b1 = ops::to_device(random_tensor({8}, DType::f32, -1, 1, 42), device);
  const Tensor w2 = ops::to_device(random_tensor({2, 8}, DType::f32, -1, 1, 43), device);
  return [=](const std::vector<Tensor>& in) { return linear(tanh(linear(in[0], w1, b1)), w2); };
}

}  // namespace

TEST_CASE("cuda: evaluate lfa fits on the GPU give the CPU's" * doctest::skip(kNoGpu)) {
  namespace lfa = explain::lfa;
  const Tensor x0 = random_tensor({1, 6}, DType::f32, 0, 1, 44);
  for (lfa::Method m : lfa::all_methods()) {
    CAPTURE(lfa::method_name(m));
    Generator g_cpu(5), g_gpu(5);
    const lfa::Spec spec = lfa::method_spec(m);
    const lfa::Fit a = lfa::explain(spec, mlp_on(Device::cpu()), explain::Output::softmax, 1, x0, 200, g_cpu);
    const lfa::Fit b = lfa::explain(spec, mlp_on(kGpu), explain::Output::softmax, 1, gpu(x0), 200, g_gpu);
    check_close(b.coef, a.coef, 1e-4, 1e-3, "coef");
  }
}

TEST_CASE("cuda: evaluate PGI / PGU on the GPU give the CPU's" * doctest::skip(kNoGpu)) {
  const Tensor x = random_tensor({5, 6}, DType::f32, 0, 1, 45);
  const explain::Query q_cpu{mlp_on(Device::cpu()), {x}, explain::Target(1), explain::Output::softmax};
  const explain::Query q_gpu{mlp_on(kGpu), {gpu(x)}, explain::Target(1), explain::Output::softmax};
  const explain::Attribution a = explain::input_x_gradient(q_cpu);
  explain::Attribution a_gpu = a;
  a_gpu.attributions[0] = gpu(a.attributions[0]);
  for (auto kind : {explain::GapPerturbation::zero, explain::GapPerturbation::gaussian}) {
    for (bool top : {true, false}) {
      Generator g_cpu(6), g_gpu(6);
      explain::PerturbationGapOptions o;
      o.perturbation = kind;
      o.n_samples = 50;
      o.generator = &g_cpu;
      const explain::PerturbationGap c = explain::perturbation_gap(q_cpu, a, top, o);
      o.generator = &g_gpu;
      const explain::PerturbationGap g = explain::perturbation_gap(q_gpu, a_gpu, top, o);
      check_close(g.gaps, c.gaps, 1e-5, 1e-4, "gaps");
      CHECK(g.auc == doctest::Approx(c.auc).epsilon(1e-4));
    }
  }
}

}  // namespace loupe::test
