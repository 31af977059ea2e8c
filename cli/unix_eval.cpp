// `loupe unix eval`: the held-out masked loss per modality (image tokens, captions, text-only) of a
// saved run, on the held-out split of the run's seed (the same sequences and batches as `loupe
// unix train` evaluates, so it reproduces metrics.json's heldout_loss).
//
//   loupe unix eval --run runs/unix-quick [--eval-sequences N] [--json]
// Tests: tests/unix/test_unix_cli.cpp (runs this program).
#include <cmath>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/unix_common.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kEvalOptions = unix_cli::with_data_options({
    {"run", "DIR", "", "a run folder of loupe unix train (or its model.safetensors, or a checkpoint file)"},
    {"eval-sequences", "N", "0", "held-out sequences per kind (0: as the run was evaluated; -1: all)"},
    {"json", "", "", "print JSON instead of the table"},
});

const char* kEvalSummary =
    "Held-out masked next-token loss per modality (image tokens, captions, text-only) of a model saved\n"
    "by loupe unix train, on the held-out split of the run's seed.";

}  // namespace

int run_unix_eval(int argc, char** argv) {
  const Args args(kEvalOptions, argc, argv, 3);
  if (args.help()) {
    std::cout << usage("unix eval", kEvalSummary, kEvalOptions);
    return 0;
  }
  const std::string model_path = unix_cli::run_model_path(args.get("run"));
  const int64_t requested = args.get_int("eval-sequences");
  LOUPE_CHECK(requested >= -1, "option --eval-sequences must be -1 (all), 0 (as trained) or positive, got ", requested);
  unix_cli::LoadedRun loaded = unix_cli::load_run(model_path);
  const int64_t eval_sequences = requested == 0 ? loaded.run.eval_sequences : requested;
  const unix::UnixData data = unix_cli::load_data(args, loaded.run.seed, loaded.run.dataset);
  loaded.lm->to(unix_cli::device_option(args));
  unix_cli::check_vocab(data, loaded.vocab_size, model_path);
  const unix::HeldoutSet heldout = unix::heldout_set(data, eval_sequences);
  const std::map<unix::Modality, unix::HeldoutLoss> held =
      unix::heldout_losses(*loaded.lm, data.vocab, heldout.all(), data.seq_len());
  const unix::ParameterCount params = unix::count_parameters(*loaded.lm);

  if (args.flag("json")) {
    std::cout << "{\n  \"command\": \"unix eval\",\n  \"model\": " << json::quote(model_path)
              << ",\n  \"arm\": " << json::quote(loaded.run.arm) << ",\n  \"seed\": " << loaded.run.seed
              << ",\n  \"parameters_total\": " << params.total << ",\n  \"parameters_active\": " << params.active
              << ",\n  \"heldout_sequences\": {\"multimodal\": " << heldout.multimodal.size()
              << ", \"text\": " << heldout.text.size()
              << "},\n  \"heldout_loss\": " << unix_cli::heldout_json(held, false)
              << ",\n  \"heldout_tokens\": " << unix_cli::heldout_json(held, true) << "\n}\n";
    return 0;
  }
  std::cout << "model " << model_path << ": arm " << loaded.run.arm << ", L " << loaded.run.layers << " (N "
            << loaded.run.front << ", M " << loaded.run.back << "), seed " << loaded.run.seed << ", "
            << heldout.multimodal.size() << " multimodal and " << heldout.text.size() << " text sequences\n"
            << "\nheld-out modality   masked loss   tokens\n";
  char line[128];
  for (const auto& [m, h] : held) {
    std::snprintf(line, sizeof line, "%-18s %12.4f %8.0f\n", unix::modality_name(m), h.loss, h.tokens);
    std::cout << line;
  }
  return 0;
}

}  // namespace loupe::cli
