// `loupe evaluate-explanations images`: how faithful are the attribution methods on image models?
//
//   loupe evaluate-explanations images [--quick] [--model CKPT] [--fashion-model CKPT] --out DIR [--json]
//
// Two models: a ResNet18 on the chest X-rays (multilabel covid19/pneumonia/no_finding, trained
// here unless --model is given) and a small ResNet on Fashion-MNIST (the demo's layout, trained
// here unless --fashion-model is given). The suite measures, per method:
//   - deletion and insertion curves with their AUC (pixel order, baseline fill; deletion also with
//     a blur fill), infidelity (Gaussian and subset perturbations), max-sensitivity (gradient
//     methods), faithfulness correlation (on an 8x8 grid), and on the X-rays the share of
//     |attribution| in the outer 10% border against a central "lung box" (the data set's
//     confounders: markers, devices and borders differ between hospitals);
//   - the cascading randomisation check (Spearman rank correlation per randomised block);
//   - the baseline study: IG, DeepLIFT and occlusion under the black, zeros, blur, uniform and
//     mean baselines on both models.
// It writes DIR/per_image.csv, curves.csv, randomisation.csv, baselines.csv, summary.json,
// heatmap PNGs and report.html (tables, SVG curves). Library code: explain/evaluate/ and
// explain/baselines.hpp. Progress goes to stderr when it is a terminal.
// Tests: tests/explain/test_evaluate_images.cpp (the --quick run through the built program).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <sstream>

#include "autograd/grad_mode.hpp"
#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/progress.hpp"
#include "cli/train_common.hpp"
#include "explain/baselines.hpp"
#include "explain/evaluate/faithfulness.hpp"
#include "explain/evaluate/sanity.hpp"
#include "explain/explain.hpp"
#include "explain/heatmap.hpp"
#include "explain/report.hpp"
#include "nn/checkpoint.hpp"
#include "nn/training.hpp"
#include "report/html.hpp"
#include "report/svg_plot.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"
#include "tensor/ops.hpp"

namespace loupe::cli {

namespace {

namespace fs = std::filesystem;
namespace ex = explain;
namespace ev = explain::evaluate;
using ex::MethodKind;

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

const std::vector<OptionSpec> kOptions = {
    {"quick", "", "", "tiny models, few images and steps (about a minute; what the tests run)"},
    {"model", "CKPT", "", "chest X-ray checkpoint (labels covid19,pneumonia,no_finding); default: train a ResNet18"},
    {"fashion-model", "CKPT", "", "Fashion-MNIST checkpoint for the baseline study; default: train a small ResNet"},
    {"data", "CSV", "", "chest X-ray labels.csv (default: $LOUPE_DATA_DIR/cxr/labels.csv, else ../shared/data/cxr/labels.csv)"},
    {"fashion-data", "DIR", "/usr/share/datasets/fashion-mnist", "folder with the four Fashion-MNIST .gz files"},
    {"methods", "LIST", "auto", "methods as in loupe explain (auto: all; --quick: saliency,ixg,ig,deeplift,occlusion,kernelshap)"},
    {"images", "N", "auto", "test images per model (auto: 8; --quick 2)"},
    {"sanity-images", "N", "auto", "images of the randomisation check (auto: 2; --quick 1)"},
    {"sanity-blocks", "KIND", "stages", "randomisation steps: stages (fc, layer4, ..., conv1) or blocks (fc, layer4.1, ...)"},
    {"image-size", "PX", "auto", "chest X-ray training size (auto: 128; --quick 32)"},
    {"epochs", "N", "auto", "chest X-ray training epochs (auto: 5; --quick 1)"},
    {"steps", "N", "auto", "deletion/insertion steps (auto: 20; --quick 8)"},
    {"ig-steps", "N", "auto", "IG Gauss-Legendre points (auto: 16; --quick 4)"},
    {"samples", "N", "auto", "LIME, C-LIME, KernelSHAP samples (auto: 200; --quick 16)"},
    {"seed", "N", "0", "seed of training, sampling methods and metric noise"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N"},
    {"out", "DIR", "", "output folder (created if missing)"},
    {"json", "", "", "print summary.json instead of the text summary"},
};

const char* kSummary =
    "Faithfulness of the attribution methods on image models: deletion/insertion AUC, infidelity,\n"
    "max-sensitivity, faithfulness correlation, border-vs-lung attribution mass on chest X-rays, the\n"
    "cascading randomisation check, and the baseline study (black, zeros, blur, uniform, mean) for IG,\n"
    "DeepLIFT and occlusion on a chest X-ray ResNet18 and a Fashion-MNIST ResNet. Trains both models\n"
    "unless checkpoints are given. Writes CSV files, summary.json, heatmaps and report.html to --out.";

struct Settings {
  bool quick = false;
  std::vector<MethodKind> methods;
  int64_t images = 8, sanity_images = 2, image_size = 128, epochs = 5, steps = 20, ig_steps = 16, samples = 200;
  bool stage_blocks = true;
  uint64_t seed = 0;
  Device device = Device::cpu();
  std::string out;
};

int64_t auto_int(const Args& args, const std::string& name, int64_t full, int64_t quick, bool is_quick) {
  if (args.get(name) == "auto") return is_quick ? quick : full;
  const int64_t v = args.get_int(name);
  LOUPE_CHECK(v >= 1, "option --", name, ": expected auto or a positive integer, got ", v);
  return v;
}

std::string default_cxr_csv() {
  if (const char* env = std::getenv("LOUPE_DATA_DIR"); env != nullptr && *env != '\0') {
    for (const fs::path& p : {fs::path(env) / "cxr" / "labels.csv", fs::path(env) / "labels.csv"})
      if (fs::exists(p)) return p.string();
  }
  return "../shared/data/cxr/labels.csv";
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// --- models ----------------------------------------------------------------------------------

struct ModelCase {
  std::string name;        // "cxr" or "fashion"
  std::string title;
  std::shared_ptr<nn::Module> model;
  nn::ModelInfo info;
  std::string checkpoint;
  std::string training;    // how it was trained (or loaded)
  double test_metric = kNaN;
  std::string test_metric_name;
  ex::Output output = ex::Output::logit;
  Tensor inputs;           // (N, C, H, W) normalised, on the device
  std::vector<int64_t> targets;
  std::vector<std::string> image_names;
  std::vector<Tensor> pictures;  // (C, H, W) in [0, 1], CPU
  std::vector<double> data_mean;  // per-channel pixel mean of training images
};

// Trains a zoo model on `dataset` with Adam and a cosine schedule, saves it and loads it back
// (eval mode).
std::shared_ptr<nn::Module> train_model(nn::ModelInfo& info, std::shared_ptr<nn::Dataset> dataset, int64_t epochs,
                                        int64_t batch_size, double weight_decay, uint64_t seed, Device device,
                                        const std::string& path, const std::string& label) {
  Generator generator(seed);
  std::shared_ptr<nn::Module> model = nn::build_model(info, &generator);
  model->to(device);
  nn::OptimizerConfig adam;
  adam.name = "adam";
  adam.lr = 1e-3;
  adam.weight_decay = weight_decay;
  std::shared_ptr<nn::Optimizer> optimizer = nn::make_optimizer(adam, model->parameters());
  nn::LoaderOptions lo;
  lo.batch_size = batch_size;
  lo.shuffle = true;
  lo.seed = seed;
  auto loader = std::make_shared<nn::DataLoader>(dataset, lo, nn::image_transform(info));
  nn::TrainOptions options;
  options.multilabel = info.multilabel;
  options.schedule.kind = nn::ScheduleKind::cosine;
  options.schedule.base_lr = adam.lr;
  options.schedule.total = epochs * loader->batches_per_epoch();
  nn::Trainer trainer(model, optimizer, loader, options, &generator);
  while (trainer.epoch() < epochs) {
    ProgressBar bar(label + " epoch " + std::to_string(trainer.epoch() + 1) + "/" + std::to_string(epochs),
                    loader->batches_per_epoch());
    trainer.train_epoch([&](const nn::StepInfo& s) { bar.update(s.batch, "loss " + std::to_string(s.mean_loss)); });
    bar.finish();
  }
  trainer.save_checkpoint(path, info);
  std::shared_ptr<nn::Module> loaded = nn::load_model(path, &info);
  loaded->to(device);
  return loaded;
}

// Mean of the first n images of a dataset, per channel, in pixel space (the transform's picture
// before normalisation is recovered from the normalised tensor).
std::vector<double> pixel_mean(const nn::Dataset& dataset, const nn::ModelInfo& info, int64_t n) {
  const nn::Compose transform = nn::image_transform(info);
  Generator generator(0);
  std::vector<double> sums(static_cast<size_t>(info.in_channels), 0.0);
  const int64_t count = std::min(n, dataset.size());
  for (int64_t i = 0; i < count; ++i) {
    const Tensor x = ex::unnormalise(transform(dataset.get(i).image, generator), info);  // (C, H, W)
    const std::vector<double> m = to_vector<double>(ops::mean(ops::to_dtype(x, DType::f64), {1, 2}));
    for (size_t c = 0; c < sums.size(); ++c) sums[c] += m[c];
  }
  for (double& s : sums) s /= static_cast<double>(std::max<int64_t>(count, 1));
  return sums;
}

// Test metric of a model on (at most `limit` examples of) a split.
double test_metric(nn::Module& model, const nn::ModelInfo& info, std::shared_ptr<nn::Dataset> test, int64_t limit) {
  nn::LoaderOptions lo;
  lo.batch_size = 32;
  nn::DataLoader loader(nn::first_examples(test, limit), lo, nn::image_transform(info));
  const nn::Predictions p = nn::predict(model, loader, info.multilabel);
  const nn::MetricsReport r = nn::report(p, info.multilabel, info.labels);
  return info.multilabel ? r.micro_f1 : r.accuracy;
}

// Stacks the chosen test images (normalised) and their pictures.
void add_images(ModelCase& m, const nn::Dataset& test, const std::vector<int64_t>& indices,
                const std::vector<int64_t>& targets, const Settings& s) {
  const nn::Compose transform = nn::image_transform(m.info);
  Generator generator(0);
  std::vector<Tensor> rows;
  for (size_t i = 0; i < indices.size(); ++i) {
    const Tensor x = transform(test.get(indices[i]).image, generator);
    rows.push_back(ops::unsqueeze(ops::to_dtype(x, DType::f32), 0));
    m.pictures.push_back(ex::unnormalise(x, m.info));
    std::string name = fs::path(test.describe(indices[i])).stem().string();
    if (name.empty() || name[0] == '#') name = m.name + std::to_string(indices[i]);
    m.image_names.push_back(name);
  }
  m.inputs = ops::to_device(ops::cat(rows, 0), s.device);
  m.targets = targets;
}

ModelCase cxr_case(const Args& args, const Settings& s) {
  ModelCase m;
  m.name = "cxr";
  m.title = "Chest X-rays (ResNet18, multilabel)";
  m.output = ex::Output::sigmoid;
  nn::DataSpec spec;
  spec.source = args.get("data").empty() ? default_cxr_csv() : args.get("data");
  LOUPE_CHECK(fs::exists(spec.source), "evaluate-explanations images: the chest X-ray labels '", spec.source,
              "' do not exist (give --data PATH/labels.csv or set LOUPE_DATA_DIR)");
  spec.label_columns = {"covid19", "pneumonia", "no_finding"};
  spec.split_column = "split";
  const nn::DataSplit train = nn::open_split(spec, "train");
  const nn::DataSplit test = nn::open_split(spec, "test");
  const auto start = std::chrono::steady_clock::now();
  if (!args.get("model").empty()) {
    m.checkpoint = args.get("model");
    m.model = nn::load_model(m.checkpoint, &m.info);
    m.model->to(s.device);
    LOUPE_CHECK(m.info.multilabel && m.info.num_classes == 3, "evaluate-explanations images: --model '", m.checkpoint,
                "' is not a 3-label multilabel model (covid19, pneumonia, no_finding)");
    m.training = "loaded from " + m.checkpoint;
  } else {
    m.info.model = "resnet18";
    m.info.num_classes = 3;
    m.info.in_channels = 3;
    m.info.image_size = s.image_size;
    m.info.labels = train.label_names;
    m.info.multilabel = true;
    const auto [mean, std] = nn::default_normalisation(spec);
    m.info.mean = {mean};
    m.info.std = {std};
    if (s.quick) m.info.width = 8;
    const int64_t limit = s.quick ? 96 : train.dataset->size();
    m.checkpoint = (fs::path(s.out) / "cxr_resnet18.safetensors").string();
    m.model = train_model(m.info, nn::first_examples(train.dataset, limit), s.epochs, 8, 1e-4, s.seed, s.device,
                          m.checkpoint, "cxr");
    std::ostringstream t;
    t << "ResNet18" << (s.quick ? " (width 8)" : "") << " trained here from scratch: " << limit
      << " training images at " << s.image_size << " px, " << s.epochs
      << " epochs, Adam lr 1e-3 (cosine), weight decay 1e-4, batch 8, BCE with logits; "
      << static_cast<int64_t>(seconds_since(start)) << " s";
    m.training = t.str();
  }
  m.test_metric = test_metric(*m.model, m.info, test.dataset, s.quick ? 32 : test.dataset->size());
  m.test_metric_name = "test micro-F1";
  m.data_mean = pixel_mean(*train.dataset, m.info, s.quick ? 16 : 128);
  // Test images, round robin over COVID-19, other pneumonia and no finding; each explained for
  // its own label (covid19, pneumonia, no_finding).
  std::vector<std::vector<int64_t>> by_class(3);
  for (int64_t i = 0; i < test.dataset->size(); ++i) {
    const std::vector<double> l = to_vector<double>(ops::to_dtype(test.dataset->get(i).label, DType::f64));
    const int64_t c = l[0] > 0.5 ? 0 : (l[1] > 0.5 ? 1 : 2);
    if (static_cast<int64_t>(by_class[static_cast<size_t>(c)].size()) < s.images) by_class[static_cast<size_t>(c)].push_back(i);
    if (std::all_of(by_class.begin(), by_class.end(), [&](const auto& v) { return static_cast<int64_t>(v.size()) >= s.images; })) break;
  }
  std::vector<int64_t> indices, targets;
  for (size_t k = 0; static_cast<int64_t>(indices.size()) < s.images; ++k) {
    bool any = false;
    for (int64_t c = 0; c < 3 && static_cast<int64_t>(indices.size()) < s.images; ++c) {
      if (k < by_class[static_cast<size_t>(c)].size()) {
        indices.push_back(by_class[static_cast<size_t>(c)][k]);
        targets.push_back(c);
        any = true;
      }
    }
    if (!any) break;
  }
  add_images(m, *test.dataset, indices, targets, s);
  return m;
}

ModelCase fashion_case(const Args& args, const Settings& s) {
  ModelCase m;
  m.name = "fashion";
  m.title = "Fashion-MNIST (ResNet, small-input stem)";
  m.output = ex::Output::softmax;
  nn::DataSpec spec;
  spec.source = "fashion-mnist";
  spec.fashion_mnist_dir = args.get("fashion-data");
  const nn::DataSplit train = nn::open_split(spec, "train");
  const nn::DataSplit test = nn::open_split(spec, "test");
  const auto start = std::chrono::steady_clock::now();
  if (!args.get("fashion-model").empty()) {
    m.checkpoint = args.get("fashion-model");
    m.model = nn::load_model(m.checkpoint, &m.info);
    m.model->to(s.device);
    m.training = "loaded from " + m.checkpoint;
  } else {
    m.info.model = "resnet18";
    m.info.small_input = true;
    m.info.width = s.quick ? 8 : 16;
    m.info.num_classes = 10;
    m.info.in_channels = 1;
    m.info.image_size = 28;
    m.info.labels = train.label_names;
    const auto [mean, std] = nn::default_normalisation(spec);
    m.info.mean = {mean};
    m.info.std = {std};
    const int64_t limit = s.quick ? 512 : 10000;
    m.checkpoint = (fs::path(s.out) / "fashion_resnet.safetensors").string();
    m.model = train_model(m.info, nn::first_examples(train.dataset, limit), 1, 64, 0.0, s.seed, s.device, m.checkpoint,
                          "fashion");
    std::ostringstream t;
    t << "the demo's ResNet18 layout (small-input stem, width " << m.info.width << ") trained here: first " << limit
      << " training images, 1 epoch, Adam lr 1e-3 (cosine), batch 64; " << static_cast<int64_t>(seconds_since(start))
      << " s";
    m.training = t.str();
  }
  m.test_metric = test_metric(*m.model, m.info, test.dataset, s.quick ? 256 : 2000);
  m.test_metric_name = s.quick ? "accuracy (256 test images)" : "accuracy (2000 test images)";
  m.data_mean = pixel_mean(*train.dataset, m.info, s.quick ? 64 : 1000);
  std::vector<int64_t> indices, targets;
  for (int64_t i = 0; i < s.images; ++i) {
    indices.push_back(i);
    targets.push_back(static_cast<int64_t>(test.dataset->get(i).label.item()));
  }
  add_images(m, *test.dataset, indices, targets, s);
  return m;
}

// --- running the methods ---------------------------------------------------------------------

ex::ReportOptions method_options(const Settings& s, const ModelCase& m, MethodKind kind) {
  ex::ReportOptions o;
  o.steps = s.ig_steps;
  o.internal_batch = 32;
  switch (kind) {
    case MethodKind::smoothgrad:
    case MethodKind::smoothgrad_sq:
    case MethodKind::vargrad: o.samples = s.quick ? 4 : 20; break;
    case MethodKind::shapley_sampling: o.samples = s.quick ? 1 : 2; break;
    default: o.samples = s.samples;
  }
  o.window = std::max<int64_t>(2, m.info.image_size / 8);
  o.stride = std::max<int64_t>(1, o.window / 2);
  o.grid = s.quick ? "4x4" : "8x8";
  o.seed = s.seed;
  return o;
}

int64_t grid_cells(const Settings& s) { return s.quick ? 4 : 8; }

// The method as an explain::Method; each call starts the sampling methods from the same seed, so
// re-running on changed weights or inputs does not add sampling noise of its own.
ex::Method method_fn(const Settings& s, const ModelCase& m, MethodKind kind) {
  const ex::ReportOptions o = method_options(s, m, kind);
  const int64_t size = m.info.image_size, cells = grid_cells(s);
  const uint64_t seed = s.seed;
  return [o, kind, size, cells, seed](const ex::Query& q) {
    Generator generator(seed + 17);
    Tensor mask;
    if (ex::uses_feature_mask(kind)) {
      mask = ops::to_device(ops::unsqueeze(ex::grid_feature_mask(size, size, cells, cells), 0), q.inputs[0].device());
    }
    return ex::run_report_method(kind, q, o, generator, mask, size);
  };
}

bool is_perturbation_method(MethodKind kind) {
  switch (kind) {
    case MethodKind::occlusion:
    case MethodKind::feature_ablation:
    case MethodKind::lime:
    case MethodKind::clime:
    case MethodKind::kernel_shap:
    case MethodKind::shapley_sampling: return true;
    default: return false;
  }
}

// Attributions of the form (x - x') * multiplier, for which Captum's infidelity divides the
// perturbation by (x - x') (multiply_by_inputs); the others are gradients.
bool multiplies_inputs(MethodKind kind) {
  switch (kind) {
    case MethodKind::saliency:
    case MethodKind::guided_backprop:
    case MethodKind::deconvolution:
    case MethodKind::smoothgrad:
    case MethodKind::smoothgrad_sq:
    case MethodKind::vargrad:
    case MethodKind::clime: return false;
    default: return true;
  }
}

ex::Query make_query(const ModelCase& m, const Tensor& inputs, const std::vector<int64_t>& targets, ex::BaselineKind b,
                     uint64_t seed) {
  ex::Query q{ex::as_forward(*m.model), {inputs}, ex::Target::per_row(targets), m.output};
  q.baselines = {ex::Baseline(ex::make_baseline(
      b, inputs, {.mean = m.info.mean, .std = m.info.std, .data_mean = m.data_mean, .seed = seed}))};
  return q;
}

// --- statistics --------------------------------------------------------------------------------

std::vector<double> values_of(const Tensor& t) {
  return to_vector<double>(ops::to_device(ops::to_dtype(t, DType::f64), Device::cpu()));
}

double mean_of(const std::vector<double>& v) {
  double s = 0;
  int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) s += x, ++n;
  return n ? s / static_cast<double>(n) : kNaN;
}

// Standard error of the mean (NaN below two finite values).
double sem_of(const std::vector<double>& v) {
  const double m = mean_of(v);
  double ss = 0;
  int64_t n = 0;
  for (double x : v)
    if (std::isfinite(x)) ss += (x - m) * (x - m), ++n;
  return n > 1 ? std::sqrt(ss / static_cast<double>(n - 1) / static_cast<double>(n)) : kNaN;
}

std::string num(double v, int digits = 4) { return report::format_number(v, digits); }
std::string mean_sem(const std::vector<double>& v, int digits = 3) {
  const double m = mean_of(v), e = sem_of(v);
  if (!std::isfinite(m)) return "n/a";
  return std::isfinite(e) ? report::format_mean_std(m, e, digits) : num(m, digits);
}

std::string json_number(double v) {
  if (!std::isfinite(v)) return "null";
  std::ostringstream s;
  s.precision(9);
  s << v;
  return s.str();
}

// --- results -----------------------------------------------------------------------------------

struct MethodResult {
  std::string model, method, title;
  bool is_signed = true;
  // Per image.
  std::vector<double> del, ins, del_blur, inf_gauss, inf_subset, sens, corr, border, centre;
  std::vector<double> fractions, del_curve, ins_curve;  // mean curves
  double seconds = 0.0;                                 // attribution time per image
  std::vector<ev::RandomisationStep> sanity;
};

struct BaselineResult {
  std::string model, baseline, method;
  std::vector<double> del, ins, spearman_vs_black, region;  // region: border (cxr) or background (fashion) share
  std::vector<double> background_max;                      // fashion: max |attr| on black pixels / max |attr|
};

// Share of |attribution| on the pixels where the picture is black (0 in the 8-bit image), per row:
// the Fashion-MNIST background.
std::vector<double> background_share(const Tensor& attr, const std::vector<Tensor>& pictures, std::vector<double>* max_ratio) {
  std::vector<double> out;
  const Tensor a = ops::to_device(ops::to_dtype(attr, DType::f64), Device::cpu());
  for (int64_t r = 0; r < a.size(0); ++r) {
    const std::vector<double> mass = to_vector<double>(ops::sum(ops::abs(ops::select(a, 0, r)), {0}));  // (H W)
    const std::vector<double> pic = to_vector<double>(ops::mean(ops::to_dtype(pictures[static_cast<size_t>(r)], DType::f64), {0}));
    double bg = 0, total = 0, bg_max = 0, all_max = 0;
    for (size_t i = 0; i < mass.size(); ++i) {
      total += mass[i];
      all_max = std::max(all_max, mass[i]);
      if (pic[i] < 0.5 / 255.0) {  // black in the 8-bit picture
        bg += mass[i];
        bg_max = std::max(bg_max, mass[i]);
      }
    }
    out.push_back(total > 0 ? bg / total : kNaN);
    if (max_ratio) max_ratio->push_back(all_max > 0 ? bg_max / all_max : kNaN);
  }
  return out;
}

std::vector<double> row_spearman(const Tensor& a, const Tensor& b) {
  const Tensor x = ops::to_device(ops::to_dtype(a, DType::f64), Device::cpu());
  const Tensor y = ops::to_device(ops::to_dtype(b, DType::f64), Device::cpu());
  std::vector<double> out;
  for (int64_t r = 0; r < x.size(0); ++r)
    out.push_back(ev::spearman(to_vector<double>(ops::select(x, 0, r)), to_vector<double>(ops::select(y, 0, r))));
  return out;
}

void save_maps(const Tensor& attr, const std::vector<Tensor>& pictures, bool is_signed, const std::string& dir,
               const std::string& stem, int64_t rows) {
  ex::HeatmapOptions heat;
  heat.reduction = is_signed ? ex::MapReduction::sum : ex::MapReduction::abs_sum;
  const Tensor a = ops::to_device(ops::to_dtype(attr, DType::f32), Device::cpu());
  for (int64_t r = 0; r < std::min<int64_t>(rows, a.size(0)); ++r) {
    const ex::Heatmap h = ex::make_heatmap(ops::contiguous(ops::select(a, 0, r)), pictures[static_cast<size_t>(r)], heat);
    ex::save_heatmap(h, (fs::path(dir) / (stem + "_" + std::to_string(r) + ".png")).string(),
                     (fs::path(dir) / (stem + "_" + std::to_string(r) + "_overlay.png")).string());
  }
}

// All metrics of one method on one model.
MethodResult evaluate_method(const ModelCase& m, MethodKind kind, const Settings& s, const std::string& maps_dir) {
  const ex::MethodInfo& info = ex::method_info(kind);
  MethodResult r;
  r.model = m.name;
  r.method = info.name;
  r.title = info.title;
  r.is_signed = info.is_signed;
  const ex::Method method = method_fn(s, m, kind);
  const ex::Query q = make_query(m, m.inputs, m.targets, ex::BaselineKind::black, s.seed);
  const auto start = std::chrono::steady_clock::now();
  const ex::Attribution a = method(q);
  r.seconds = seconds_since(start) / static_cast<double>(m.inputs.size(0));
  save_maps(a.attributions[0], m.pictures, info.is_signed, maps_dir, m.name + "_" + info.name, 1);

  Generator generator(s.seed + 1);
  const double pixel_std = m.info.std.empty() ? 1.0 : m.info.std[0];
  const ev::CurveOptions curve{.steps = s.steps};
  const ev::Curve del = ev::deletion_curve(q, a, curve);
  const ev::Curve ins = ev::insertion_curve(q, a, curve);
  const ev::Curve del_blur = ev::deletion_curve(q, a, {.steps = s.steps, .fill = ev::Fill::blur});
  r.del = values_of(del.auc);
  r.ins = values_of(ins.auc);
  r.del_blur = values_of(del_blur.auc);
  r.fractions = del.fractions;
  for (int64_t k = 0; k < del.scores.size(1); ++k) {
    r.del_curve.push_back(mean_of(values_of(ops::select(del.scores, 1, k))));
    r.ins_curve.push_back(mean_of(values_of(ops::select(ins.scores, 1, k))));
  }
  // Infidelity: Gaussian noise of 0.05 in pixel units, and random halves of an 8x8 grid removed.
  const int64_t cells = grid_cells(s), size = m.info.image_size;
  const Tensor grid = ops::to_device(ex::grid_feature_mask(size, size, cells, cells), s.device);
  // Both normalised (Captum's normalize: attr . I rescaled by its least-squares beta first), so the
  // score does not depend on the attribution's scale: occlusion and the coalition methods copy one
  // value to every scalar of a window or feature, which the plain sum over elements would multiply.
  r.inf_gauss = values_of(ev::infidelity(
      q, a, {.noise_std = 0.05 / pixel_std, .n_samples = 10, .normalize = true, .generator = &generator}));
  r.inf_subset = values_of(ev::infidelity(q, a,
                                          {.noise = ev::InfidelityNoise::subset,
                                           .n_samples = 10,
                                           .feature_mask = grid,
                                           .normalize = true,
                                           .multiply_by_inputs = multiplies_inputs(kind),
                                           .generator = &generator}));
  if (!is_perturbation_method(kind)) {
    r.sens = values_of(ev::sensitivity_max(q, method, {.radius = 0.02 / pixel_std, .n_samples = s.quick ? 3 : 10,
                                                       .generator = &generator}));
  } else {
    r.sens.assign(static_cast<size_t>(m.inputs.size(0)), kNaN);
  }
  r.corr = values_of(ev::faithfulness_correlation(
      q, a, {.n_samples = s.quick ? 10 : 50, .feature_mask = grid, .generator = &generator}));
  const ev::RegionShares shares = ev::region_mass(a.attributions[0]);
  r.border = values_of(shares.border);
  r.centre = values_of(shares.centre);

  // Randomisation check on the first images.
  const int64_t n = std::min(s.sanity_images, m.inputs.size(0));
  const std::vector<int64_t> first_targets(m.targets.begin(), m.targets.begin() + n);
  const ex::Query qs = make_query(m, ops::narrow(m.inputs, 0, 0, n), first_targets, ex::BaselineKind::black, s.seed);
  ev::RandomisationOptions ro;
  ro.seed = s.seed;
  if (s.stage_blocks) {
    for (const std::string& block : ev::parameter_blocks(*m.model)) {
      const std::string stage = block.substr(0, block.find('.'));
      if (std::find(ro.blocks.begin(), ro.blocks.end(), stage) == ro.blocks.end()) ro.blocks.push_back(stage);
    }
  }
  r.sanity = ev::cascading_randomisation(*m.model, qs, method, ro);
  return r;
}

std::vector<BaselineResult> baseline_study(const ModelCase& m, const Settings& s, const std::string& maps_dir,
                                           ProgressBar& bar, int64_t& done) {
  const std::vector<ex::BaselineKind> kinds = {ex::BaselineKind::black, ex::BaselineKind::zeros, ex::BaselineKind::blur,
                                               ex::BaselineKind::uniform, ex::BaselineKind::mean};
  const std::vector<MethodKind> methods = {MethodKind::integrated_gradients, MethodKind::deeplift, MethodKind::occlusion};
  std::vector<BaselineResult> out;
  std::map<std::string, Tensor> black_maps;
  for (ex::BaselineKind b : kinds) {
    const ex::Query q = make_query(m, m.inputs, m.targets, b, s.seed);
    for (MethodKind kind : methods) {
      const ex::MethodInfo& info = ex::method_info(kind);
      const ex::Attribution a = method_fn(s, m, kind)(q);
      BaselineResult r;
      r.model = m.name;
      r.baseline = ex::baseline_name(b);
      r.method = info.name;
      const ev::CurveOptions curve{.steps = s.steps};
      r.del = values_of(ev::deletion_curve(q, a, curve).auc);
      r.ins = values_of(ev::insertion_curve(q, a, curve).auc);
      if (b == ex::BaselineKind::black) black_maps[info.name] = a.attributions[0];
      r.spearman_vs_black = row_spearman(a.attributions[0], black_maps.at(info.name));
      if (m.name == "fashion") {
        r.region = background_share(a.attributions[0], m.pictures, &r.background_max);
      } else {
        r.region = values_of(ev::region_mass(a.attributions[0]).border);
      }
      save_maps(a.attributions[0], m.pictures, true, maps_dir, m.name + "_baseline_" + r.baseline + "_" + info.name, 1);
      out.push_back(std::move(r));
      bar.update(++done);
    }
  }
  return out;
}

// --- writing -----------------------------------------------------------------------------------

std::string per_image_csv(const std::vector<MethodResult>& results, const std::vector<ModelCase>& models) {
  std::ostringstream c;
  c << "model,method,image,target,deletion_auc,insertion_auc,deletion_blur_auc,infidelity_gaussian,infidelity_subset,"
       "sensitivity_max,faithfulness_correlation,border_share,centre_share\n";
  for (const MethodResult& r : results) {
    const ModelCase& m = r.model == models[0].name ? models[0] : models.back();
    for (size_t i = 0; i < r.del.size(); ++i) {
      c << r.model << "," << r.method << "," << m.image_names[i] << "," << m.info.labels[static_cast<size_t>(m.targets[i])];
      for (const auto* v : {&r.del, &r.ins, &r.del_blur, &r.inf_gauss, &r.inf_subset, &r.sens, &r.corr, &r.border, &r.centre})
        c << "," << json_number((*v)[i]);
      c << "\n";
    }
  }
  return c.str();
}

std::string curves_csv(const std::vector<MethodResult>& results) {
  std::ostringstream c;
  c << "model,method,curve,fraction,mean_score\n";
  for (const MethodResult& r : results) {
    for (size_t k = 0; k < r.fractions.size(); ++k) c << r.model << "," << r.method << ",deletion," << r.fractions[k] << "," << json_number(r.del_curve[k]) << "\n";
    for (size_t k = 0; k < r.fractions.size(); ++k) c << r.model << "," << r.method << ",insertion," << r.fractions[k] << "," << json_number(r.ins_curve[k]) << "\n";
  }
  return c.str();
}

std::string randomisation_csv(const std::vector<MethodResult>& results) {
  std::ostringstream c;
  c << "model,method,step,block,spearman_mean,spearman_abs_mean\n";
  for (const MethodResult& r : results)
    for (size_t k = 0; k < r.sanity.size(); ++k)
      c << r.model << "," << r.method << "," << k + 1 << "," << r.sanity[k].block << "," << json_number(mean_of(r.sanity[k].spearman))
        << "," << json_number(mean_of(r.sanity[k].spearman_abs)) << "\n";
  return c.str();
}

std::string baselines_csv(const std::vector<BaselineResult>& results) {
  std::ostringstream c;
  c << "model,baseline,method,deletion_auc,insertion_auc,spearman_vs_black,region_share,background_max_ratio\n";
  for (const BaselineResult& r : results)
    c << r.model << "," << r.baseline << "," << r.method << "," << json_number(mean_of(r.del)) << ","
      << json_number(mean_of(r.ins)) << "," << json_number(mean_of(r.spearman_vs_black)) << "," << json_number(mean_of(r.region))
      << "," << json_number(mean_of(r.background_max)) << "\n";
  return c.str();
}

std::string json_list(const std::vector<double>& v) {
  std::string s = "[";
  for (size_t i = 0; i < v.size(); ++i) s += (i ? ", " : "") + json_number(v[i]);
  return s + "]";
}

std::string summary_json(const Settings& s, const std::vector<ModelCase>& models, const std::vector<MethodResult>& results,
                         const std::vector<BaselineResult>& baselines, double seconds) {
  std::ostringstream j;
  j << "{\n  \"suite\": \"images\",\n  \"quick\": " << (s.quick ? "true" : "false") << ",\n  \"seconds\": "
    << json_number(seconds) << ",\n  \"threads\": " << num_threads() << ",\n  \"baseline\": \"black\""
    << ",\n  \"settings\": {\"images\": " << s.images << ", \"sanity_images\": " << s.sanity_images
    << ", \"steps\": " << s.steps << ", \"ig_steps\": " << s.ig_steps << ", \"samples\": " << s.samples
    << ", \"seed\": " << s.seed << "},\n  \"models\": [";
  for (size_t i = 0; i < models.size(); ++i) {
    const ModelCase& m = models[i];
    j << (i ? "," : "") << "\n    {\"name\": " << json::quote(m.name) << ", \"checkpoint\": " << json::quote(m.checkpoint)
      << ", \"training\": " << json::quote(m.training) << ", \"image_size\": " << m.info.image_size << ", "
      << json::quote(m.test_metric_name) << ": " << json_number(m.test_metric) << ", \"data_mean\": " << json_list(m.data_mean)
      << "}";
  }
  j << "\n  ],\n  \"methods\": [";
  for (size_t i = 0; i < results.size(); ++i) {
    const MethodResult& r = results[i];
    j << (i ? "," : "") << "\n    {\"model\": " << json::quote(r.model) << ", \"method\": " << json::quote(r.method)
      << ", \"baseline\": \"black\", \"deletion_auc\": " << json_number(mean_of(r.del)) << ", \"insertion_auc\": "
      << json_number(mean_of(r.ins)) << ", \"deletion_blur_auc\": " << json_number(mean_of(r.del_blur))
      << ", \"infidelity_gaussian\": " << json_number(mean_of(r.inf_gauss)) << ", \"infidelity_subset\": "
      << json_number(mean_of(r.inf_subset)) << ", \"sensitivity_max\": " << json_number(mean_of(r.sens))
      << ", \"faithfulness_correlation\": " << json_number(mean_of(r.corr)) << ", \"border_share\": "
      << json_number(mean_of(r.border)) << ", \"centre_share\": " << json_number(mean_of(r.centre))
      << ", \"seconds_per_image\": " << json_number(r.seconds) << ", \"randomisation\": [";
    for (size_t k = 0; k < r.sanity.size(); ++k)
      j << (k ? ", " : "") << "{\"block\": " << json::quote(r.sanity[k].block) << ", \"spearman\": "
        << json_number(mean_of(r.sanity[k].spearman)) << ", \"spearman_abs\": " << json_number(mean_of(r.sanity[k].spearman_abs)) << "}";
    j << "]}";
  }
  j << "\n  ],\n  \"baseline_study\": [";
  for (size_t i = 0; i < baselines.size(); ++i) {
    const BaselineResult& r = baselines[i];
    j << (i ? "," : "") << "\n    {\"model\": " << json::quote(r.model) << ", \"baseline\": " << json::quote(r.baseline)
      << ", \"method\": " << json::quote(r.method) << ", \"deletion_auc\": " << json_number(mean_of(r.del))
      << ", \"insertion_auc\": " << json_number(mean_of(r.ins)) << ", \"spearman_vs_black\": "
      << json_number(mean_of(r.spearman_vs_black)) << ", \"region_share\": " << json_number(mean_of(r.region))
      << ", \"background_max_ratio\": " << json_number(mean_of(r.background_max)) << "}";
  }
  j << "\n  ],\n  \"report\": \"report.html\"\n}\n";
  return j.str();
}

std::string img(const std::string& src, const std::string& caption) {
  return "<figure style=\"display:inline-block;margin:0.3em;text-align:center;vertical-align:top\"><img src=\"" + report::html_escape(src) +
         "\" width=\"128\" height=\"128\" style=\"image-rendering:pixelated;border:1px solid #ddd\"><figcaption "
         "style=\"font-size:0.8em;max-width:128px;overflow-wrap:anywhere\">" +
         report::html_escape(caption) + "</figcaption></figure>";
}

std::string report_html(const Settings& s, const std::vector<ModelCase>& models, const std::vector<MethodResult>& results,
                        const std::vector<BaselineResult>& baselines, double seconds) {
  report::HtmlPage page("loupe: faithfulness of attributions on image models");
  std::ostringstream intro;
  intro << (s.quick ? "Quick run (tiny models, few images): numbers are a smoke test, not results. " : "")
        << "Every method explains each image's own label (chest X-rays: the sigmoid of covid19, pneumonia or no_finding; "
           "Fashion-MNIST: the softmax probability of the true class) with the black baseline (the black picture, "
           "normalised like the input). Values are the mean ± standard error over "
        << models[0].inputs.size(0) << " images. Total time " << static_cast<int64_t>(seconds) << " s on " << num_threads()
        << " threads.";
  page.paragraph(intro.str());
  std::vector<std::vector<std::string>> model_rows;
  for (const ModelCase& m : models)
    model_rows.push_back({m.title, m.training, m.test_metric_name + " " + num(m.test_metric, 3),
                          std::to_string(m.inputs.size(0))});
  page.table({"model", "training", "quality", "images"}, model_rows);

  const ModelCase& cxr = models[0];
  page.heading("Chest X-rays: faithfulness per method");
  page.paragraph(
      "Deletion: the score after removing a growing share of the pixels (all channels of a pixel together), most "
      "positive attribution first, replaced by the baseline (black) or by a Gaussian blur of the image; its area "
      "(AUC) is low for a faithful map. Insertion: from the baseline, pixels put back in the same order; high AUC is "
      "good. Infidelity (Captum's definition): mean (I·attr − (f(x) − f(x − I)))² over 10 perturbations I: Gaussian "
      "(σ 0.05 of the pixel range) or a random half of the 8x8 grid cells set to the baseline (for attributions "
      "of the form (x − x')·m, IG, DeepLIFT, input x gradient and the perturbation methods, I is divided by "
      "x − x' as Captum's multiply_by_inputs does); both with Captum's normalize (I·attr rescaled by its "
      "least-squares factor first, so the attribution's scale does not matter); low is good. "
      "Max-sensitivity: the largest relative change of the map over 10 inputs in the L∞ ball of radius 0.02 (pixel "
      "range); low is good; not run for the perturbation methods (cost). Faithfulness correlation: Pearson "
      "correlation over random subsets of 10% of the grid cells of the attribution they hold and the score drop "
      "when they are removed; high is good. Border: share of |attribution| in the outer 10% of the image (36% of "
      "its area); lung box: the central 70% x 70% (49% of its area).");
  std::vector<std::vector<std::string>> rows;
  for (const MethodResult& r : results) {
    if (r.model != cxr.name) continue;
    rows.push_back({r.title, mean_sem(r.del), mean_sem(r.ins), mean_sem(r.del_blur), mean_sem(r.inf_gauss),
                    mean_sem(r.inf_subset), mean_sem(r.sens), mean_sem(r.corr), mean_sem(r.border), mean_sem(r.centre),
                    num(r.seconds, 3)});
  }
  page.table({"method", "deletion AUC ↓", "insertion AUC ↑", "deletion AUC (blur) ↓", "infidelity (Gaussian) ↓",
              "infidelity (subset) ↓", "max-sensitivity ↓", "faithfulness corr. ↑", "border share", "lung-box share",
              "s / image"},
              rows);
  report::LinePlot del_plot{.title = "Deletion (black fill), mean over images", .x_label = "share of pixels removed",
                            .y_label = "explained probability"};
  report::LinePlot ins_plot{.title = "Insertion (from black), mean over images", .x_label = "share of pixels inserted",
                            .y_label = "explained probability"};
  for (const MethodResult& r : results) {
    if (r.model != cxr.name) continue;
    del_plot.series.push_back({.label = r.method, .x = r.fractions, .y = r.del_curve});
    ins_plot.series.push_back({.label = r.method, .x = r.fractions, .y = r.ins_curve});
  }
  page.raw(report::svg_line_plot(del_plot));
  page.raw(report::svg_line_plot(ins_plot));
  report::BarPlot mass{.title = "Share of |attribution| by region (chest X-rays)", .y_label = "share of the mass"};
  report::Series border{.label = "border (36% of area)"}, lungs{.label = "lung box (49%)"};
  for (const MethodResult& r : results) {
    if (r.model != cxr.name) continue;
    mass.categories.push_back(r.method);
    border.y.push_back(mean_of(r.border));
    border.err.push_back(std::isfinite(sem_of(r.border)) ? sem_of(r.border) : 0.0);
    lungs.y.push_back(mean_of(r.centre));
    lungs.err.push_back(std::isfinite(sem_of(r.centre)) ? sem_of(r.centre) : 0.0);
  }
  mass.series = {border, lungs};
  mass.width = std::max(560, 60 * static_cast<int>(mass.categories.size()) + 120);  // room for every label
  page.raw(report::svg_bar_plot(mass));
  std::string figures = img(cxr.name + "_input_0.png", cxr.image_names[0] + " (" +
                                                           cxr.info.labels[static_cast<size_t>(cxr.targets[0])] + ")");
  for (const MethodResult& r : results)
    if (r.model == cxr.name) figures += img("maps/" + r.model + "_" + r.method + "_0_overlay.png", r.title);
  page.raw("<div>" + figures + "</div>");

  page.heading("Randomisation check (cascading, from the logits down)");
  page.paragraph(
      "After randomising the blocks from the top down to the one named, the Spearman rank correlation of the "
      "attribution with the original (mean over the first " + std::to_string(std::min(s.sanity_images, cxr.inputs.size(0))) +
      " images). A method that depends on the learned weights falls towards 0; one that stays high mostly reflects "
      "the input. Columns: |attribution| (Adebayo's absolute variant) / signed.");
  std::vector<std::string> header = {"method"};
  std::vector<std::vector<std::string>> sanity_rows;
  report::LinePlot sanity_plot{.title = "Spearman correlation (|attribution|) after cascading randomisation",
                               .x_label = "blocks randomised", .y_label = "rank correlation"};
  for (const MethodResult& r : results) {
    if (r.model != cxr.name) continue;
    if (header.size() == 1)
      for (const ev::RandomisationStep& step : r.sanity) header.push_back(step.block);
    std::vector<std::string> row = {r.title};
    report::Series series{.label = r.method};
    for (size_t k = 0; k < r.sanity.size(); ++k) {
      row.push_back(num(mean_of(r.sanity[k].spearman_abs), 2) + " / " + num(mean_of(r.sanity[k].spearman), 2));
      series.x.push_back(static_cast<double>(k + 1));
      series.y.push_back(mean_of(r.sanity[k].spearman_abs));
    }
    sanity_rows.push_back(row);
    sanity_plot.series.push_back(series);
  }
  page.table(header, sanity_rows);
  page.raw(report::svg_line_plot(sanity_plot));

  page.heading("Baseline study: IG, DeepLIFT and occlusion under five baselines");
  page.paragraph(
      "black: the black picture (pixel 0) normalised like the input, the default; zeros: 0 after normalisation (the "
      "picture equal to the normalisation mean: grey); blur: the image blurred with a Gaussian (σ = width/16); "
      "uniform: uniform noise in [0, 1] (seeded); mean: the per-channel mean of training pictures. Deletion and "
      "insertion fill with the same baseline. ρ vs black: Spearman correlation of the map with the black-baseline "
      "map. Region: chest X-rays: share of |attribution| in the outer 10% border; Fashion-MNIST: share on the black "
      "background (pixels that are 0 in the 8-bit picture), and the largest |attribution| there relative to the "
      "map's largest.");
  for (const ModelCase& m : models) {
    std::vector<std::vector<std::string>> brows;
    for (const BaselineResult& r : baselines) {
      if (r.model != m.name) continue;
      brows.push_back({r.method, r.baseline, mean_sem(r.del), mean_sem(r.ins), mean_sem(r.spearman_vs_black),
                       mean_sem(r.region)});
      if (m.name == "fashion") brows.back().push_back(mean_sem(r.background_max));
    }
    page.heading(m.title, 3);
    std::vector<std::string> bheader = {"method", "baseline", "deletion AUC ↓", "insertion AUC ↑", "ρ vs black",
                                        m.name == "fashion" ? "background share" : "border share"};
    if (m.name == "fashion") bheader.push_back("max on background / max");
    page.table(bheader, brows);
    std::string maps = img(m.name + "_input_0.png", "input");
    for (const BaselineResult& r : baselines)
      if (r.model == m.name) maps += img("maps/" + m.name + "_baseline_" + r.baseline + "_" + r.method + "_0_overlay.png", r.method + ", " + r.baseline);
    page.raw("<div>" + maps + "</div>");
  }
  page.paragraph("Files: per_image.csv, curves.csv, randomisation.csv, baselines.csv, summary.json; maps/ holds every heatmap.");
  return page.str();
}

std::string text_summary(const std::vector<ModelCase>& models, const std::vector<MethodResult>& results,
                         const std::vector<BaselineResult>& baselines, const std::string& out) {
  std::ostringstream t;
  for (const ModelCase& m : models) t << m.name << ": " << m.training << "; " << m.test_metric_name << " " << num(m.test_metric, 3) << "\n";
  t << "method          deletion  insertion  infid(gauss)  sens_max  faith_corr  border  lungbox  rand(last |rho|)\n";
  for (const MethodResult& r : results) {
    char line[256];
    std::snprintf(line, sizeof line, "%-14s %9.4f %10.4f %13.4g %9.4g %11.3f %7.3f %8.3f %10.3f\n", r.method.c_str(),
                  mean_of(r.del), mean_of(r.ins), mean_of(r.inf_gauss), mean_of(r.sens), mean_of(r.corr), mean_of(r.border),
                  mean_of(r.centre), r.sanity.empty() ? kNaN : mean_of(r.sanity.back().spearman_abs));
    t << line;
  }
  t << "baseline study (deletion / insertion AUC, rho vs black):\n";
  for (const BaselineResult& r : baselines) {
    char line[200];
    std::snprintf(line, sizeof line, "  %-8s %-9s %-8s %8.4f %8.4f %7.3f\n", r.model.c_str(), r.method.c_str(),
                  r.baseline.c_str(), mean_of(r.del), mean_of(r.ins), mean_of(r.spearman_vs_black));
    t << line;
  }
  t << "baseline: black (attributions); report: " << out << "/report.html\n";
  return t.str();
}

}  // namespace

int run_evaluate_images(int argc, char** argv) {
  const Args args(kOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("evaluate-explanations images", kSummary, kOptions);
    return 0;
  }
  Settings s;
  s.quick = args.flag("quick");
  s.out = args.get("out");
  LOUPE_CHECK(!s.out.empty(), "option --out is required (see --help)");
  s.images = auto_int(args, "images", 8, 2, s.quick);
  s.sanity_images = auto_int(args, "sanity-images", 2, 1, s.quick);
  s.image_size = auto_int(args, "image-size", 128, 32, s.quick);
  s.epochs = auto_int(args, "epochs", 5, 1, s.quick);
  s.steps = auto_int(args, "steps", 20, 8, s.quick);
  s.ig_steps = auto_int(args, "ig-steps", 16, 4, s.quick);
  s.samples = auto_int(args, "samples", 200, 16, s.quick);
  const std::string blocks = args.get("sanity-blocks");
  LOUPE_CHECK(blocks == "stages" || blocks == "blocks", "option --sanity-blocks: expected stages or blocks, got '", blocks, "'");
  s.stage_blocks = blocks == "stages";
  const int64_t seed = args.get_int("seed");
  LOUPE_CHECK(seed >= 0, "option --seed: expected a non-negative integer, got ", seed);
  s.seed = static_cast<uint64_t>(seed);
  s.device = parse_device_option(args.get("device"));
  const std::string methods = args.get("methods");
  s.methods = ex::parse_methods(methods == "auto" ? (s.quick ? "saliency,ixg,ig,deeplift,occlusion,kernelshap" : "all") : methods);

  const auto start = std::chrono::steady_clock::now();
  const fs::path out(s.out), maps = out / "maps";
  std::error_code ec;
  fs::create_directories(maps, ec);
  LOUPE_CHECK(fs::is_directory(maps), "evaluate-explanations images: cannot create the output folder '", s.out, "'",
              ec ? ": " + ec.message() : std::string());

  std::vector<ModelCase> models;
  models.push_back(cxr_case(args, s));
  models.push_back(fashion_case(args, s));
  for (const ModelCase& m : models) {
    for (size_t i = 0; i < std::min<size_t>(1, m.pictures.size()); ++i)
      nn::save_png((out / (m.name + "_input_" + std::to_string(i) + ".png")).string(), m.pictures[i]);
  }

  std::vector<MethodResult> results;
  ProgressBar bar("methods", static_cast<int64_t>(s.methods.size()));
  for (size_t i = 0; i < s.methods.size(); ++i) {
    results.push_back(evaluate_method(models[0], s.methods[i], s, maps.string()));
    bar.update(static_cast<int64_t>(i + 1), results.back().method);
  }
  bar.finish();
  std::vector<BaselineResult> baselines;
  ProgressBar bbar("baselines", 2 * 5 * 3);
  int64_t done = 0;
  for (const ModelCase& m : models) {
    std::vector<BaselineResult> part = baseline_study(m, s, maps.string(), bbar, done);
    baselines.insert(baselines.end(), part.begin(), part.end());
  }
  bbar.finish();
  const double seconds = seconds_since(start);

  write_text_atomic((out / "per_image.csv").string(), per_image_csv(results, models));
  write_text_atomic((out / "curves.csv").string(), curves_csv(results));
  write_text_atomic((out / "randomisation.csv").string(), randomisation_csv(results));
  write_text_atomic((out / "baselines.csv").string(), baselines_csv(baselines));
  const std::string json = summary_json(s, models, results, baselines, seconds);
  write_text_atomic((out / "summary.json").string(), json);
  write_text_atomic((out / "report.html").string(), report_html(s, models, results, baselines, seconds));
  if (args.flag("json")) {
    std::cout << json;
  } else {
    std::cout << text_summary(models, results, baselines, s.out);
  }
  return 0;
}

}  // namespace loupe::cli
