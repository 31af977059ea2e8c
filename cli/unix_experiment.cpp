// `loupe unix experiment`: the three-arm Uni-X experiment of unix/experiment.hpp in one command —
// Shared-L, Uni-X-L (N = M = --separated) and a total-parameter-matched Shared control, each
// trained with the same seeds and data order; per-modality held-out loss, tokens/s, parameter
// counts and the conflict profile by depth of the shared layers (at the initialisation and after
// training).
//
//   loupe unix experiment --seeds 0,1,2 --out runs/unix-experiment        (the documented run)
//   loupe unix experiment --quick --out /tmp/x                             (seconds; for tests)
//
// Writes OUT/experiment.json and OUT/report.html after every finished (arm, seed), so a stopped
// run keeps what it measured; at the end also OUT/conflict_<arm>_seed<k>.csv (initial and trained
// rows, step 0 and step S), OUT/conflict_by_depth.svg, raw_cosine_, baseline_cosine_ and
// within_batch_cosine_by_depth.svg (trained), and
// with --save-models OUT/models/<arm>_seed<k>.safetensors (usable by unix eval / sample).
// Tests: tests/unix/test_unix_cli.cpp (runs this program).
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/unix_common.hpp"
#include "unix/experiment.hpp"
#include "unix/report.hpp"

namespace loupe::cli {

namespace {

namespace fs = std::filesystem;

const std::vector<OptionSpec> kExperimentOptions = unix_cli::with_data_options({
    {"quick", "", "", "a tiny run for tests (L 4, hidden 32, 30 steps, seed 0, 2 conflict batches): seconds"},
    {"dataset", "NAME", "digits", "images: digits (8x8, 17 levels) or fashion-mnist (14x14, 16 levels)"},
    {"seeds", "LIST", "0,1,2", "seeds (each: data split, data order and initialisation; default 0 with --quick)"},
    {"layers", "L", "", "decoder layers of Shared-L and Uni-X-L (default: 4 with --quick, else 6)"},
    {"separated", "N", "1", "Uni-X's separated layers at each end (N = M)"},
    {"hidden", "C", "", "hidden width (default: 32 with --quick, else 64)"},
    {"heads", "H", "4", "attention heads"},
    {"steps", "S", "", "training steps per run (default: 30 with --quick, else 800)"},
    {"batch-size", "B", "16", "sequences per step (half multimodal, half text-only)"},
    {"lr", "X", "0.003", "Adam learning rate"},
    {"eval-sequences", "N", "", "held-out sequences per kind (default: 64 with --quick, else all)"},
    {"conflict-batches", "N", "", "text-only and image-text batches each for the conflict (default: 2 quick, else 8)"},
    {"conflict-batch-size", "B", "16", "sequences per conflict batch"},
    {"match-tolerance", "X", "0.03", "relative tolerance of the parameter-matched control's total parameters"},
    {"with-mot", "", "", "add a fourth arm: Mixture-of-Transformers at L layers (per-modality weights everywhere)"},
    {"save-models", "", "", "also save every trained model under OUT/models/"},
    {"out", "DIR", "runs/unix-experiment", "output folder (created if missing)"},
});

const char* kExperimentSummary =
    "The three-arm Uni-X experiment: Shared-L, Uni-X-L (N = M = --separated) and a Shared control\n"
    "with as many total parameters as Uni-X, same seeds and data order. Writes experiment.json and\n"
    "report.html (held-out loss per modality, tokens/s, parameters, conflict by depth).";

}  // namespace

int run_unix_experiment(int argc, char** argv) {
  const Args args(kExperimentOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("unix experiment", kExperimentSummary, kExperimentOptions);
    return 0;
  }
  const bool quick = args.flag("quick");
  const auto positive = [&](const std::string& name, int64_t fallback) {
    if (args.get(name).empty()) return fallback;
    const int64_t value = args.get_int(name);
    LOUPE_CHECK(value >= 1, "option --", name, " must be positive, got ", value);
    return value;
  };
  unix::ExperimentConfig config;
  config.base.layers = positive("layers", quick ? 4 : 6);
  config.base.hidden = positive("hidden", quick ? 32 : 64);
  config.base.heads = positive("heads", 4);
  config.base.steps = positive("steps", quick ? 30 : 800);
  config.base.batch_size = positive("batch-size", 16);
  config.base.lr = args.get_double("lr");
  config.base.eval_sequences = positive("eval-sequences", quick ? 64 : -1);
  config.base.arm = "shared";
  config.base.dataset = args.get("dataset");
  config.base.front = config.base.back = 0;
  config.separated = positive("separated", 1);
  config.conflict_batches = positive("conflict-batches", quick ? 2 : 8);
  config.conflict_batch_size = positive("conflict-batch-size", 16);
  config.match_tolerance = args.get_double("match-tolerance");
  config.with_mot = args.flag("with-mot");
  LOUPE_CHECK(std::isfinite(config.match_tolerance) && config.match_tolerance >= 0 && config.match_tolerance < 1,
              "option --match-tolerance must be in [0, 1), got ", config.match_tolerance);
  const std::string seeds_text = args.get("seeds") == "0,1,2" && quick ? "0" : args.get("seeds");
  config.seeds.clear();
  for (int64_t s : unix_cli::parse_int_list(seeds_text, "seeds")) config.seeds.push_back(static_cast<uint64_t>(s));
  LOUPE_CHECK(!config.seeds.empty(), "option --seeds must list at least one seed");
  try {
    config.base.check();
  } catch (const Error& e) {
    const std::string what = e.what();
    const size_t at = what.find("--");
    throw Error("option " + (at == std::string::npos ? what : what.substr(at)));
  }
  LOUPE_CHECK(2 * config.separated < config.base.layers, "option --separated ", config.separated,
              " leaves no shared middle at --layers ", config.base.layers, " (need 2 N < L)");
  const std::string out = args.get("out");
  LOUPE_CHECK(!out.empty(), "option --out must name a folder");

  const unix::DataConfig data_config = unix_cli::data_config(args, config.base.dataset);
  const Device device = unix_cli::device_option(args);

  std::string command = "loupe unix experiment";
  for (int i = 2 + 1; i < argc; ++i) command += std::string(" ") + argv[i];
  fs::create_directories(out);
  const std::string model_dir = args.flag("save-models") ? (fs::path(out) / "models").string() : "";
  if (!model_dir.empty()) fs::create_directories(model_dir);
  const std::string json_path = (fs::path(out) / "experiment.json").string();
  const std::string html_path = (fs::path(out) / "report.html").string();

  unix::ExperimentCallbacks callbacks;
  callbacks.progress = [](const std::string& line) { std::cerr << line << std::endl; };
  callbacks.run_done = [&](const unix::ExperimentResult& partial) {
    write_text_atomic(json_path, unix::experiment_json(partial, command));
    write_text_atomic(html_path, unix::experiment_html(partial, command));
  };
  const unix::ExperimentResult result = unix::run_experiment(config, data_config, callbacks, model_dir, device);

  for (const unix::ArmSeedResult& r : result.runs) {
    std::vector<unix::ConflictRow> rows = r.conflict_initial;
    rows.insert(rows.end(), r.conflict_final.begin(), r.conflict_final.end());
    if (rows.empty()) continue;  // the MoT arm shares no layer
    unix::write_conflict_csv(
        (fs::path(out) / ("conflict_" + r.arm + "_seed" + std::to_string(r.seed) + ".csv")).string(), rows);
  }
  // The trained profiles as standalone SVG files (for docs): the conflict, and the raw cosine.
  std::vector<unix::ConflictProfile> trained;
  for (const unix::ExperimentArm& arm : result.arms) {
    if (arm.run.arm == "mot") continue;
    unix::ConflictProfile p{arm.label, {}};
    for (const unix::ArmSeedResult& r : result.runs) {
      if (r.arm == arm.name) p.seeds.push_back(r.conflict_final);
    }
    trained.push_back(std::move(p));
  }
  const std::vector<std::string> svgs = unix::conflict_depth_svg_list(trained);
  const char* const svg_names[] = {"conflict_by_depth.svg", "raw_cosine_by_depth.svg", "baseline_cosine_by_depth.svg",
                                   "within_batch_cosine_by_depth.svg"};
  for (size_t i = 0; i < svgs.size() && i < 4; ++i) write_text_atomic((fs::path(out) / svg_names[i]).string(), svgs[i]);

  std::cout << "arm                                       image            caption          text             "
               "tokens/s     total     active\n";
  char line[512];
  for (const unix::ExperimentArm& arm : result.arms) {
    const auto cell = [](const unix::MeanStd& m) {
      char b[64];
      std::snprintf(b, sizeof b, "%.4f +- %.4f", m.mean, m.std);
      return std::string(b);
    };
    const unix::MeanStd t = unix::arm_tokens_per_second(result, arm.name);
    std::snprintf(line, sizeof line, "%-41s %-16s %-16s %-16s %8.0f %9lld %10lld\n", arm.description.c_str(),
                  cell(unix::arm_heldout(result, arm.name, unix::Modality::image)).c_str(),
                  cell(unix::arm_heldout(result, arm.name, unix::Modality::caption)).c_str(),
                  cell(unix::arm_heldout(result, arm.name, unix::Modality::text)).c_str(), t.mean,
                  static_cast<long long>(arm.params.total), static_cast<long long>(arm.params.active));
    std::cout << line;
  }
  std::cout << "\nmachine: " << result.machine << ", " << result.seconds << " s\njson: " << json_path
            << "\nreport: " << html_path << "\n";
  return 0;
}

}  // namespace loupe::cli
