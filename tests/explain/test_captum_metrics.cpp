// loupe's infidelity and max-sensitivity against Captum 0.9's captum.metrics, on the fixtures of
// tests/fixtures/explain/make_metric_fixtures.py: the small CNN of the gradient fixtures (float32,
// 3 rows, targets 1, 2, 0), with the perturbations drawn once in Python and handed to both sides
// (Captum through its perturb_func hook, loupe as fixed perturbations), 4 per row in Captum's
// repeat_interleave layout.
// Tolerance 1e-4 relative: both sides run the network in float32; infidelity squares differences
// of float32 scores, sensitivity divides norms of float32 gradients.
#include <doctest/doctest.h>

#include "explain/evaluate/faithfulness.hpp"
#include "tests/explain/captum_fixture.hpp"

namespace loupe::test {

using namespace explain_util;
using namespace captum_fixture;
namespace ev = explain::evaluate;

namespace {

void compare(const std::string& what, const Tensor& loupe, const Tensor& captum, double rtol) {
  const Tensor l = ops::to_dtype(loupe, DType::f64);
  const Tensor c = ops::to_dtype(captum, DType::f64);
  REQUIRE(l.shape() == c.shape());
  const double err = max_relative_error(l, c);
  CHECK_MESSAGE(err <= rtol, what << " differs from Captum by " << err << " of its scale (allowed " << rtol << ")");
  MESSAGE(what << ": " << err << " of the scale");
}

}  // namespace

TEST_CASE("Captum agreement: infidelity with fixed perturbations (faith)") {
  const Fixture f = load_fixture("cnn");
  const Query q{small_cnn(f), {f.npy("input")}, Target::per_row({1, 2, 0})};
  const Attribution a{{f.array("metric_attr")}, Tensor(), {0, 1, 2}, {1, 2, 0}};
  const Tensor perturbations = f.array("metric_perturb");
  compare("infidelity", ev::infidelity(q, a, {.n_samples = 4, .perturbations = perturbations}),
          f.array("metric_infidelity"), 1e-4);
  compare("infidelity (normalize)",
          ev::infidelity(q, a, {.n_samples = 4, .perturbations = perturbations, .normalize = true}),
          f.array("metric_infidelity_norm"), 1e-4);
  // Chunking does not change it.
  compare("infidelity, one copy per pass",
          ev::infidelity(q, a, {.n_samples = 4, .perturbations = perturbations, .perturbations_per_eval = 1}),
          f.array("metric_infidelity"), 1e-4);
}

TEST_CASE("Captum agreement: sensitivity_max with fixed noise (faith)") {
  const Fixture f = load_fixture("cnn");
  const Query q{small_cnn(f), {f.npy("input")}, Target::per_row({1, 2, 0})};
  const Tensor noise = f.array("metric_noise");
  const Method signed_saliency = [](const Query& query) { return saliency(query, {.absolute = false}); };
  compare("sensitivity_max (saliency)", ev::sensitivity_max(q, signed_saliency, {.n_samples = 4, .noise = noise}),
          f.array("metric_sens_saliency"), 1e-4);
  const Method ig = [](const Query& query) { return integrated_gradients(query, {.n_steps = 8}); };
  compare("sensitivity_max (IG, 8 Gauss-Legendre steps)", ev::sensitivity_max(q, ig, {.n_samples = 4, .noise = noise}),
          f.array("metric_sens_ig"), 1e-4);
}

}  // namespace loupe::test
