// loupe's attributions against Captum's on the same weights and inputs. The fixtures (weights as
// safetensors, inputs and Captum's outputs as .npy) are written by
// tests/fixtures/explain/make_explain_fixtures.py, which documents the two networks; here they are
// rebuilt functionally from loupe ops and the weights loaded by their PyTorch names.
//
// Tolerances (float32 throughout): every attribution tensor agrees with Captum's to 1e-5 of its
// largest |value| (max |loupe - captum| / max |captum|). The two libraries sum convolutions and
// reductions in different orders, which moves f32 results by ~1e-7 relative; the errors seen are
// 1e-7 to 3e-7 for the gradient methods and IG, and up to 2.2e-6 for DeepLIFT through a softmax or
// sigmoid output (the rescale rule divides small differences of f32 probabilities). Deltas agree
// to 1e-5 absolute plus 1e-3 relative.
//
// The CNN fixture inserts a no-op "+ 0.0" between its ReLU and max-pool modules to get Captum 0.9's
// max-pool rule applied at all (see the fixture script: with the two modules adjacent, Captum
// falls back to the ordinary max-pool gradient, 9% away from the rule on these inputs).
#include <doctest/doctest.h>

#include "tensor/cuda/backend.hpp"
#include "tests/explain/captum_fixture.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

using namespace captum_fixture;

// The allowed error of loupe against Captum, as a fraction of the largest |value|: cuDNN sums
// convolutions in yet another order than either CPU library, which the GPU runs get room for.
double tolerance = 1e-5;

// Checks a loupe result against Captum's and reports the error achieved (a result on a GPU is
// copied back to compare).
void compare(const std::string& what, const Tensor& loupe_result, const Tensor& captum) {
  const double rtol = tolerance;
  const Tensor loupe = ops::to_device(loupe_result, Device::cpu());
  const double err = max_relative_error(loupe, captum);
  CHECK_MESSAGE(err <= rtol, what << " differs from Captum by " << err << " of its scale (allowed " << rtol << ")");
  CHECK(loupe.shape() == captum.shape());
}

void compare_delta(const std::string& what, const Tensor& loupe, const Tensor& captum) {
  check_close(ops::to_device(ops::to_dtype(loupe, DType::f32), Device::cpu()), captum, 1e-5, 1e-3, what + " delta");
}

// Every method on the fixture's input on `device` (the fixture's weights must be there too).
// Baselines stay on the CPU: the methods move them to the input's device.
void compare_all(const Fixture& f, const ForwardFn& model, Device device = Device::cpu()) {
  const Tensor x = ops::to_device(f.npy("input"), device);
  const std::vector<int64_t> targets = {1, 2, 0};
  Query q{model, {x}, Target::per_row(targets)};
  check_close(ops::to_device(model({x}), Device::cpu()), f.npy("logits"), device.is_cpu() ? 1e-6 : 1e-5, 1e-5,
              f.prefix + " logits");

  compare(f.prefix + " saliency", saliency(q).attributions[0], f.npy("saliency"));
  compare(f.prefix + " signed saliency", saliency(q, {.absolute = false}).attributions[0], f.npy("saliency_signed"));
  compare(f.prefix + " input x gradient", input_x_gradient(q).attributions[0], f.npy("input_x_gradient"));
  compare(f.prefix + " guided backprop", guided_backprop(q).attributions[0], f.npy("guided_backprop"));
  compare(f.prefix + " deconvolution", deconvolution(q).attributions[0], f.npy("deconvolution"));

  const IntegratedGradientsOptions gl{.n_steps = 20, .return_convergence_delta = true};
  Attribution a = integrated_gradients(q, gl);
  compare(f.prefix + " IG Gauss-Legendre 20", a.attributions[0], f.npy("ig_gl20"));
  compare_delta(f.prefix + " IG Gauss-Legendre 20", a.delta, f.npy("ig_gl20_delta"));
  a = integrated_gradients(q, {.n_steps = 20, .method = IntegrationRule::riemann_trapezoid,
                               .internal_batch_size = 7, .return_convergence_delta = true});
  compare(f.prefix + " IG riemann_trapezoid 20", a.attributions[0], f.npy("ig_trapezoid20"));
  compare_delta(f.prefix + " IG riemann_trapezoid 20", a.delta, f.npy("ig_trapezoid20_delta"));

  a = deeplift(q, {.return_convergence_delta = true});
  compare(f.prefix + " DeepLIFT", a.attributions[0], f.npy("deeplift"));
  compare_delta(f.prefix + " DeepLIFT", a.delta, f.npy("deeplift_delta"));

  // A baseline of shape (1, C, H, W), broadcast over the rows.
  Query with_baseline = q;
  with_baseline.baselines = {f.npy("baseline")};
  a = integrated_gradients(with_baseline, gl);
  compare(f.prefix + " IG with baseline", a.attributions[0], f.npy("ig_gl20_baseline"));
  compare_delta(f.prefix + " IG with baseline", a.delta, f.npy("ig_gl20_baseline_delta"));
  a = deeplift(with_baseline, {.return_convergence_delta = true});
  compare(f.prefix + " DeepLIFT with baseline", a.attributions[0], f.npy("deeplift_baseline"));
  compare_delta(f.prefix + " DeepLIFT with baseline", a.delta, f.npy("deeplift_baseline_delta"));

  compare(f.prefix + " DeepLIFT-SHAP", deeplift_shap(q, {f.npy("shap_baselines")}).attributions[0],
          f.npy("deeplift_shap"));

  // Probabilities: Captum's models end in nn.Softmax / nn.Sigmoid modules.
  Query prob = q;
  prob.output = Output::softmax;
  compare(f.prefix + " IG of the softmax probability", integrated_gradients(prob, {.n_steps = 20}).attributions[0],
          f.npy("ig_gl20_softmax"));
  a = deeplift(prob, {.return_convergence_delta = true});
  compare(f.prefix + " DeepLIFT of the softmax probability", a.attributions[0], f.npy("deeplift_softmax"));
  compare_delta(f.prefix + " DeepLIFT of the softmax probability", a.delta, f.npy("deeplift_softmax_delta"));
  prob.output = Output::sigmoid;
  compare(f.prefix + " DeepLIFT of the sigmoid probability", deeplift(prob).attributions[0], f.npy("deeplift_sigmoid"));
}

}  // namespace

TEST_CASE("Captum agreement: small CNN (conv, batch norm in eval, max-pool, adaptive avg pool)") {
  const Fixture f = load_fixture("cnn");
  compare_all(f, small_cnn(f));
}

TEST_CASE("Captum agreement: small residual net") {
  const Fixture f = load_fixture("res");
  compare_all(f, small_resnet(f));
}

TEST_CASE("cuda: Captum agreement on the GPU (both fixture networks)" * doctest::skip(!cuda::is_available())) {
  struct WiderTolerance {
    WiderTolerance() { tolerance = 5e-5; }
    ~WiderTolerance() { tolerance = 1e-5; }
  } wider;
  const Fixture cnn = on_device(load_fixture("cnn"), Device::cuda(0));
  compare_all(cnn, small_cnn(cnn), Device::cuda(0));
  const Fixture res = on_device(load_fixture("res"), Device::cuda(0));
  compare_all(res, small_resnet(res), Device::cuda(0));
}

}  // namespace loupe::test
