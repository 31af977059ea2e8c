// Image baselines (explain/baselines.hpp) and how the reports name them: black is the
// normalisation of the black picture, zeros is 0 after normalisation, mean follows the data mean,
// uniform stays in the pixel range and is seeded, blur keeps constants and commutes with the
// normalisation; the report and its JSON say which baseline ran; and the demo-style IG, DeepLIFT
// and (baseline-relative) input x gradient on a real Fashion-MNIST image with the black baseline
// leave the black background at zero (each is (x - x') times a multiplier, and x = x' there).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "explain/baselines.hpp"
#include "explain/report.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data/transforms.hpp"
#include "nn/training.hpp"
#include "tensor/io/npy.hpp"
#include "tests/explain/explain_test_util.hpp"

namespace loupe::test {

using namespace explain_util;
namespace fs = std::filesystem;

namespace {

fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / (name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

}  // namespace

TEST_CASE("baselines: black, zeros, mean, uniform and blur in pixel terms (faith)") {
  Generator g(4);
  const Tensor input = normal({2, 3, 6, 5}, 0.0, 1.0, DType::f32, &g);
  const BaselineOptions o{.mean = {0.5, 0.4, 0.3}, .std = {0.25, 0.2, 0.1}};
  // black: (0 - mean) / std per channel, exactly as nn::normalize turns a black picture.
  const Tensor black = make_baseline(BaselineKind::black, input, o);
  REQUIRE(black.shape() == input.shape());
  const Tensor black_picture = nn::normalize(zeros({3, 6, 5}), o.mean, o.std);
  CHECK(check_close(ops::select(black, 0, 1), black_picture, 0, 0, "black"));
  CHECK(ops::select(ops::select(ops::select(ops::select(black, 0, 0), 0, 2), 0, 0), 0, 0).item() ==
        doctest::Approx(-3.0));
  // zeros: 0 after normalisation, which is the picture equal to the normalisation mean (grey).
  const Tensor zero = make_baseline(BaselineKind::zeros, input, o);
  CHECK(ops::sum(ops::abs(zero)).item() == 0.0);
  CHECK(check_close(nn::normalize(full({3, 6, 5}, 0.5), {0.5}, {0.25}), zeros({3, 6, 5}), 0, 0, "grey is zero"));
  // mean: the normalisation mean when no data mean is given (= zeros), else the data mean.
  CHECK(check_close(make_baseline(BaselineKind::mean, input, o), zero, 0, 0, "mean = zeros"));
  BaselineOptions with_data = o;
  with_data.data_mean = {0.6, 0.4, 0.2};
  const Tensor data_mean = make_baseline(BaselineKind::mean, input, with_data);
  CHECK(ops::select(ops::select(ops::select(ops::select(data_mean, 0, 0), 0, 0), 0, 0), 0, 0).item() ==
        doctest::Approx(0.4));
  CHECK(ops::select(ops::select(ops::select(ops::select(data_mean, 0, 1), 0, 2), 0, 3), 0, 4).item() ==
        doctest::Approx(-1.0));
  // uniform: pixel values in [0, 1] (normalised), seeded, a fresh draw for another seed.
  const Tensor u = make_baseline(BaselineKind::uniform, input, o);
  const Tensor pixels = ops::add(ops::mul(u, from_values(std::vector<double>{0.25, 0.2, 0.1}, {3, 1, 1})),
                                 from_values(std::vector<double>{0.5, 0.4, 0.3}, {3, 1, 1}));
  CHECK(ops::amin(pixels).item() >= -1e-6);
  CHECK(ops::amax(pixels).item() <= 1.0 + 1e-6);
  CHECK(ops::mean(ops::to_dtype(pixels, DType::f64)).item() == doctest::Approx(0.5).epsilon(0.1));
  CHECK(check_close(make_baseline(BaselineKind::uniform, input, o), u, 0, 0, "seeded"));
  BaselineOptions other = o;
  other.seed = 9;
  CHECK(ops::amax(ops::abs(ops::sub(make_baseline(BaselineKind::uniform, input, other), u))).item() > 0.1);
  // blur: a constant stays constant (border weights renormalised); blurring commutes with the
  // per-channel normalisation; an impulse spreads symmetrically and keeps its mass.
  CHECK(check_close(gaussian_blur(full({1, 1, 9, 9}, 0.7), 2.0), full({1, 1, 9, 9}, 0.7), 1e-6, 0, "constant"));
  const Tensor picture = uniform({3, 12, 12}, 0.0, 1.0, DType::f32, &g);
  const Tensor a = gaussian_blur(nn::normalize(picture, o.mean, o.std), 1.5);
  const Tensor b = nn::normalize(gaussian_blur(picture, 1.5), o.mean, o.std);
  CHECK(check_close(a, b, 1e-5, 1e-5, "blur commutes with normalisation"));
  // (An impulse far enough from the border that no row it reaches is renormalised.)
  std::vector<double> impulse(41 * 41, 0.0);
  impulse[20 * 41 + 20] = 1.0;
  const Tensor spread = gaussian_blur(from_values(impulse, {41, 41}, DType::f64), 2.0);
  CHECK(ops::sum(spread).item() == doctest::Approx(1.0));
  CHECK(ops::select(ops::select(spread, 0, 20), 0, 22).item() ==
        doctest::Approx(ops::select(ops::select(spread, 0, 18), 0, 20).item()));
  const double g1 = std::exp(-4.0 / 8.0), norm = [] {
    double s = 0;
    for (int d = -6; d <= 6; ++d) s += std::exp(-d * d / 8.0);
    return s;
  }();
  CHECK(ops::select(ops::select(spread, 0, 20), 0, 22).item() == doctest::Approx(g1 / (norm * norm)));
  CHECK(check_close(make_baseline(BaselineKind::blur, input, {.blur_sigma = 1.0}), gaussian_blur(input, 1.0), 0, 0, "blur"));
  // Names.
  CHECK(parse_baseline("black") == BaselineKind::black);
  CHECK(parse_baseline("zero") == BaselineKind::zeros);
  CHECK(std::string(baseline_name(BaselineKind::uniform)) == "uniform");
  CHECK_THROWS_WITH_AS(parse_baseline("grey"), doctest::Contains("grey"), Error);
  CHECK_THROWS_WITH_AS(make_baseline(BaselineKind::black, zeros({3, 4}), o), doctest::Contains("black"), Error);
  CHECK_THROWS_WITH_AS(make_baseline(BaselineKind::black, zeros({1, 2, 4, 4}), o), doctest::Contains("channels"), Error);
}

TEST_CASE("baselines: the report and its JSON name the baseline; IG on Fashion-MNIST is zero on black pixels (faith)") {
  nn::DataSpec spec;
  spec.source = "fashion-mnist";
  if (!fs::exists(spec.fashion_mnist_dir + "/t10k-images-idx3-ubyte.gz")) {
    MESSAGE("skipped: Fashion-MNIST (Debian's dataset-fashion-mnist) is not installed");
    return;
  }
  const fs::path dir = fresh_dir("loupe_test_baselines");
  // The demo's model layout (small-input ResNet18, 1 channel, 28 px) with Fashion-MNIST's
  // normalisation, untrained: the property holds for any weights.
  nn::ModelInfo info;
  info.model = "resnet18";
  info.small_input = true;
  info.width = 4;
  info.num_classes = 10;
  info.in_channels = 1;
  info.image_size = 28;
  const auto [mean, std] = nn::default_normalisation(spec);
  info.mean = {mean};
  info.std = {std};
  Generator gen(2);
  std::shared_ptr<nn::Module> model = nn::build_model(info, &gen);
  const std::string ckpt = (dir / "fashion.safetensors").string();
  nn::save_checkpoint(ckpt, *model, info);
  model = nn::load_model(ckpt, &info);
  const nn::DataSplit test = nn::open_split(spec, "test");
  ReportInput in;
  in.name = "shoe";
  in.source = "Fashion-MNIST test image 0";
  in.input = preprocess_image(test.dataset->get(0).image, info, &in.display);
  const std::vector<double> picture = values(in.display);
  int64_t black = 0;
  for (double p : picture) black += p == 0.0;
  REQUIRE(black > 100);  // the background

  auto run = [&](BaselineKind kind, const std::string& folder) {
    ReportOptions options;
    options.methods = {MethodKind::integrated_gradients, MethodKind::deeplift, MethodKind::input_x_gradient};
    options.steps = 8;
    options.target = "0";
    options.baseline_kind = kind;
    const Report report = explain_to_folder(*model, info, {in}, options, (dir / folder).string());
    const std::string json = report_json(report);
    CHECK(json.find(std::string("\"baseline\": \"") + baseline_name(kind) + "\"") != std::string::npos);
    const std::string html = report_html(report);
    CHECK(html.find(std::string("baseline: ") + baseline_name(kind)) != std::string::npos);
    return std::make_tuple(values(load_npy((dir / folder / "shoe_ig.npy").string())),
                           values(load_npy((dir / folder / "shoe_deeplift.npy").string())),
                           values(load_npy((dir / folder / "shoe_ixg.npy").string())));
  };
  ReportOptions defaults;
  CHECK(defaults.baseline_kind == BaselineKind::black);  // what the demo and loupe explain use
  for (BaselineKind kind : {BaselineKind::black, BaselineKind::zeros}) {
    CAPTURE(baseline_name(kind));
    const auto [ig, dl, ixg] = run(kind, baseline_name(kind));
    double max_all = 0, max_black = 0, dl_black = 0, ixg_black = 0, ixg_all = 0;
    for (size_t i = 0; i < ig.size(); ++i) {
      max_all = std::max(max_all, std::abs(ig[i]));
      ixg_all = std::max(ixg_all, std::abs(ixg[i]));
      if (picture[i] == 0.0) ixg_black = std::max(ixg_black, std::abs(ixg[i]));
      if (picture[i] == 0.0) {
        max_black = std::max(max_black, std::abs(ig[i]));
        dl_black = std::max(dl_black, std::abs(dl[i]));
      }
    }
    REQUIRE(max_all > 0.0);
    if (kind == BaselineKind::black) {
      CHECK(max_black <= 1e-6 * max_all);  // IG and DeepLIFT are (x - x') times a multiplier
      CHECK(dl_black <= 1e-6 * max_all);
      CHECK(ixg_black <= 1e-6 * ixg_all);  // the report's input x gradient is relative to it
    } else {
      CHECK(max_black > 1e-2 * max_all);  // the grey baseline lights up the background
      CHECK(ixg_black > 1e-2 * ixg_all);  // Captum's x * gradient does too
    }
  }
  // The text of the option in the report for a tensor baseline.
  ReportOptions file;
  file.baseline = zeros({1, 28, 28});
  CHECK(report_baseline_name(file) == "file");
  fs::remove_all(dir);
}

}  // namespace loupe::test
