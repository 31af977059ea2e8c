// The three-arm Uni-X experiment (REFERENCE.md section 8, "a fair small study adds a
// total-parameter-matched shared control"):
//   shared    Shared-L: every layer shared (N = M = 0)
//   unix      Uni-X-L: layers [0, N) and [L-M, L) per modality, N = M = `separated`; the same
//             active parameters per token as shared, more in total
//   matched   a Shared control whose total parameters match Uni-X's within `match_tolerance`
//             (relative): more layers first (L + k layers, the closest count), else a wider SwiGLU
//             at L layers; count_parameters decides, and both counts are reported
//   mot       (with_mot) Mixture-of-Transformers-L: per-modality weights in every layer, global
//             attention (unix/mot.hpp); no shared layer, so no conflict profile
// Every arm trains with the same seeds, the same data split and the same data order (unix/run.hpp:
// the order depends on the seed only). Per arm and seed: the held-out masked loss per modality,
// tokens/s of training, and the gradient-conflict profile of the shared layers at the
// initialisation and after training (the conflict batches are the same for every arm).
// Results as JSON and an HTML report (mean +- sample std over seeds; conflict by depth).
// Tests: tests/unix/test_experiment.cpp, tests/unix/test_unix_cli.cpp
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "unix/conflict.hpp"
#include "unix/data.hpp"
#include "unix/model.hpp"
#include "unix/run.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

struct ExperimentConfig {
  RunConfig base;         // layers L, hidden, heads, steps, batch size, lr, eval_sequences (arm, N, M ignored)
  int64_t separated = 1;  // N = M of the Uni-X arm
  std::vector<uint64_t> seeds = {0, 1, 2};
  int64_t conflict_batches = 8;  // text-only and image-text batches each
  int64_t conflict_batch_size = 16;
  double match_tolerance = 0.03;  // |total(matched) / total(unix) - 1|
  bool with_mot = false;          // a fourth arm: Mixture-of-Transformers at L (no conflict: nothing shared)
};

struct ExperimentArm {
  std::string name;         // "shared", "unix", "matched", "mot"
  std::string description;  // "Shared-L6", "Uni-X-L6 (N=1, M=1)", "Shared-L8 (parameter-matched)"
  RunConfig run;
  ParameterCount params;
  std::string label;  // short, for plot legends: "Shared-L6", "Uni-X-L6 (N=M=1)", "Shared-L8 (matched)"
};

ParameterCount count_run_parameters(const RunConfig& run, int64_t vocab_size);
// The shared run closest in total parameters to `target_total` (more layers, else a wider MLP), within
// `tolerance`; throws loupe::Error naming both counts when none is.
RunConfig matched_control(const RunConfig& shared, int64_t target_total, int64_t vocab_size, double tolerance);
std::vector<ExperimentArm> experiment_arms(const ExperimentConfig& config, int64_t vocab_size);

struct ArmSeedResult {
  std::string arm;
  uint64_t seed = 0;
  std::map<Modality, HeldoutLoss> heldout;
  TrainResult train;
  double tokens_per_second = 0.0;
  std::vector<ConflictRow> conflict_initial, conflict_final;  // shared layers only
};

struct ExperimentResult {
  ExperimentConfig config;
  int64_t vocab_size = 0, seq_len = 0;
  std::vector<ExperimentArm> arms;
  std::vector<ArmSeedResult> runs;  // seed-major: every arm of seed 0, then of seed 1, ...
  std::string machine;              // CPU model and threads
  double seconds = 0.0;
};

// Called with a line of progress, and after each finished (arm, seed) with the partial result.
struct ExperimentCallbacks {
  std::function<void(const std::string&)> progress;
  std::function<void(const ExperimentResult&)> run_done;
};

// `data_config.seed` is replaced by each seed, its source by config.base.dataset; the models train on
// `device` (initialised on the CPU, so the same weights on any device). `model_dir` non-empty: each trained model is
// saved as model_dir/<arm>_seed<k>.safetensors (with save_run_model's metadata).
ExperimentResult run_experiment(const ExperimentConfig& config, const DataConfig& data_config,
                                const ExperimentCallbacks& callbacks = {}, const std::string& model_dir = "",
                                Device device = Device::cpu());

// The CPU model (from /proc/cpuinfo, "unknown CPU" elsewhere) and the engine's thread count.
std::string machine_description();

struct MeanStd {
  double mean = 0.0, std = 0.0;  // sample std (0 for one value); NaN mean when empty
  int64_t n = 0;
};
MeanStd mean_std(const std::vector<double>& values);
// Over the seeds of one arm: heldout loss of modality m, tokens/s.
MeanStd arm_heldout(const ExperimentResult& result, const std::string& arm, Modality m);
MeanStd arm_tokens_per_second(const ExperimentResult& result, const std::string& arm);

// The pre-registered contrasts (docs/unix.md), per seed then mean +- std, from the trained
// "all" rows: for each arm, the mean conflict over its middle layers [N', L'-N') with N' = the
// Uni-X arm's N (what Uni-X shares), and for arms measuring every layer the U-shape
// "ends minus middle" = mean conflict of layers 0 and L'-1 minus that middle mean.
struct Contrast {
  std::string name;  // "shared: ends - middle", "unix: middle", ...
  std::vector<double> per_seed;
  MeanStd summary;
};
std::vector<Contrast> experiment_contrasts(const ExperimentResult& result);

std::string experiment_json(const ExperimentResult& result, const std::string& command);
std::string experiment_html(const ExperimentResult& result, const std::string& command);

}  // namespace loupe::unix
