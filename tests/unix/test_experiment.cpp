// Tests of unix/experiment.hpp and unix/report.hpp without training:
//   - the parameter-matched control: within the tolerance of Uni-X's total, and no other layer count
//     is closer (brute force); an impossible tolerance is refused; a wider control when layers
//     cannot match; the three arms' counts (Uni-X active == shared total)
//   - mean_std (sample std), depth_curve (mean and std over seeds of the per-layer "all" rows;
//     layers a profile does not measure have no point), the pre-registered contrasts, and the JSON
//     and HTML of a hand-made result (numbers where they should be, the not-the-paper's-metric label)
#include <doctest/doctest.h>

#include <cmath>

#include "tensor/io/json.hpp"
#include "unix/experiment.hpp"
#include "unix/report.hpp"

using namespace loupe;
using namespace loupe::unix;

namespace {

RunConfig base_run(int64_t layers, int64_t hidden) {
  RunConfig r;
  r.arm = "shared";
  r.layers = layers;
  r.hidden = hidden;
  r.heads = 4;
  r.front = r.back = 0;
  return r;
}

ConflictRow row(int64_t layer, const std::string& kind, double conflict, double raw, double base) {
  ConflictRow r;
  r.layer = layer;
  r.kind = kind;
  r.conflict = conflict;
  r.cos_text_mm = raw;
  r.cos_a_b = base;
  r.within_batch_cos_image_text = 0.5;
  return r;
}

}  // namespace

TEST_CASE("unix experiment: the parameter-matched control and the three arms") {
  const int64_t vocab = 106;
  ExperimentConfig config;
  config.base = base_run(6, 32);
  config.separated = 1;
  const std::vector<ExperimentArm> arms = experiment_arms(config, vocab);
  REQUIRE(arms.size() == 3);
  CHECK(arms[0].name == "shared");
  CHECK(arms[1].name == "unix");
  CHECK(arms[2].name == "matched");
  CHECK(arms[1].label == "Uni-X-L6 (N=M=1)");
  CHECK(arms[2].label == "Shared-L8 (matched)");
  for (const ExperimentArm& a : arms) CHECK(a.label.size() <= 22);  // fits the plot legend
  CHECK(arms[1].run.front == 1);
  CHECK(arms[1].run.back == 1);
  CHECK(arms[0].params.total == arms[0].params.active);
  CHECK(arms[1].params.active == arms[0].params.total);  // Uni-X matches shared in active parameters
  CHECK(arms[1].params.total > arms[0].params.total);
  const double gap =
      std::abs(static_cast<double>(arms[2].params.total) / static_cast<double>(arms[1].params.total) - 1);
  CHECK(gap <= config.match_tolerance);
  CHECK(arms[2].params.total == count_run_parameters(arms[2].run, vocab).total);
  // A separated layer adds exactly one decoder layer: 6 + 2 shared layers match exactly.
  CHECK(arms[2].run.layers == 8);
  CHECK(arms[2].params.total == arms[1].params.total);
  // No other depth is closer.
  for (int64_t layers = 6; layers <= 24; ++layers) {
    const int64_t total = count_run_parameters(base_run(layers, 32), vocab).total;
    CHECK(std::abs(total - arms[1].params.total) >= std::abs(arms[2].params.total - arms[1].params.total));
  }

  // A target between depths: more layers cannot reach 2 %, a wider MLP can.
  const int64_t l6 = count_run_parameters(base_run(6, 32), vocab).total;
  const int64_t l7 = count_run_parameters(base_run(7, 32), vocab).total;
  const int64_t target = (l6 + l7) / 2;
  const RunConfig wider = matched_control(base_run(6, 32), target, vocab, 0.02);
  CHECK(std::abs(static_cast<double>(count_run_parameters(wider, vocab).total) / static_cast<double>(target) - 1) <=
        0.02);
  CHECK(wider.layers == 6);
  CHECK(wider.hidden == 32);
  CHECK(wider.intermediate > default_intermediate(32));
  CHECK_THROWS_WITH_AS(matched_control(base_run(6, 32), target, vocab, 0.0), doctest::Contains("parameters"), Error);
  config.separated = 3;  // 2 N = L: no shared middle
  CHECK_THROWS_AS(experiment_arms(config, vocab), Error);
}

TEST_CASE("unix experiment: mean and sample std, depth curves, contrasts, JSON and HTML") {
  const MeanStd m = mean_std({1.0, 2.0, 3.0});
  CHECK(m.mean == doctest::Approx(2.0));
  CHECK(m.std == doctest::Approx(1.0));
  CHECK(m.n == 3);
  CHECK(mean_std({4.0}).std == 0.0);
  CHECK(std::isnan(mean_std({}).mean));

  // Two seeds of a 4-layer shared model and of a Uni-X model measuring layers 1, 2.
  ExperimentResult result;
  result.config.base = base_run(4, 16);
  result.config.base.steps = 10;
  result.config.separated = 1;
  result.config.seeds = {0, 1};
  result.vocab_size = 20;
  result.arms = {{"shared", "Shared-L4", base_run(4, 16), {100, 100}},
                 {"unix", "Uni-X-L4 (N=1, M=1)", base_run(4, 16), {150, 100}}};
  result.arms[1].run.arm = "unix";
  result.arms[1].run.front = result.arms[1].run.back = 1;
  for (uint64_t seed : {0u, 1u}) {
    const double s = static_cast<double>(seed);
    ArmSeedResult shared;
    shared.arm = "shared";
    shared.seed = seed;
    shared.heldout = {{Modality::image, {1.0 + s, 5}}, {Modality::caption, {2.0, 5}}, {Modality::text, {3.0, 5}}};
    shared.tokens_per_second = 1000 + 100 * s;
    shared.train.losses = {3.0, 2.0};
    // conflict by layer: 0.9, 0.5, 0.5, 0.7 (+ 0.2 for seed 1 at layer 0); "q" rows must be ignored.
    for (int64_t l = 0; l < 4; ++l) {
      const double c = l == 0 ? 0.9 + 0.2 * s : (l == 3 ? 0.7 : 0.5);
      shared.conflict_final.push_back(row(l, "q", 99, 99, 99));
      shared.conflict_final.push_back(row(l, "all", c, 0.1, 0.1 + c));
    }
    shared.conflict_initial = shared.conflict_final;
    ArmSeedResult unix_r = shared;
    unix_r.arm = "unix";
    unix_r.heldout[Modality::image].loss = 0.5;
    unix_r.conflict_final.clear();
    for (int64_t l = 1; l < 3; ++l) unix_r.conflict_final.push_back(row(l, "all", 0.3 + 0.1 * s, 0.2, 0.5));
    unix_r.conflict_initial = unix_r.conflict_final;
    result.runs.push_back(shared);
    result.runs.push_back(unix_r);
  }
  const MeanStd image = arm_heldout(result, "shared", Modality::image);
  CHECK(image.mean == doctest::Approx(1.5));
  CHECK(image.std == doctest::Approx(std::sqrt(0.5)));
  CHECK(arm_tokens_per_second(result, "shared").mean == doctest::Approx(1050));

  ConflictProfile shared_profile{"shared", {result.runs[0].conflict_final, result.runs[2].conflict_final}};
  const DepthCurve curve = depth_curve(shared_profile, ConflictField::conflict);
  REQUIRE(curve.layer == std::vector<double>{0, 1, 2, 3});
  CHECK(curve.mean[0] == doctest::Approx(1.0));
  CHECK(curve.std[0] == doctest::Approx(0.2 / std::sqrt(2.0)));
  CHECK(curve.mean[3] == doctest::Approx(0.7));
  CHECK(curve.std[3] == doctest::Approx(0.0));
  const DepthCurve base = depth_curve(shared_profile, ConflictField::cos_a_b);
  CHECK(base.mean[1] == doctest::Approx(0.6));
  ConflictProfile unix_profile{"unix", {result.runs[1].conflict_final, result.runs[3].conflict_final}};
  CHECK(depth_curve(unix_profile, ConflictField::conflict).layer == std::vector<double>{1, 2});

  const std::vector<Contrast> contrasts = experiment_contrasts(result);
  REQUIRE(contrasts.size() == 3);  // shared middle, shared ends - middle, unix middle
  CHECK(contrasts[0].summary.mean == doctest::Approx(0.5));
  REQUIRE(contrasts[1].per_seed.size() == 2);
  CHECK(contrasts[1].per_seed[0] == doctest::Approx(0.8 - 0.5));  // (0.9 + 0.7) / 2 - 0.5
  CHECK(contrasts[1].per_seed[1] == doctest::Approx(0.9 - 0.5));
  REQUIRE(contrasts[2].per_seed.size() == 2);
  CHECK(contrasts[2].per_seed[0] == doctest::Approx(0.3));
  CHECK(contrasts[2].per_seed[1] == doctest::Approx(0.4));

  const std::string text = experiment_json(result, "loupe unix experiment --test");
  const json::Value v = json::parse(text);  // valid JSON
  REQUIRE(v.find("summary") != nullptr);
  const json::Value& s0 = v.find("summary")->items.at(0);
  CHECK(std::stod(s0.find("heldout_loss")->find("image")->find("mean")->text) == doctest::Approx(1.5));
  CHECK(v.find("arms")->items.at(1).find("parameters_total")->text == "150");
  CHECK(v.find("contrasts")->items.size() == 3);
  const std::string html = experiment_html(result, "loupe unix experiment --test");
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("NOT the paper") != std::string::npos);
  CHECK(html.find("1.5 \u00b1 0.7071") != std::string::npos);
  const std::string page = conflict_report_html("t", {"note"}, {shared_profile, unix_profile});
  CHECK(page.find("baseline") != std::string::npos);
  CHECK(conflict_depth_svg_list({shared_profile}).size() == 4);
}
