// `loupe explain`: attributions of a checkpoint's predictions on a few images, written as .npy
// arrays, PNG heatmaps (the map alone and over the input), an HTML report and optionally JSON.
//
//   loupe explain --model model.safetensors --input a.png --input b.npy --method saliency,ig,deeplift --out expl
//
// The work is done by explain::explain_to_folder (explain/report.hpp); this file turns the command
// line into its options and prints the summary. Tests: tests/explain/test_report.cpp (the library
// and, through the built program, this command).
// Sharded: under `mpirun -np N`, rank r explains inputs r, r + N, r + 2N, ... (all ranks write
// their files into the same --out folder), sends its images' results to rank 0
// (explain/report_codec.hpp), and rank 0 writes the one report.html (and summary.json) over all
// inputs, in the order given, and prints the summary. Tests: tests/distributed/test_train_ranks.cpp
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <set>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/progress.hpp"
#include "cli/train_common.hpp"
#include "distributed/communicator.hpp"
#include "explain/report.hpp"
#include "explain/report_codec.hpp"
#include "nn/checkpoint.hpp"
#include "nn/fold_batch_norm.hpp"
#include "tensor/error.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/ops.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kExplainOptions = {
    {"model", "CKPT", "", "checkpoint to explain (written by loupe train)"},
    {"input", "FILE", "", "image (PNG, JPEG, BMP) or .npy image in [0, 1]; repeatable"},
    {"target", "T", "auto", "class index/label or a comma list, predicted, all-positive, auto"},
    {"method", "LIST", "saliency,ig,deeplift", "comma list of methods (see above), or all"},
    {"output", "KIND", "auto", "explained output: logit, sigmoid, softmax, auto"},
    {"steps", "N", "50", "integrated gradients: Gauss-Legendre points"},
    {"samples", "N", "auto", "samples of the sampling methods; auto: smoothgrad 50, lime/clime/kernelshap 1000, shapley 25"},
    {"noise", "S", "0.15", "smoothgrad family: noise stdev / the input's value range"},
    {"internal-batch", "N", "16", "rows per forward/backward pass (0: all at once)"},
    {"window", "PX", "auto", "occlusion: square window in pixels (auto: 15 per 224 pixels of the input)"},
    {"stride", "PX", "auto", "occlusion: stride in pixels (auto: half the window)"},
    {"grid", "RxC|slic:N", "8x8", "features of ablation/lime/clime/kernelshap/shapley: a grid or N SLIC superpixels"},
    {"perturbations-per-eval", "N", "0", "perturbed copies per forward pass (0: as many as fit 64 MiB)"},
    {"baseline", "B", "black", "black (pixel 0), zeros (0 after normalisation: grey), blur, uniform, mean, or a .npy "
                               "broadcastable to the (normalised) model input"},
    {"clip", "P", "99", "heatmaps: scale by the P-th percentile of |attribution|"},
    {"alpha", "A", "0.8", "overlays: heatmap opacity where |attribution| is largest"},
    {"seed", "N", "0", "seed of the smoothgrad noise"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N (a GPU needs a build with the CUDA backend)"},
    {"fold-batch-norm", "", "", "fold batch norms into the convolutions before them (faster; the same function, so "
                                "attributions change only by float rounding)"},
    {"out", "DIR", "", "output folder (created if missing)"},
    {"json", "", "", "also write DIR/summary.json and print it instead of the summary"},
};

const char* kSummary =
    "Explains a checkpoint's predictions on images with attribution methods and writes, for every image\n"
    "and method, DIR/<image>_<method>.npy (the attribution, shaped like the model input),\n"
    "DIR/<image>_<method>.png (the heatmap) and DIR/<image>_<method>_overlay.png (the heatmap over the\n"
    "input), plus DIR/report.html. Images are preprocessed as the checkpoint says (channels, resize\n"
    "with padding to its image size, normalisation).\n"
    "\n"
    "methods: saliency, ixg (input x gradient), guided (guided backprop), deconv (deconvolution),\n"
    "  ig (integrated gradients), deeplift, smoothgrad, smoothgrad_sq, vargrad (noise tunnels over\n"
    "  saliency); perturbation methods: occlusion (--window, --stride), and on the features of\n"
    "  --grid: ablation (feature ablation), lime, clime (C-LIME), kernelshap, shapley (Shapley value\n"
    "  sampling); the mask is saved as DIR/<image>_mask.png\n"
    "targets: auto = all-positive for multilabel models (labels with sigmoid >= 0.5), else predicted\n"
    "output:  auto = sigmoid for multilabel models, else the logit\n"
    "baseline: black = the black picture normalised like the input (the default); zeros = 0 after\n"
    "  normalisation (the picture equal to the normalisation mean, grey); blur = the input blurred with a\n"
    "  Gaussian (sigma = width / 16); uniform = uniform noise in [0, 1] (--seed), normalised; mean = the\n"
    "  normalisation mean (identical to zeros for a checkpoint; the library takes a measured data mean)\n"
    "sharded: mpirun -np N loupe explain ... splits the inputs over N processes (files in the one --out);\n"
    "  rank 0 writes report.html over all of them (docs/distributed.md)";

// Takes every "--input X" / "--input=X" out of argv (cli::Args keeps one value per option).
std::vector<std::string> take_inputs(int argc, char** argv, std::vector<char*>& rest) {
  std::vector<std::string> inputs;
  for (int i = 0; i < argc; ++i) {
    if (i >= 2 && std::strcmp(argv[i], "--input") == 0) {
      LOUPE_CHECK(i + 1 < argc, "option --input needs a value (FILE)");
      inputs.emplace_back(argv[++i]);
    } else if (i >= 2 && std::strncmp(argv[i], "--input=", 8) == 0) {
      inputs.emplace_back(argv[i] + 8);
    } else {
      rest.push_back(argv[i]);
    }
  }
  return inputs;
}

explain::Output parse_output(const std::string& text, bool multilabel) {
  if (text == "auto") return multilabel ? explain::Output::sigmoid : explain::Output::logit;
  if (text == "logit") return explain::Output::logit;
  if (text == "sigmoid") return explain::Output::sigmoid;
  if (text == "softmax") return explain::Output::softmax;
  throw Error("option --output: expected logit, sigmoid, softmax or auto, got '" + text + "'");
}

std::string text_summary(const explain::Report& report) {
  std::ostringstream out;
  for (const explain::ReportImage& image : report.images) {
    out << image.name << ": predicted " << report.labels[static_cast<size_t>(image.predicted)] << " ("
        << image.probabilities[static_cast<size_t>(image.predicted)] << ")\n";
    for (const explain::ReportTarget& t : image.targets) {
      out << "  target " << t.label;
      if (t.label != std::to_string(t.index)) out << " (class " << t.index << ")";
      out << ", probability " << t.probability << "\n";
      for (const explain::ReportAttribution& a : t.attributions) {
        char line[160];
        std::snprintf(line, sizeof line, "    %-14s sum %11.4g", a.method.c_str(), a.total);
        out << line;
        if (std::isfinite(a.delta)) {
          std::snprintf(line, sizeof line, "  delta %10.3g", a.delta);
          out << line;
        }
        std::snprintf(line, sizeof line, "  %7.2f s\n", a.seconds);
        out << line;
      }
    }
  }
  return out.str();
}

// "auto" -> 0 (the library's automatic choice), else a positive integer.
int64_t auto_or_positive(const Args& args, const std::string& name) {
  if (args.get(name) == "auto") return 0;
  const int64_t value = args.get_int(name);
  LOUPE_CHECK(value >= 1, "option --", name, ": expected auto or a positive integer, got ", value);
  // A typo such as 10000000000 would otherwise run for days (or exhaust memory) before failing.
  LOUPE_CHECK(value <= 1000000, "option --", name, ": at most 1000000, got ", value);
  return value;
}

}  // namespace

namespace {
int explain_command(int argc, char** argv);
}  // namespace

int run_explain(int argc, char** argv) {
  if (!distributed::launched_by_mpi()) return explain_command(argc, argv);
  // One rank's error would leave the others waiting in the gather: end them all.
  try {
    return explain_command(argc, argv);
  } catch (const std::exception& error) {
    std::fprintf(stderr, "loupe explain: rank %d of %d: %s\n", distributed::world()->rank(), distributed::world()->size(),
                 error.what());
    std::fflush(stderr);
    distributed::world()->abort(1);
  }
  return 1;  // not reached: abort() ends the process
}

namespace {

int explain_command(int argc, char** argv) {
  std::vector<char*> rest;
  const std::vector<std::string> inputs = take_inputs(argc, argv, rest);
  Args args(kExplainOptions, static_cast<int>(rest.size()), rest.data(), 2);
  if (args.help()) {
    std::cout << usage("explain", kSummary, kExplainOptions);
    return 0;
  }
  const std::string checkpoint = args.get("model");
  const std::string folder = args.get("out");
  LOUPE_CHECK(!checkpoint.empty(), "option --model is required (see --help)");
  LOUPE_CHECK(!inputs.empty(), "option --input is required (see --help)");
  LOUPE_CHECK(!folder.empty(), "option --out is required (see --help)");

  explain::ReportOptions options;
  options.methods = explain::parse_methods(args.get("method"));
  options.target = args.get("target");
  options.steps = args.get_int("steps");
  LOUPE_CHECK(options.steps >= 1 && options.steps <= 100000, "option --steps must be in [1, 100000], got ",
              options.steps);
  options.samples = auto_or_positive(args, "samples");
  options.window = auto_or_positive(args, "window");
  options.stride = auto_or_positive(args, "stride");
  options.grid = args.get("grid");
  options.perturbations_per_eval = args.get_int("perturbations-per-eval");
  LOUPE_CHECK(options.perturbations_per_eval >= 0,
              "option --perturbations-per-eval: expected 0 (as many as fit) or more, got ", options.perturbations_per_eval);
  options.noise = args.get_double("noise");
  options.internal_batch = args.get_int("internal-batch");
  options.clip_percentile = args.get_double("clip");
  options.alpha = args.get_double("alpha");
  const int64_t seed = args.get_int("seed");
  LOUPE_CHECK(seed >= 0, "option --seed: expected a non-negative integer, got ", seed);
  options.seed = static_cast<uint64_t>(seed);
  if (const std::string baseline = args.get("baseline"); baseline.size() > 4 && baseline.substr(baseline.size() - 4) == ".npy") {
    options.baseline = load_npy(baseline);
  } else {
    try {
      options.baseline_kind = explain::parse_baseline(baseline);
    } catch (const Error&) {
      throw Error("option --baseline: expected black, zeros, blur, uniform, mean or a .npy file, got '" + baseline + "'");
    }
  }

  nn::ModelInfo info;
  std::shared_ptr<nn::Module> model = nn::load_model(checkpoint, &info);
  model->to(parse_device_option(args.get("device")));
  options.output = parse_output(args.get("output"), info.multilabel);
  options.checkpoint = checkpoint;

  // This rank's inputs (all of them in one process). Names are made unique over all inputs first,
  // so that the ranks' files cannot collide in the shared folder.
  const auto comm = distributed::world();
  const int rank = comm->rank(), ranks = comm->size();
  if (ranks > 1) distributed::share_cores_between_ranks();
  std::vector<std::string> names;
  std::set<std::string> used;
  for (const std::string& path : inputs) {
    const std::string stem = std::filesystem::path(path).stem().string();
    std::string name = stem;
    for (int n = 2; used.count(name); ++n) name = stem + "-" + std::to_string(n);
    used.insert(name);
    names.push_back(name);
  }
  std::vector<explain::ReportInput> images;
  for (size_t i = static_cast<size_t>(rank); i < inputs.size(); i += static_cast<size_t>(ranks)) {
    images.push_back(explain::load_report_input(inputs[i], info));
    if (ranks > 1) images.back().name = names[i];
  }
  if (args.flag("fold-batch-norm") && !images.empty()) {
    // Off by default: the folded model is the same function but not the same float operations,
    // so attributions move by rounding (~1e-6 of their scale; docs/explain.md).
    model->eval();
    const nn::FoldReport folded = nn::fold_batch_norms(*model, ops::to_device(ops::unsqueeze(images[0].input, 0), model->device()));
    if (rank == 0)
      std::cerr << "explain: folded " << folded.folded.size() << " batch norms into their convolutions ("
                << folded.kept.size() << " kept)\n";
  }

  ProgressBar bar("explain", 1);
  options.progress = [&](int64_t done, int64_t total) {
    if (done == 0) bar = ProgressBar("explain", total);
    bar.update(done, std::to_string(done) + "/" + std::to_string(total));
  };
  explain::Report report;
  if (!images.empty()) report = explain::explain_to_folder(*model, info, images, options, folder);
  bar.finish();
  if (ranks > 1) {
    // Rank 0 gathers every rank's images and rewrites the report over all of them, in input order.
    const std::vector<std::string> shards = comm->all_gather_bytes(explain::encode_report_images(report.images));
    if (rank != 0) return 0;
    std::vector<std::vector<explain::ReportImage>> parts;
    for (const std::string& bytes : shards) parts.push_back(explain::decode_report_images(bytes));
    report.images.clear();
    for (size_t i = 0; i < inputs.size(); ++i) {
      const auto& part = parts[i % static_cast<size_t>(ranks)];
      const size_t j = i / static_cast<size_t>(ranks);
      LOUPE_CHECK(j < part.size(), "explain: rank ", i % static_cast<size_t>(ranks), " sent ", part.size(), " images");
      report.images.push_back(part[j]);
    }
    explain::write_text_file(folder + "/report.html", explain::report_html(report));
  }

  if (args.flag("json")) {
    const std::string json = explain::report_json(report);
    explain::write_text_file(folder + "/summary.json", json);
    std::cout << json;
  } else {
    std::cout << text_summary(report) << "baseline: " << explain::report_baseline_name(report.options) << "\nreport: " << folder
              << "/report.html\n";
  }
  return 0;
}

}  // namespace

}  // namespace loupe::cli
