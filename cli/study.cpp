// `loupe study cxr`: the chest X-ray study end to end from one command (study/study.hpp): a
// patient-wise validation split, the five CNNs of the zoo, their two ensembles, metrics with
// bootstrap intervals on the whole test split and on its adults, every explanation method on the
// same test images for every model, activation profiles per group, and one HTML report.
// Interrupted (Ctrl-C, SIGTERM) it saves its position and exits 128 + signal; the same command
// continues. Tests: tests/study/test_study_cli.cpp
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <unistd.h>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/train_common.hpp"
#include "cli/train_interrupt.hpp"
#include "study/study.hpp"
#include "tensor/parallel.hpp"

namespace loupe::cli {

namespace {

// Empty defaults are resolved below: --quick, the device and the plain study choose them.
const std::vector<OptionSpec> kStudyOptions = {
    {"data", "CSV", "", "the chest X-ray labels.csv (images/ beside it)"},
    {"out", "DIR", "", "run folder (created; an existing one with the same settings is continued)"},
    {"quick", "", "", "small settings that finish in minutes on a CPU (see above); options given still win"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N"},
    {"models", "A,B,..", "resnet18,resnet34,densenet161,inception_v3,inception_resnet_v2", "models of the zoo"},
    {"image-size", "N", "", "ResNet/DenseNet input px (default 128 on a CPU, 224 on a GPU; --quick 64)"},
    {"inception-size", "N", "", "Inception input px, at least 75 (default 75 on a CPU, 299 on a GPU)"},
    {"width", "N", "64", "ResNet: channels of the first stage"},
    {"epochs", "N", "", "training epochs per model (default 5; --quick 1)"},
    {"batch-size", "N", "8", "images per step"},
    {"lr", "RATE", "0.001", "Adam learning rate"},
    {"weight-decay", "W", "0.0001", "weight decay"},
    {"seed", "N", "0", "seed of initialisation and shuffling"},
    {"val-fraction", "F", "0.2", "share of each class's training images moved (by patient) to validation"},
    {"split-seed", "N", "0", "seed of the validation split, the explained images and the bootstrap"},
    {"limit-train", "N", "", "use only N training images, spread evenly over the split (0 = all; --quick 128)"},
    {"limit-eval", "N", "0", "use only N validation and N test images, spread evenly (0 = all)"},
    {"explain-images", "N", "8", "test images explained by every method of every model"},
    {"methods", "A,B,..", "occlusion,saliency,ixg,guided,ig,deeplift", "attribution methods (loupe explain names)"},
    {"steps", "N", "", "integrated gradients steps (default 32; --quick 8)"},
    {"window", "PX", "", "occlusion window (default: an eighth of --image-size; --quick 16)"},
    {"stride", "PX", "", "occlusion stride (default: the window, an 8x8 grid of patches; --quick 8)"},
    {"bootstrap", "N", "", "bootstrap resamples for the intervals (default 1000; --quick 200; 0 = none)"},
    {"workers", "N", "1", "data-loading threads"},
    {"json", "", "", "print the summary as JSON (also written to DIR/summary.json)"},
};

const char* kSummary =
    "The chest X-ray study end to end: carves a patient-wise validation split from the training split,\n"
    "trains ResNet18, ResNet34, DenseNet161, InceptionV3 and InceptionResNetV2 from scratch (epoch chosen\n"
    "on validation), picks per-label thresholds on validation, evaluates every model and two ensembles\n"
    "(probability mean, majority vote) on the test split and its adults with bootstrap intervals,\n"
    "explains the same test images with every method of every model, measures the attribution outside\n"
    "the lung box, profiles the last stage's feature maps per group, and writes DIR/report.html and\n"
    "DIR/summary.json. Rerun the same command to continue an interrupted study.\n\n"
    "--quick = --image-size 64 --epochs 1 --limit-train 128 --steps 8 --window 16 --stride 8 --bootstrap 200\n"
    "Example: loupe study cxr --data ../shared/data/cxr/labels.csv --out runs/study";

std::string pick(const Args& args, const std::string& name, const std::string& quick, const std::string& plain) {
  if (args.given(name)) return args.get(name);
  return args.flag("quick") ? quick : plain;
}

int64_t to_int(const std::string& name, const std::string& text, int64_t lo, int64_t hi) {
  char* end = nullptr;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  LOUPE_CHECK(!text.empty() && *end == '\0', "study: --", name, " expects a whole number, got '", text, "'");
  LOUPE_CHECK(v >= lo && v <= hi, "study: --", name, " must be in [", lo, ", ", hi, "], got ", v);
  return v;
}

}  // namespace

int run_study(int argc, char** argv) {
  LOUPE_CHECK(argc >= 3, "study: which study? usage: loupe study cxr [options] (see loupe study cxr --help)");
  const std::string which = argv[2];
  if (which == "--help" || which == "-h") {
    std::cout << usage("study cxr", kSummary, kStudyOptions);
    return 0;
  }
  LOUPE_CHECK(which == "cxr", "study: unknown study '", which, "' (known: cxr)");
  const Args args(kStudyOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("study cxr", kSummary, kStudyOptions);
    return 0;
  }
  study::StudyOptions o;
  o.data = args.get("data");
  LOUPE_CHECK(!o.data.empty(), "study: --data CSV is required (the chest X-ray labels.csv)");
  o.out = args.get("out");
  LOUPE_CHECK(!o.out.empty(), "study: --out DIR is required");
  o.train.device = parse_device_option(args.get("device"));
  const bool gpu = o.train.device.is_cuda();
  o.models = split_list(args.get("models"));
  o.image_size = to_int("image-size", pick(args, "image-size", "64", gpu ? "224" : "128"), 16, 1024);
  o.inception_size = to_int("inception-size", pick(args, "inception-size", "75", gpu ? "299" : "75"), 75, 1024);
  o.width = to_int("width", args.get("width"), 1, 512);
  o.train.epochs = to_int("epochs", pick(args, "epochs", "1", "5"), 1, 10000);
  o.train.batch_size = to_int("batch-size", args.get("batch-size"), 1, 4096);
  o.train.lr = args.get_double("lr");
  LOUPE_CHECK(o.train.lr > 0, "study: --lr must be > 0, got ", o.train.lr);
  o.train.weight_decay = args.get_double("weight-decay");
  LOUPE_CHECK(o.train.weight_decay >= 0, "study: --weight-decay must be >= 0, got ", o.train.weight_decay);
  o.train.seed = static_cast<uint64_t>(to_int("seed", args.get("seed"), 0, INT64_MAX));
  o.train.workers = static_cast<int>(to_int("workers", args.get("workers"), 0, 64));
  o.val_fraction = args.get_double("val-fraction");
  LOUPE_CHECK(o.val_fraction > 0 && o.val_fraction < 1, "study: --val-fraction must be in (0, 1), got ", o.val_fraction);
  o.split_seed = static_cast<uint64_t>(to_int("split-seed", args.get("split-seed"), 0, INT64_MAX));
  o.limit_train = to_int("limit-train", pick(args, "limit-train", "128", "0"), 0, INT64_MAX);
  o.limit_eval = to_int("limit-eval", args.get("limit-eval"), 0, INT64_MAX);
  o.explain_images = to_int("explain-images", args.get("explain-images"), 0, 1000);
  o.explain.methods = explain::parse_methods(args.get("methods"));
  o.explain.steps = to_int("steps", pick(args, "steps", "8", "32"), 1, 100000);
  // Occlusion: by default non-overlapping patches on an 8x8 grid (64 forward passes per image and
  // model; loupe explain's finer default, about 15 px windows every 8 px, costs 5-10 times more).
  const std::string eighth = std::to_string(std::max<int64_t>(1, o.image_size / 8));
  o.explain.window = to_int("window", pick(args, "window", "16", eighth), 1, 4096);
  o.explain.stride = to_int("stride", pick(args, "stride", "8", std::to_string(o.explain.window)), 1, 4096);
  // The label's logit is explained, not its sigmoid: a confident model's sigmoid saturates to 0 or
  // 1 in float32, and every gradient-based map of it is then all zero.
  o.explain.output = explain::Output::logit;
  o.bootstrap = to_int("bootstrap", pick(args, "bootstrap", "200", "1000"), 0, 1000000);
  o.command = "loupe study cxr";
  for (int i = 3; i < argc; ++i) o.command += std::string(" ") + argv[i];
  if (gpu) cuda::set_cudnn_benchmark(true);

  const StopSignals stop_signals;
  int stop = 0;
  const auto start = std::chrono::steady_clock::now();
  const bool json = args.flag("json");
  auto log = [&](const std::string& line) {
    (json ? std::cerr : std::cout) << line << std::endl;
  };
  log("study: " + std::to_string(o.models.size()) + " models, " + std::to_string(num_threads()) + " threads, run folder " +
      o.out);
  const study::StudyResult result = study::run_study(
      o,
      [&](int64_t step) {
        stop = stop_signals.stop_signal(step);
        return stop != 0;
      },
      log);
  if (result.stopped) {
    std::fprintf(stderr, "loupe study: stopped by %s; continue with the same command\n", signal_name(stop).c_str());
    return 128 + stop;
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  if (json) {
    std::cout << study::summary_json(result, o);
  } else {
    for (const study::SystemRow& s : result.systems) {
      std::printf("%-28s test micro-F1 %.3f  macro-F1 %.3f  macro AUROC %.3f", s.name.c_str(), s.test.micro_f1.value,
                  s.test.macro_f1.value, s.test.macro_auroc.value);
      if (s.adult.images > 0) std::printf("  | adults micro-F1 %.3f", s.adult.micro_f1.value);
      std::printf("\n");
    }
    std::printf("report: %s (%.0f s in this run)\n", result.report_path.c_str(), seconds);
  }
  return 0;
}

}  // namespace loupe::cli
