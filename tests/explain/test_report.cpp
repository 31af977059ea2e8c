// Tests of explain/report.hpp (preprocessing, running every method into a folder, the HTML and
// JSON) and of `loupe explain` itself, run as a program when the build has it (build/cli/loupe).
// The model is a ResNet18 for one grey channel at 32x32 with three classes, saved as a checkpoint
// by the test; its inputs are PNG and .npy files the test writes.
#include <doctest/doctest.h>
#include <sys/wait.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "explain/explain.hpp"
#include "explain/feature_masks.hpp"
#include "explain/heatmap.hpp"
#include "explain/report.hpp"
#include "nn/checkpoint.hpp"
#include "nn/data/image.hpp"
#include "nn/data/transforms.hpp"
#include "nn/models/zoo.hpp"
#include "tensor/io/npy.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/support.hpp"

using namespace loupe;
using namespace loupe::explain;
namespace fs = std::filesystem;
using loupe::test::values;
using loupe::test::loupe_program;
using loupe::test::read_text;
using loupe::test::run_loupe_command;

namespace {

constexpr int64_t kSize = 32;

// A fresh, empty folder under the system's temporary directory.
fs::path fresh_dir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / name;
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

nn::ModelInfo tiny_info(bool multilabel) {
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 3;
  info.in_channels = 1;
  info.image_size = kSize;
  info.labels = {"cat", "dog", "bird"};
  info.multilabel = multilabel;
  info.mean = {0.5};
  info.std = {0.25};
  return info;
}

// A ResNet18 (1 channel, 3 classes) saved as a checkpoint. With `biases`, the last layer's bias is
// set to them so the predicted / positive classes are known.
std::string tiny_checkpoint(const fs::path& dir, bool multilabel, std::vector<double> biases = {}) {
  Generator gen(3);
  auto model = nn::make_model("resnet18", 3, 1, &gen);
  if (!biases.empty()) {
    nn::StateDict state = model->state_dict();
    state["fc.bias"] = from_values(biases, {3});
    model->load_state_dict(state);
  }
  const std::string path = (dir / (multilabel ? "multi.safetensors" : "single.safetensors")).string();
  nn::save_checkpoint(path, *model, tiny_info(multilabel));
  return path;
}

// A smooth (3, h, w) RGB test picture in [0, 1].
Tensor test_picture(int64_t h, int64_t w) {
  std::vector<double> v;
  for (int64_t c = 0; c < 3; ++c)
    for (int64_t y = 0; y < h; ++y)
      for (int64_t x = 0; x < w; ++x) v.push_back(0.5 + 0.45 * std::sin(0.3 * x + 0.2 * y + c));
  return from_values(v, {3, h, w});
}


bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("report: parse_methods takes short and long names, all, and rejects unknown or repeated ones") {
  CHECK(parse_methods("saliency,ig") ==
        std::vector<MethodKind>{MethodKind::saliency, MethodKind::integrated_gradients});
  CHECK(parse_methods("integrated_gradients,guided_backprop,deconvolution,input_x_gradient") ==
        std::vector<MethodKind>{MethodKind::integrated_gradients, MethodKind::guided_backprop,
                                MethodKind::deconvolution, MethodKind::input_x_gradient});
  CHECK(parse_methods("all").size() == report_methods().size());
  CHECK(parse_methods("deeplift,all").front() == MethodKind::deeplift);
  CHECK(parse_methods("deeplift,all").size() == report_methods().size());
  CHECK_THROWS_WITH_AS(parse_methods("saliency,lrp"), doctest::Contains("unknown method 'lrp'"), Error);
  CHECK(parse_methods("occlusion,feature_ablation,kernel_shap,shapley_sampling,c-lime") ==
        std::vector<MethodKind>{MethodKind::occlusion, MethodKind::feature_ablation, MethodKind::kernel_shap,
                                MethodKind::shapley_sampling, MethodKind::clime});
  CHECK_THROWS_WITH_AS(parse_methods("ig,ig"), doctest::Contains("listed twice"), Error);
  CHECK_THROWS_AS(parse_methods(""), Error);
  // Signed or absolute, as the heatmaps need.
  CHECK_FALSE(method_info(MethodKind::saliency).is_signed);
  CHECK_FALSE(method_info(MethodKind::smoothgrad).is_signed);
  CHECK(method_info(MethodKind::integrated_gradients).is_signed);
  CHECK(method_info(MethodKind::deeplift).name == "deeplift");
  CHECK(method_info(MethodKind::kernel_shap).is_signed);
  CHECK(uses_feature_mask(MethodKind::lime));
  CHECK_FALSE(uses_feature_mask(MethodKind::occlusion));
}

TEST_CASE("report: perturbation settings: automatic window, stride, samples and feature masks") {
  ReportOptions o;
  CHECK(occlusion_window(o, 224) == 15);  // Captum's study settings at 224 pixels
  CHECK(occlusion_stride(o, 224) == 8);
  CHECK(occlusion_window(o, 28) == 3);    // at least 3 pixels, stride at least 2
  CHECK(occlusion_stride(o, 28) == 2);
  CHECK(method_samples(MethodKind::smoothgrad, o) == 50);
  CHECK(method_samples(MethodKind::kernel_shap, o) == 1000);
  CHECK(method_samples(MethodKind::shapley_sampling, o) == 25);
  o.window = 5;
  o.stride = 4;
  o.samples = 7;
  CHECK(occlusion_window(o, 224) == 5);
  CHECK(occlusion_stride(o, 224) == 4);
  CHECK(method_samples(MethodKind::lime, o) == 7);

  const Tensor picture = test_picture(kSize, kSize);
  o.grid = "4x2";
  const Tensor grid = report_feature_mask(o, picture);
  CHECK(grid.shape() == Shape{kSize, kSize});
  CHECK(feature_count(grid) == 8);
  o.grid = "slic:6";
  const Tensor slic = report_feature_mask(o, picture);
  CHECK(feature_count(slic) >= 2);
  for (const char* bad : {"slic:", "slic:x", "slic:0", "8", "64x64"}) {
    o.grid = bad;
    CAPTURE(bad);
    CHECK_THROWS_AS(report_feature_mask(o, picture), Error);
  }
}

TEST_CASE("report: preprocessing follows the ModelInfo and unnormalise inverts it") {
  const nn::ModelInfo info = tiny_info(false);
  Tensor display;
  // A colour 16 x 8 picture: grey by luma, longer side to 32, padded to 32 x 32, then normalised.
  const Tensor picture = test_picture(16, 8);
  const Tensor input = preprocess_image(picture, info, &display);
  CHECK(input.shape() == Shape{1, kSize, kSize});
  CHECK(display.shape() == Shape{1, kSize, kSize});
  const auto d = values(display), x = values(input);
  for (size_t i = 0; i < d.size(); ++i) CHECK(x[i] == doctest::Approx((d[i] - 0.5) / 0.25).epsilon(1e-5));
  // The padding columns (the picture is 32 x 16 after resizing, centred) are black.
  CHECK(d[0] == 0.0);
  CHECK(d[kSize - 1] == 0.0);
  CHECK(d[kSize / 2] > 0.0);
  CHECK(loupe::test::check_close(unnormalise(input, info), display, 1e-6, 0, "unnormalise"));
  // An image already at the model's size passes through resize unchanged.
  const Tensor same = ops::select(test_picture(kSize, kSize), 0, 0);  // (H, W)
  Tensor same_display;
  preprocess_image(same, info, &same_display);
  CHECK(loupe::test::check_close(ops::select(same_display, 0, 0), same, 1e-6, 0, "identity resize"));
  CHECK_THROWS_AS(preprocess_image(zeros({2, 5, 5}), info), Error);
  CHECK_THROWS_AS(preprocess_image(zeros({1, 1, 5, 5}), info), Error);
}

TEST_CASE("report: load_report_input reads images and .npy arrays and names the file in errors") {
  const fs::path dir = fresh_dir("loupe_test_report_inputs");
  const nn::ModelInfo info = tiny_info(false);
  const std::string png = (dir / "pic.png").string();
  nn::save_png(png, test_picture(20, 24));
  const ReportInput a = load_report_input(png, info);
  CHECK(a.name == "pic");
  CHECK(a.input.shape() == Shape{1, kSize, kSize});

  // The same picture as .npy, (C, H, W) and (1, C, H, W) and (H, W): the same model input as the
  // PNG up to its 8-bit rounding.
  const Tensor decoded = nn::load_image(png);
  const std::string npy = (dir / "pic3.npy").string();
  save_npy(npy, decoded);
  CHECK(loupe::test::check_close(load_report_input(npy, info).input, a.input, 1e-5, 0, "npy (C, H, W)"));
  save_npy(npy, ops::unsqueeze(decoded, 0));
  CHECK(loupe::test::check_close(load_report_input(npy, info).input, a.input, 1e-5, 0, "npy (1, C, H, W)"));
  const std::string grey = (dir / "grey.npy").string();
  save_npy(grey, ops::select(nn::to_grey(decoded), 0, 0));
  CHECK(loupe::test::check_close(load_report_input(grey, info).input, a.input, 1e-5, 0, "npy (H, W)"));

  const std::string bad = (dir / "bad.npy").string();
  save_npy(bad, zeros({2, 2, 5, 5}));
  CHECK_THROWS_WITH_AS(load_report_input(bad, info), doctest::Contains("bad.npy"), Error);
  save_npy(bad, zeros({5, 5}, DType::i64));
  CHECK_THROWS_WITH_AS(load_report_input(bad, info), doctest::Contains("bad.npy"), Error);
  CHECK_THROWS_WITH_AS(load_report_input((dir / "missing.png").string(), info), doctest::Contains("missing.png"),
                       Error);
  fs::remove_all(dir);
}

TEST_CASE("report: every method into one folder: files, shapes, values, HTML and JSON") {
  const fs::path dir = fresh_dir("loupe_test_report_run");
  nn::ModelInfo info;
  // Class 1 ("dog") has by far the largest bias: it is the predicted class.
  const std::string ckpt = tiny_checkpoint(dir, false, {0.0, 30.0, 0.0});
  auto model = nn::load_model(ckpt, &info);
  const std::string png = (dir / "pic.png").string();
  nn::save_png(png, test_picture(kSize, kSize));
  std::vector<ReportInput> inputs = {load_report_input(png, info)};
  inputs.push_back(inputs[0]);  // the same name twice: the second becomes pic-2
  inputs[1].source = "copy";

  ReportOptions options;
  options.methods = parse_methods("all");
  options.steps = 4;
  options.samples = 3;
  options.internal_batch = 5;
  options.checkpoint = ckpt;
  std::vector<std::pair<int64_t, int64_t>> progress;
  options.progress = [&](int64_t done, int64_t total) { progress.emplace_back(done, total); };
  const fs::path out = dir / "out";
  const Report report = explain_to_folder(*model, info, inputs, options, out.string());

  const int64_t n_methods = static_cast<int64_t>(report_methods().size());
  REQUIRE(report.images.size() == 2);
  CHECK(report.images[0].name == "pic");
  CHECK(report.images[1].name == "pic-2");
  CHECK(report.output == Output::logit);  // single-label default
  CHECK(report.labels == std::vector<std::string>{"cat", "dog", "bird"});
  REQUIRE(progress.size() == static_cast<size_t>(2 * n_methods + 1));
  CHECK(progress.front() == std::make_pair<int64_t, int64_t>(0, 2 * n_methods));
  CHECK(progress.back() == std::make_pair<int64_t, int64_t>(2 * n_methods, 2 * n_methods));

  const ReportImage& image = report.images[0];
  CHECK(image.predicted == 1);
  double total_probability = 0;
  for (double p : image.probabilities) total_probability += p;
  CHECK(total_probability == doctest::Approx(1.0));  // softmax
  REQUIRE(image.targets.size() == 1);  // auto -> predicted
  CHECK(image.targets[0].index == 1);
  CHECK(image.targets[0].label == "dog");
  REQUIRE(image.targets[0].attributions.size() == static_cast<size_t>(n_methods));
  CHECK(fs::exists(out / "report.html"));
  CHECK(nn::load_image((out / "pic_input.png").string()).shape() == Shape{1, kSize, kSize});

  const Tensor x = ops::unsqueeze(inputs[0].input, 0);
  for (const ReportAttribution& a : image.targets[0].attributions) {
    CAPTURE(a.method);
    CHECK(a.npy == "pic_" + a.method + ".npy");
    CHECK(a.map_png == "pic_" + a.method + ".png");
    CHECK(a.overlay_png == "pic_" + a.method + "_overlay.png");
    const Tensor saved = load_npy((out / a.npy).string());
    CHECK(saved.shape() == Shape{1, kSize, kSize});
    CHECK(saved.dtype() == DType::f32);
    double sum = 0;
    bool finite = true;
    for (double v : values(saved)) {
      sum += v;
      finite = finite && std::isfinite(v);
    }
    CHECK(finite);
    CHECK(sum == doctest::Approx(a.total).epsilon(1e-4));
    if (!a.is_signed) {
      for (double v : values(saved)) CHECK(v >= 0.0);
    }
    CHECK(nn::load_image((out / a.map_png).string()).shape() == Shape{3, kSize, kSize});
    CHECK(nn::load_image((out / a.overlay_png).string()).shape() == Shape{3, kSize, kSize});
    CHECK(fs::exists(out / ("pic-2_" + a.method + ".npy")));
  }

  // The .npy files hold what the methods give when called directly, with the report's default
  // baseline: the black picture, normalised ((0 - 0.5) / 0.25 = -2 for this checkpoint).
  Query q{as_forward(*model), {x}, Target(1), Output::logit};
  const Tensor black = make_baseline(BaselineKind::black, x, {.mean = info.mean, .std = info.std});
  q.baselines = {Baseline(black)};
  // The report's input x gradient is relative to the baseline: (x - x') * gradient.
  CHECK(loupe::test::check_close(load_npy((out / "pic_ixg.npy").string()),
                                 ops::select(ops::mul(ops::sub(x, black), saliency(q, {.absolute = false}).attributions[0]), 0, 0),
                                 1e-6, 1e-5, "ixg"));
  CHECK(loupe::test::check_close(load_npy((out / "pic_saliency.npy").string()),
                                 ops::select(saliency(q).attributions[0], 0, 0), 1e-6, 1e-5, "saliency"));
  const Attribution ig = integrated_gradients(q, {.n_steps = 4, .return_convergence_delta = true});
  CHECK(loupe::test::check_close(load_npy((out / "pic_ig.npy").string()), ops::select(ig.attributions[0], 0, 0),
                                 1e-6, 1e-4, "ig"));
  const Attribution dl = deeplift(q, {.return_convergence_delta = true});
  CHECK(loupe::test::check_close(load_npy((out / "pic_deeplift.npy").string()), ops::select(dl.attributions[0], 0, 0),
                                 1e-6, 1e-4, "deeplift"));
  for (const ReportAttribution& a : image.targets[0].attributions) {
    if (a.method == "ig") CHECK(a.delta == doctest::Approx(ops::select(ig.delta, 0, 0).item()).epsilon(1e-3));
    if (a.method == "deeplift") CHECK(std::abs(a.delta) < 1e-3);
    if (a.method == "saliency") CHECK(std::isnan(a.delta));
  }
  // The deterministic perturbation methods, called directly with the report's settings.
  const Attribution occ = occlusion(q, {.windows = {Shape{1, 3, 3}}, .strides = {{1, 2, 2}}});
  CHECK(loupe::test::check_close(load_npy((out / "pic_occlusion.npy").string()), ops::select(occ.attributions[0], 0, 0),
                                 1e-6, 1e-5, "occlusion"));
  const Tensor grid = ops::unsqueeze(grid_feature_mask(kSize, kSize, 8, 8), 0);
  const Attribution ablation = feature_ablation(q, {.feature_mask = {grid}});
  CHECK(loupe::test::check_close(load_npy((out / "pic_ablation.npy").string()),
                                 ops::select(ablation.attributions[0], 0, 0), 1e-6, 1e-5, "ablation"));
  CHECK(image.features == 64);
  CHECK(image.mask_png == "pic_mask.png");
  CHECK(nn::load_image((out / "pic_mask.png").string()).shape() == Shape{3, kSize, kSize});
  // The heatmap PNG of ixg is the heatmap of the saved attribution.
  const Tensor ixg = load_npy((out / "pic_ixg.npy").string());
  const Heatmap h = make_heatmap(ixg, inputs[0].display);
  CHECK(loupe::test::check_close(nn::load_image((out / "pic_ixg.png").string()), h.colours, 0.5 / 255 + 1e-5, 0,
                                 "ixg png"));
  CHECK(loupe::test::check_close(nn::load_image((out / "pic_ixg_overlay.png").string()), h.overlay,
                                 0.5 / 255 + 1e-5, 0, "ixg overlay"));

  // The page references every file relatively; the JSON lists them.
  const std::string html = read_text(out / "report.html");
  CHECK(contains(html, "src=\"pic_input.png\""));
  CHECK(contains(html, "src=\"pic_smoothgrad_overlay.png\""));
  CHECK(contains(html, "src=\"pic-2_vargrad.png\""));
  CHECK(contains(html, "dog"));
  CHECK_FALSE(contains(html, out.string()));
  const std::string json = report_json(report);
  CHECK(contains(json, "\"npy\": \"pic_ig.npy\""));
  CHECK(contains(json, "\"label\": \"dog\""));
  CHECK(contains(json, "\"output\": \"logit\""));
  CHECK(contains(json, "\"delta\": null"));
  CHECK(contains(json, "\"mask_png\": \"pic_mask.png\""));
  CHECK(contains(json, "\"grid\": \"8x8\""));
  CHECK(contains(html, "src=\"pic_mask.png\""));
  fs::remove_all(dir);
}

TEST_CASE("report: targets on a multilabel model, several per image, and bad requests") {
  const fs::path dir = fresh_dir("loupe_test_report_targets");
  nn::ModelInfo info;
  // Labels cat and bird are certainly positive, dog certainly not.
  auto model = nn::load_model(tiny_checkpoint(dir, true, {30.0, -30.0, 30.0}), &info);
  const std::string png = (dir / "x.png").string();
  nn::save_png(png, test_picture(kSize, kSize));
  const std::vector<ReportInput> inputs = {load_report_input(png, info)};
  ReportOptions options;
  options.methods = {MethodKind::saliency, MethodKind::deeplift};
  const fs::path out = dir / "out";

  Report report = explain_to_folder(*model, info, inputs, options, out.string());
  CHECK(report.output == Output::sigmoid);  // multilabel default
  REQUIRE(report.images[0].targets.size() == 2);  // auto -> all-positive
  CHECK(report.images[0].targets[0].label == "cat");
  CHECK(report.images[0].targets[1].label == "bird");
  CHECK(report.images[0].targets[0].probability > 0.99);
  CHECK(fs::exists(out / "x_cat_saliency.npy"));
  CHECK(fs::exists(out / "x_bird_deeplift_overlay.png"));
  CHECK_FALSE(fs::exists(out / "x_saliency.npy"));

  // Perturbation methods answer both targets from the same passes; each equals its own run.
  options.methods = {MethodKind::occlusion, MethodKind::kernel_shap};
  options.samples = 20;
  options.grid = "4x4";
  report = explain_to_folder(*model, info, inputs, options, out.string());
  const Tensor both_occ = load_npy((out / "x_bird_occlusion.npy").string());
  const Tensor both_shap = load_npy((out / "x_bird_kernelshap.npy").string());
  options.target = "bird";
  report = explain_to_folder(*model, info, inputs, options, out.string());
  CHECK(loupe::test::check_close(both_occ, load_npy((out / "x_occlusion.npy").string()), 1e-6, 1e-5, "occlusion"));
  // KernelSHAP draws the coalitions of an input row once for all of its targets.
  CHECK(loupe::test::check_close(both_shap, load_npy((out / "x_kernelshap.npy").string()), 1e-6, 1e-4, "kernelshap"));
  options.target = "auto";
  options.samples = 0;
  options.grid = "8x8";
  options.methods = {MethodKind::saliency, MethodKind::deeplift};

  // A list of labels and indices; one target keeps the short names.
  options.target = "dog";
  report = explain_to_folder(*model, info, inputs, options, out.string());
  REQUIRE(report.images[0].targets.size() == 1);
  CHECK(report.images[0].targets[0].index == 1);
  CHECK(fs::exists(out / "x_saliency.npy"));
  options.target = "2,cat";
  report = explain_to_folder(*model, info, inputs, options, out.string());
  REQUIRE(report.images[0].targets.size() == 2);
  CHECK(report.images[0].targets[0].index == 2);
  CHECK(report.images[0].targets[1].index == 0);
  // A per-image target overrides the options'; without a picture, the overlay uses the input with
  // its normalisation undone.
  std::vector<ReportInput> own = inputs;
  own[0].target = "predicted";
  own[0].display = Tensor();
  report = explain_to_folder(*model, info, own, options, out.string());
  REQUIRE(report.images[0].targets.size() == 1);
  CHECK(loupe::test::check_close(nn::load_image((out / "x_input.png").string()), inputs[0].display, 0.5 / 255 + 1e-5,
                                 0, "picture from the input"));
  own[0].display = zeros({1, 8, 8});
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, own, options, out.string()), doctest::Contains("picture"),
                       Error);

  // Explicit output and a baseline file's tensor; DeepLIFT's delta stays small for any baseline.
  options.target = "cat";
  options.output = Output::logit;
  options.baseline = full({1, kSize, kSize}, -1.0);
  report = explain_to_folder(*model, info, inputs, options, out.string());
  CHECK(report.output == Output::logit);
  CHECK(std::abs(report.images[0].targets[0].attributions[1].delta) < 1e-2);

  // Bad requests raise errors that say what is wrong.
  options.baseline = zeros({2, 3, 3});
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, inputs, options, out.string()),
                       doctest::Contains("baseline"), Error);
  options.baseline = Tensor();
  options.target = "horse";
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, inputs, options, out.string()), doctest::Contains("horse"),
                       Error);
  options.target = "3";
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, inputs, options, out.string()),
                       doctest::Contains("out of range"), Error);
  options.target = "auto";
  options.steps = 0;
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, inputs, options, out.string()), doctest::Contains("steps"),
                       Error);
  options.steps = 50;
  std::vector<ReportInput> wrong = inputs;
  wrong[0].input = zeros({1, 16, 16});
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, wrong, options, out.string()), doctest::Contains("shape"),
                       Error);
  CHECK_THROWS_AS(explain_to_folder(*model, info, {}, options, out.string()), Error);
  // The output folder cannot be a file.
  std::ofstream((dir / "file").string()) << "x";
  CHECK_THROWS_WITH_AS(explain_to_folder(*model, info, inputs, options, (dir / "file").string()),
                       doctest::Contains("output folder"), Error);
  fs::remove_all(dir);
}

// --- the command, run as a program ------------------------------------------------------------

namespace {

// `loupe explain args` (tests/cli_test_util.hpp).
int run_loupe(const std::string& program, const std::string& args, const fs::path& dir, std::string* out = nullptr,
             std::string* err = nullptr) {
  return run_loupe_command(program, "explain", args, dir, out, err);
}

}  // namespace

TEST_CASE("loupe explain: the command writes the files and rejects bad options naming them") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("build/cli/loupe not found next to the test program: command test skipped");
    return;
  }
  const fs::path dir = fresh_dir("loupe_test_explain_cli");
  const std::string ckpt = tiny_checkpoint(dir, false, {0.0, 0.0, 30.0});
  const std::string png = (dir / "a.png").string(), npy = (dir / "b.npy").string();
  nn::save_png(png, test_picture(24, kSize));
  save_npy(npy, ops::select(test_picture(kSize, kSize), 0, 0));
  const fs::path out = dir / "out";
  auto q = [](const fs::path& p) {  // single-quoted for the shell
    std::string quoted = p.string();
    quoted.push_back('\'');
    return std::string(1, '\'') + quoted;
  };

  std::string stdout_text, stderr_text;
  const std::string good = "--model " + q(ckpt) + " --input " + q(png) + " --input=" + q(npy) +
                           " --method saliency,ig,smoothgrad --steps 3 --samples 2 --out " + q(out);
  REQUIRE(run_loupe(program, good + " --json", dir, &stdout_text, &stderr_text) == 0);
  for (const char* name : {"a_input.png", "a_saliency.npy", "a_ig.png", "a_smoothgrad_overlay.png", "b_ig.npy",
                           "report.html", "summary.json"})
    CHECK_MESSAGE(fs::exists(out / name), name);
  CHECK(load_npy((out / "a_ig.npy").string()).shape() == Shape{1, kSize, kSize});
  CHECK(nn::load_image((out / "b_smoothgrad.png").string()).shape() == Shape{3, kSize, kSize});
  CHECK(contains(stdout_text, "\"label\": \"bird\""));  // --json prints the summary
  CHECK(read_text(out / "summary.json") == stdout_text);
  CHECK(contains(read_text(out / "report.html"), ckpt));

  REQUIRE(run_loupe(program, good, dir, &stdout_text) == 0);
  CHECK(contains(stdout_text, "report: "));
  // --fold-batch-norm: ResNet18's 20 batch norms fold; the attributions agree to 1e-5 of scale.
  const fs::path folded = dir / "folded";
  REQUIRE(run_loupe(program,
                    "--model " + q(ckpt) + " --input " + q(png) + " --method saliency,ig,guided,deeplift --steps 3 --out " +
                        q(folded) + " --fold-batch-norm",
                    dir, &stdout_text, &stderr_text) == 0);
  CHECK(contains(stderr_text, "folded 20 batch norms"));
  for (const char* name : {"a_saliency.npy", "a_ig.npy"}) {
    const Tensor plain = load_npy((out / name).string()), fast = load_npy((folded / name).string());
    const Tensor scale = ops::amax(ops::abs(plain));
    CHECK_MESSAGE(loupe::test::max_abs_diff(plain, fast) <= 1e-5 * scale.item(), name);
  }
  REQUIRE(run_loupe(program, "--help", dir, &stdout_text) == 0);
  CHECK(contains(stdout_text, "--internal-batch"));
  CHECK(contains(stdout_text, "--grid"));
  // A long option puts its text on the next line instead of running into it.
  CHECK(contains(stdout_text, "--perturbations-per-eval N\n"));
  // The perturbation methods from the command line, with their options.
  const fs::path out2 = dir / "out2";
  REQUIRE(run_loupe(program,
                    "--model " + q(ckpt) + " --input " + q(png) +
                        " --method occlusion,ablation,lime,clime,kernelshap,shapley --window 4 --stride 2 --grid 4x4"
                        " --samples 16 --perturbations-per-eval 5 --out " + q(out2) + " --json",
                    dir, &stdout_text, &stderr_text) == 0);
  for (const char* name : {"a_occlusion.npy", "a_ablation.png", "a_lime.npy", "a_clime.npy", "a_kernelshap_overlay.png",
                           "a_shapley.npy", "a_mask.png"})
    CHECK_MESSAGE(fs::exists(out2 / name), name);
  CHECK(contains(stdout_text, "\"window\": 4"));
  CHECK(contains(stdout_text, "\"features\": 16"));

  // Errors: exit code 1 (user error) and a message naming the option or file.
  auto fails_with = [&](const std::string& args, const std::string& part) {
    CAPTURE(args);
    CHECK(run_loupe(program, args, dir, nullptr, &stderr_text) == 1);
    CHECK_MESSAGE(contains(stderr_text, part), stderr_text);
  };
  fails_with("--model " + q(ckpt) + " --input " + q(png), "--out");
  fails_with("--model " + q(ckpt) + " --out " + q(out), "--input");
  fails_with(good + " --method saliency,shap", "shap");
  fails_with(good + " --steps many", "--steps");
  fails_with(good + " --output probability", "--output");
  fails_with(good + " --baseline base.txt", "--baseline");
  fails_with(good + " --target zebra", "zebra");
  fails_with(good + " --frobnicate 3", "--frobnicate");
  fails_with(good + " --method kernelshap --grid 8by8", "8by8");
  fails_with(good + " --method occlusion --window 0", "--window");
  fails_with(good + " --method occlusion --window 40", "window");
  fails_with(good + " --perturbations-per-eval -2", "--perturbations-per-eval");
  fails_with("--model " + q(dir / "nope.safetensors") + " --input " + q(png) + " --out " + q(out), "nope.safetensors");
  fails_with("--model " + q(ckpt) + " --input " + q(dir / "nope.png") + " --out " + q(out), "nope.png");
  fs::remove_all(dir);
}
