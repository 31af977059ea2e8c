// `loupe unix conflict`: the gradient-conflict profile (REFERENCE.md section 8, unix/conflict.hpp)
// of a run's model at several checkpoints: every DIR/checkpoints/step_<s>.safetensors written by
// `loupe unix train --checkpoint-steps`, then the final DIR/model.safetensors (and, with --fresh,
// a freshly initialised model of the run's shape and seed as step 0 when no checkpoint 0 exists).
// Only shared layers are measured ([N, L-M) for Uni-X). Writes OUT/conflict.csv (one row per
// checkpoint, shared layer and weight matrix, plus a per-layer "all" row) and OUT/conflict.html
// (conflict, raw and baseline cosines by depth; the within-batch variant labelled as not the
// paper's metric).
//
//   loupe unix conflict --run runs/unix-quick [--batches 8] [--out DIR]
// Tests: tests/unix/test_unix_cli.cpp (runs this program).
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <regex>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/unix_common.hpp"
#include "unix/report.hpp"

namespace loupe::cli {

namespace {

namespace fs = std::filesystem;

const std::vector<OptionSpec> kConflictOptions = unix_cli::with_data_options({
    {"run", "DIR", "", "a run folder of loupe unix train (or one model / checkpoint file)"},
    {"batches", "N", "8", "text-only and image-text batches each (the mean gradients' sample size)"},
    {"batch-size", "B", "16", "sequences per batch"},
    {"seed", "K", "0", "the order of the measured batches and the random halves A, B"},
    {"fresh", "", "", "also measure a freshly initialised model of the run (step 0) when no checkpoint 0 exists"},
    {"out", "DIR", "", "output folder (default: RUN/conflict)"},
});

const char* kConflictSummary =
    "Gradient conflict per shared layer and weight matrix, -(cos(g_t, g_m) - cos(g_A, g_B)) with g_t, g_m\n"
    "the mean gradients of text-only and image-text batches and g_A, g_B those of two random halves of\n"
    "the pool, at every checkpoint of a run. Writes conflict.csv and conflict.html.";

struct Measured {
  int64_t step = 0;
  std::string path;  // "" for the fresh model
};

}  // namespace

int run_unix_conflict(int argc, char** argv) {
  const Args args(kConflictOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("unix conflict", kConflictSummary, kConflictOptions);
    return 0;
  }
  const std::string run_arg = args.get("run");
  const std::string model_path = unix_cli::run_model_path(run_arg);
  const int64_t batches = args.get_int("batches");
  const int64_t batch_size = args.get_int("batch-size");
  const int64_t seed = args.get_int("seed");
  LOUPE_CHECK(batches >= 1, "option --batches must be positive, got ", batches);
  LOUPE_CHECK(batch_size >= 1, "option --batch-size must be positive, got ", batch_size);
  LOUPE_CHECK(seed >= 0, "option --seed must be >= 0, got ", seed);
  const bool is_folder = fs::is_directory(run_arg);
  const std::string out =
      !args.get("out").empty()
          ? args.get("out")
          : ((is_folder ? fs::path(run_arg) : fs::path(model_path).parent_path()) / "conflict").string();

  int64_t vocab_size = 0;
  const unix::RunConfig run = unix::load_run_config(model_path, &vocab_size);
  // Which models: the checkpoints (sorted by step), then the final model.
  std::vector<Measured> models;
  const std::regex step_name("step_([0-9]+)\\.safetensors");
  if (is_folder && fs::is_directory(fs::path(run_arg) / "checkpoints")) {
    for (const auto& entry : fs::directory_iterator(fs::path(run_arg) / "checkpoints")) {
      std::smatch m;
      const std::string name = entry.path().filename().string();
      if (entry.is_regular_file() && std::regex_match(name, m, step_name)) {
        models.push_back({std::stoll(m[1].str()), entry.path().string()});
      }
    }
  }
  std::sort(models.begin(), models.end(), [](const Measured& a, const Measured& b) { return a.step < b.step; });
  const auto has_step = [&](int64_t s) {
    return std::any_of(models.begin(), models.end(), [s](const Measured& m) { return m.step == s; });
  };
  {
    std::smatch m;
    const std::string name = fs::path(model_path).filename().string();
    const int64_t final_step = std::regex_match(name, m, step_name) ? std::stoll(m[1].str()) : run.steps;
    if (!has_step(final_step)) models.push_back({final_step, model_path});
  }
  if (args.flag("fresh") && !has_step(0)) models.insert(models.begin(), {0, ""});

  const Device device = unix_cli::device_option(args);
  const unix::UnixData data = unix_cli::load_data(args, run.seed, run.dataset);
  unix_cli::check_vocab(data, vocab_size, model_path);
  const unix::ConflictBatches measured_batches =
      unix::conflict_batches(data, batches, batch_size, static_cast<uint64_t>(seed));

  std::vector<unix::ConflictRow> all_rows;
  std::vector<unix::ConflictProfile> profiles;
  for (const Measured& m : models) {
    std::shared_ptr<unix::UnixLM> lm;
    if (m.path.empty()) {
      Generator generator(run.seed);  // the initialisation train uses
      lm = std::make_shared<unix::UnixLM>(unix::model_config(run, vocab_size), &generator);
    } else {
      unix_cli::LoadedRun loaded = unix_cli::load_run(m.path);
      LOUPE_CHECK(loaded.run.layers == run.layers && loaded.run.front == run.front && loaded.run.back == run.back &&
                      loaded.vocab_size == vocab_size,
                  "unix conflict: checkpoint '", m.path, "' has another shape than '", model_path, "'");
      lm = loaded.lm;
    }
    lm->to(device);
    lm->eval();  // no dropout in these models; eval keeps any future one out of the gradients
    std::vector<unix::ConflictRow> rows =
        unix::run_conflict(*lm, data.vocab, measured_batches, m.step, static_cast<uint64_t>(seed));
    std::cerr << "conflict: step " << m.step << (m.path.empty() ? " (fresh initialisation)" : " (" + m.path + ")")
              << ", " << rows.size() << " rows\n";
    profiles.push_back({run.arm + " L" + std::to_string(run.layers) + ", step " + std::to_string(m.step), {rows}});
    all_rows.insert(all_rows.end(), rows.begin(), rows.end());
  }

  fs::create_directories(out);
  const std::string csv = (fs::path(out) / "conflict.csv").string();
  const std::string html = (fs::path(out) / "conflict.html").string();
  unix::write_conflict_csv(csv, all_rows);
  const std::vector<std::string> notes = {
      "Model: " + model_path + " (arm " + run.arm + ", L " + std::to_string(run.layers) + ", N " +
          std::to_string(run.front) + ", M " + std::to_string(run.back) + ", seed " + std::to_string(run.seed) + ").",
      "Only shared layers are measured. Each point is one layer: the cosines over all its weight matrices (q, k, v, o, "
      "gate, up, down) together; " +
          std::to_string(batches) + " text-only and " + std::to_string(batches) + " image-text batches of " +
          std::to_string(batch_size) + " training sequences.",
      "conflict = -(cos(g_t, g_m) - cos(g_A, g_B)); the raw and the baseline cosine are shown beside it, since at "
      "small scale the baseline term dominates. The within-batch cosine (image-token vs caption-token loss of the same "
      "image-text batches) is NOT the paper's metric.",
  };
  write_text_atomic(html, unix::conflict_report_html("Uni-X gradient conflict", notes, profiles));
  std::cout << "measured " << models.size() << " model(s), " << all_rows.size() << " rows\ncsv: " << csv
            << "\nreport: " << html << "\n";
  return 0;
}

}  // namespace loupe::cli
