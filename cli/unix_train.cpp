// `loupe unix train`: trains a small Uni-X model (unix/model.hpp) or its fully shared baseline on
// the Uni-X experiment's data (unix/data.hpp: sklearn's digits with captions, and a character-level
// text stream), then reports the held-out masked loss per modality and the training speed.
//
//   loupe unix train --quick --arm unix --out runs/unix-quick [--checkpoint-steps 0,100,250] [--json]
//
// The training loop, the held-out loss and the saved model's metadata are unix/run.hpp's. Writes
// DIR/model.safetensors (the state dict, with the run's settings as metadata), DIR/metrics.json
// (atomically) and, with --checkpoint-steps, DIR/checkpoints/step_<s>.safetensors (the model
// after s updates; 0 = the initialisation) for `loupe unix conflict`.
// Tests: tests/unix/test_unix_cli.cpp (runs this program).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/output.hpp"
#include "cli/unix_common.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kTrainOptions = unix_cli::with_data_options({
    {"quick", "", "", "a small, short run (~15 s on 2 cores): L 4, hidden 64, heads 4, 250 steps"},
    {"arm", "NAME", "unix",
     "unix (two-end-separated layers), shared (the fully shared baseline) or mot (Mixture-of-Transformers)"},
    {"dataset", "NAME", "digits", "images: digits (8x8, 17 levels) or fashion-mnist (14x14, 16 levels)"},
    {"layers", "L", "", "decoder layers (default: 4 with --quick, else 8)"},
    {"separated-front", "N", "-1", "separated layers at the front (-1: unix arm 1 quick / 2, shared 0)"},
    {"separated-back", "M", "-1", "separated layers at the back (-1: as --separated-front)"},
    {"hidden", "C", "", "hidden width (default: 64 with --quick, else 128)"},
    {"intermediate", "F", "0", "SwiGLU width (0: 8/3 of --hidden rounded up to 8)"},
    {"heads", "H", "4", "attention heads"},
    {"steps", "S", "", "training steps (default: 250 with --quick, else 2000)"},
    {"batch-size", "B", "16", "sequences per step (half multimodal, half text-only)"},
    {"lr", "X", "0.003", "Adam learning rate"},
    {"seed", "K", "0", "data split, sequence order and initialisation"},
    {"eval-sequences", "N", "0", "held-out sequences per kind evaluated (0: 192 with --quick, else all)"},
    {"checkpoint-steps", "LIST", "", "also save the model after these many updates, e.g. 0,100,250 (0 = initial)"},
    {"out", "DIR", "runs/unix", "output folder (created if missing)"},
    {"json", "", "", "print the JSON (also written to DIR/metrics.json) instead of the table"},
});

const char* kTrainSummary =
    "Uni-X experiment: trains an L-layer decoder whose first N and last M layers are separate per\n"
    "modality (--arm unix) or all shared (--arm shared) with Adam on mixed batches of image-caption\n"
    "and text-only sequences, then reports the held-out masked loss per modality (image tokens,\n"
    "captions, text-only) and tokens/s. Writes DIR/model.safetensors and DIR/metrics.json.";

}  // namespace

int run_unix_train(int argc, char** argv) {
  const Args args(kTrainOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("unix train", kTrainSummary, kTrainOptions);
    return 0;
  }
  const bool quick = args.flag("quick");
  unix::RunConfig run;
  run.arm = args.get("arm");
  run.dataset = args.get("dataset");
  LOUPE_CHECK(run.arm == "unix" || run.arm == "shared" || run.arm == "mot",
              "option --arm must be unix, shared or mot, got '", run.arm, "'");
  // An option left out takes its --quick or full default; one given must be positive.
  const auto positive = [&](const std::string& name, int64_t fallback) {
    if (args.get(name).empty()) return fallback;
    const int64_t value = args.get_int(name);
    LOUPE_CHECK(value >= 1, "option --", name, " must be positive, got ", value);
    return value;
  };
  run.layers = positive("layers", quick ? 4 : 8);
  run.hidden = positive("hidden", quick ? 64 : 128);
  run.intermediate = args.get_int("intermediate");
  run.heads = args.get_int("heads");
  run.steps = positive("steps", quick ? 250 : 2000);
  run.batch_size = args.get_int("batch-size");
  run.lr = args.get_double("lr");
  const int64_t seed = args.get_int("seed");
  LOUPE_CHECK(seed >= 0, "option --seed must be >= 0, got ", seed);
  run.seed = static_cast<uint64_t>(seed);
  const int64_t eval_sequences = args.get_int("eval-sequences");
  LOUPE_CHECK(eval_sequences >= 0, "option --eval-sequences must be >= 0, got ", eval_sequences);
  run.eval_sequences = eval_sequences != 0 ? eval_sequences : (quick ? 192 : -1);
  run.front = args.get_int("separated-front");
  if (run.front == -1) run.front = run.arm != "unix" ? 0 : (quick ? 1 : 2);
  run.back = args.get_int("separated-back");
  if (run.back == -1) run.back = run.front;
  try {
    run.check();
  } catch (const Error& e) {
    // The check names the option; drop its "unix run: " prefix for the command's own message.
    const std::string what = e.what();
    const size_t at = what.find("--");
    throw Error("option " + (at == std::string::npos ? what : what.substr(at)));
  }
  const std::vector<int64_t> checkpoint_steps =
      args.get("checkpoint-steps").empty() ? std::vector<int64_t>{}
                                           : unix_cli::parse_int_list(args.get("checkpoint-steps"), "checkpoint-steps");
  for (int64_t s : checkpoint_steps) {
    LOUPE_CHECK(s <= run.steps, "option --checkpoint-steps: step ", s, " is beyond --steps ", run.steps);
  }
  const std::string folder = args.get("out");
  LOUPE_CHECK(!folder.empty(), "option --out must name a folder");

  const Device device = unix_cli::device_option(args);
  const unix::UnixData data = unix_cli::load_data(args, run.seed, run.dataset);
  const unix::Vocabulary& vocab = data.vocab;
  const int64_t T = data.seq_len();
  const unix::HeldoutSet heldout = unix::heldout_set(data, run.eval_sequences);

  const unix::UnixConfig config = unix::model_config(run, vocab.size());
  Generator generator(run.seed);
  unix::UnixLM lm(config, &generator);  // initialised on the CPU (the same weights on any device)
  const unix::ParameterCount params = unix::count_parameters(lm);
  lm.to(device);

  std::filesystem::create_directories(folder);
  const std::filesystem::path checkpoint_dir = std::filesystem::path(folder) / "checkpoints";
  std::vector<std::string> checkpoint_files;
  if (!checkpoint_steps.empty()) std::filesystem::create_directories(checkpoint_dir);
  const unix::TrainResult trained =
      unix::train_run(lm, data, run, checkpoint_steps, [&](int64_t step, unix::UnixLM& m) {
        const std::string path = (checkpoint_dir / ("step_" + std::to_string(step) + ".safetensors")).string();
        unix::save_run_model(m, run, path);
        checkpoint_files.push_back(path);
      });
  const double tokens_per_second = trained.tokens / std::max(trained.seconds, 1e-9);

  lm.eval();
  const auto eval_start = std::chrono::steady_clock::now();
  const std::map<unix::Modality, unix::HeldoutLoss> held = unix::heldout_losses(lm, vocab, heldout.all(), T);
  const double eval_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - eval_start).count();

  const std::string model_path = (std::filesystem::path(folder) / "model.safetensors").string();
  unix::save_run_model(lm, run, model_path);

  const double bound = std::log(static_cast<double>(vocab.size()));
  using unix_cli::json_number;
  std::ostringstream json;
  json << "{\n  \"command\": \"unix train\",\n  \"arm\": " << json::quote(run.arm)
       << ",\n  \"quick\": " << (quick ? "true" : "false") << ",\n  \"layers\": " << run.layers
       << ",\n  \"hidden\": " << run.hidden << ",\n  \"intermediate\": " << config.intermediate
       << ",\n  \"heads\": " << run.heads << ",\n  \"separated_front\": " << run.front
       << ",\n  \"separated_back\": " << run.back << ",\n  \"steps\": " << run.steps
       << ",\n  \"batch_size\": " << run.batch_size << ",\n  \"lr\": " << json_number(run.lr)
       << ",\n  \"seed\": " << run.seed << ",\n  \"dataset\": " << json::quote(run.dataset)
       << ",\n  \"device\": " << json::quote(device.str()) << ",\n  \"vocab_size\": " << vocab.size()
       << ",\n  \"seq_len\": " << T << ",\n  \"parameters_total\": " << params.total
       << ",\n  \"parameters_active\": " << params.active << ",\n  \"initial_loss_bound\": " << json_number(bound)
       << ",\n  \"train_loss_first\": " << json_number(trained.first_loss)
       << ",\n  \"train_loss_last\": " << json_number(trained.last_loss)
       << ",\n  \"heldout_sequences\": {\"multimodal\": " << heldout.multimodal.size()
       << ", \"text\": " << heldout.text.size() << "}"
       << ",\n  \"heldout_loss\": " << unix_cli::heldout_json(held, false)
       << ",\n  \"heldout_tokens\": " << unix_cli::heldout_json(held, true)
       << ",\n  \"train_tokens\": " << json_number(trained.tokens)
       << ",\n  \"train_seconds\": " << json_number(trained.seconds)
       << ",\n  \"tokens_per_second\": " << json_number(tokens_per_second)
       << ",\n  \"eval_seconds\": " << json_number(eval_seconds) << ",\n  \"checkpoints\": [";
  for (size_t i = 0; i < checkpoint_files.size(); ++i) json << (i ? ", " : "") << json::quote(checkpoint_files[i]);
  json << "],\n  \"model\": " << json::quote(model_path) << "\n}\n";
  write_text_atomic((std::filesystem::path(folder) / "metrics.json").string(), json.str());

  if (args.flag("json")) {
    std::cout << json.str();
    return 0;
  }
  char line[256];
  std::snprintf(line, sizeof line,
                "arm %s: L %lld (N %lld, M %lld), hidden %lld, %lld parameters (%lld active), %lld steps of %lld\n",
                run.arm.c_str(), static_cast<long long>(run.layers), static_cast<long long>(run.front),
                static_cast<long long>(run.back), static_cast<long long>(run.hidden),
                static_cast<long long>(params.total), static_cast<long long>(params.active),
                static_cast<long long>(run.steps), static_cast<long long>(run.batch_size));
  std::cout << line;
  std::snprintf(line, sizeof line, "train loss %.4f -> %.4f (log V = %.4f), %.0f tokens/s over %.1f s\n",
                trained.first_loss, trained.last_loss, bound, tokens_per_second, trained.seconds);
  std::cout << line << "\nheld-out modality   masked loss   tokens\n";
  for (const auto& [m, h] : held) {
    std::snprintf(line, sizeof line, "%-18s %12.4f %8.0f\n", unix::modality_name(m), h.loss, h.tokens);
    std::cout << line;
  }
  for (const std::string& c : checkpoint_files) std::cout << "checkpoint: " << c << "\n";
  std::cout << "\nmodel: " << model_path << "\nmetrics: " << (std::filesystem::path(folder) / "metrics.json").string()
            << "\n";
  return 0;
}

}  // namespace loupe::cli
