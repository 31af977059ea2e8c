// loupe's coalition and surrogate methods against scikit-learn and Captum on the fixtures written
// by tests/fixtures/explain/make_surrogate_fixtures.py (which documents them): the small CNN of
// test_captum.cpp (its weights and inputs), explained as 100 x its logits, with 2x2-patch and
// 5x5-patch grid feature masks and the baseline cnn_baseline.
//
//   - weighted Lasso / least squares vs scikit-learn (float64, tol 1e-14): 1e-9.
//   - feature ablation vs Captum FeatureAblation, exact KernelSHAP vs Captum ShapleyValues (every
//     permutation): 1e-5 of the largest |value| (float32 models, different summation order).
//   - LIME and KernelSHAP on Captum's own recorded coalitions (the `coalitions` option), one row
//     at a time: vs the float64 scikit-learn solve of Captum's data, and vs Captum's end-to-end
//     result (which scikit-learn solved in float32); errors are reported in the messages.
#include <doctest/doctest.h>

#include <filesystem>
#include <map>

#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;

namespace {

namespace fs = std::filesystem;

fs::path surrogate_fixture_dir() {
  const fs::path relative = fs::path("tests") / "fixtures" / "explain";
  std::vector<fs::path> starts = {fs::current_path(), fs::path(__FILE__).parent_path().parent_path().parent_path()};
  std::error_code error;
  const fs::path self = fs::read_symlink("/proc/self/exe", error);
  if (!error) starts.push_back(self.parent_path());
  for (fs::path start : starts) {
    for (int up = 0; up < 4 && !start.empty(); ++up, start = start.parent_path()) {
      if (fs::exists(start / relative / "surrogate_mask4.npy")) return start / relative;
      if (start == start.parent_path()) break;
    }
  }
  return {};
}

struct SurrogateFixture {
  fs::path dir = surrogate_fixture_dir();
  std::map<std::string, Tensor> weights;
  SurrogateFixture() {
    REQUIRE_MESSAGE(!dir.empty(), "tests/fixtures/explain not found (run the tests from the repository or build dir)");
    weights = load_safetensors((dir / "cnn_weights.safetensors").string());
  }
  Tensor npy(const std::string& name) const { return load_npy((dir / (name + ".npy")).string()); }
  const Tensor& w(const std::string& name) const {
    auto it = weights.find(name);
    REQUIRE_MESSAGE(it != weights.end(), "missing weight " << name);
    return it->second;
  }
};

// 100 x the small CNN of make_explain_fixtures.py: conv - bn(eval) - relu - maxpool(2) - conv -
// relu - adaptive avg pool - flatten - linear.
ForwardFn scaled_cnn(const SurrogateFixture& f) {
  return [&f](const std::vector<Tensor>& in) {
    Conv2dParams pad;
    pad.padding = {1, 1};
    Pool2dParams pool;
    pool.kernel = {2, 2};
    Tensor h = conv2d(in[0], f.w("conv1.weight"), f.w("conv1.bias"), pad);
    h = batch_norm(h, f.w("bn1.running_mean"), f.w("bn1.running_var"), f.w("bn1.weight"), f.w("bn1.bias"), false, 0.1,
                   1e-5);
    h = max_pool2d(relu(h), pool);
    h = relu(conv2d(h, f.w("conv2.weight"), f.w("conv2.bias"), pad));
    const Tensor logits = linear(flatten(adaptive_avg_pool2d(h, {1, 1}), 1), f.w("fc.weight"), f.w("fc.bias"));
    return ops::mul(logits, scalar_tensor(100.0, logits.dtype()));
  };
}

void compare(const std::string& what, const Tensor& got, const Tensor& expected, double rtol) {
  const double err = max_relative_error(ops::to_dtype(got, DType::f64), ops::to_dtype(expected, DType::f64));
  CHECK_MESSAGE(err <= rtol, what << " differs by " << err << " of its scale (allowed " << rtol << ")");
  CHECK(got.shape() == expected.shape());
}

const std::vector<int64_t> kTargets = {1, 2, 0};

}  // namespace

TEST_CASE("linear_fit: weighted Lasso and least squares equal scikit-learn") {
  const SurrogateFixture f;
  const Tensor x = f.npy("surrogate_lasso_x"), y = f.npy("surrogate_lasso_y"), w = f.npy("surrogate_lasso_w");
  LassoOptions o;
  o.alpha = 0.05;
  o.tol = 1e-14;
  const LinearFit lasso = weighted_lasso(x, y, w, o);
  CHECK(lasso.converged);
  check_close(lasso.coef, f.npy("surrogate_lasso_coef"), 1e-9, 0, "lasso coef");
  check_close(lasso.intercept, f.npy("surrogate_lasso_intercept"), 1e-9, 0, "lasso intercept");
  const auto c = values(lasso.coef);
  CHECK(std::count(c.begin(), c.end(), 0.0) >= 1);  // some coefficients are exactly zero
  o.fit_intercept = false;
  check_close(weighted_lasso(x, y, w, o).coef, f.npy("surrogate_lasso_coef_nointercept"), 1e-9, 0, "no intercept");
  const LinearFit ls = weighted_least_squares(x, y, w, true);
  check_close(ls.coef, f.npy("surrogate_wls_coef"), 1e-10, 0, "wls coef");
  check_close(ls.intercept, f.npy("surrogate_wls_intercept"), 1e-10, 0, "wls intercept");
}

TEST_CASE("feature_ablation and exact kernel_shap equal Captum's FeatureAblation and ShapleyValues") {
  const SurrogateFixture f;
  const Query q{
      scaled_cnn(f), {f.npy("cnn_input")}, Target::per_row(kTargets), Output::logit, {Baseline(f.npy("cnn_baseline"))}};
  FeatureAblationOptions ablation;
  ablation.feature_mask = {f.npy("surrogate_mask25")};
  compare("feature ablation", feature_ablation(q, ablation).attributions[0], f.npy("surrogate_ablation"), 1e-5);
  KernelShapOptions exact;
  exact.feature_mask = {f.npy("surrogate_mask4")};
  exact.exact = true;
  compare("exact kernel shap vs ShapleyValues", kernel_shap(q, exact).attributions[0], f.npy("surrogate_shapley4"),
          1e-5);
}

TEST_CASE("lime and kernel_shap on Captum's coalitions equal Captum") {
  const SurrogateFixture f;
  const Tensor x = f.npy("cnn_input");
  const Tensor lime_masks = f.npy("surrogate_lime_masks"), kshap_masks = f.npy("surrogate_kshap_masks");
  for (int64_t row = 0; row < 3; ++row) {
    const std::string r = "row " + std::to_string(row);
    const Query q{scaled_cnn(f),
                  {ops::narrow(x, 0, row, 1)},
                  Target(kTargets[static_cast<size_t>(row)]),
                  Output::logit,
                  {Baseline(f.npy("cnn_baseline"))}};
    LimeOptions lo;
    lo.feature_mask = {f.npy("surrogate_mask25")};
    lo.coalitions = ops::to_dtype(ops::select(lime_masks, 0, row), DType::f64);
    lo.perturbations_per_eval = 16;
    const Tensor lime_attr = lime(q, lo).attributions[0];
    compare("lime " + r + " vs float64 fit", lime_attr, ops::narrow(f.npy("surrogate_lime_f64"), 0, row, 1), 1e-4);
    compare("lime " + r + " vs Captum", lime_attr, ops::narrow(f.npy("surrogate_lime"), 0, row, 1), 1e-4);
    KernelShapOptions ko;
    ko.feature_mask = lo.feature_mask;
    ko.coalitions = ops::to_dtype(ops::select(kshap_masks, 0, row), DType::f64);
    const Tensor kshap_attr = kernel_shap(q, ko).attributions[0];
    compare("kernel shap " + r + " vs float64 fit", kshap_attr, ops::narrow(f.npy("surrogate_kshap_f64"), 0, row, 1),
            1e-4);
    compare("kernel shap " + r + " vs Captum", kshap_attr, ops::narrow(f.npy("surrogate_kshap"), 0, row, 1), 1e-4);
  }
}

}  // namespace loupe::test
