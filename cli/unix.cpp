// `loupe unix SUBCOMMAND`: the Uni-X experiment's commands, one file each (cli/unix_*.cpp):
//   train       one arm on digits + text; model.safetensors, metrics.json, checkpoints
//   eval        held-out per-modality loss of a saved run
//   conflict    gradient conflict by depth of a run's model or checkpoints (CSV + HTML)
//   sample      digit images drawn from a caption prompt (PNG)
//   experiment  Shared-L, Uni-X-L and a parameter-matched Shared control over seeds (JSON + HTML)
// Tests: tests/unix/test_unix_cli.cpp
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "cli/unix_common.hpp"

namespace loupe::cli {

int run_unix(int argc, char** argv) {
  const std::string sub = argc >= 3 ? argv[2] : "";
  if (sub.empty() || sub == "--help" || sub == "-h") {
    std::cout << "usage: loupe unix train|eval|conflict|sample|experiment [options]   (the Uni-X experiment;\n"
                 "       'loupe unix SUBCOMMAND --help' for each)\n";
    return sub.empty() ? 2 : 0;
  }
  if (sub == "train") return run_unix_train(argc, argv);
  if (sub == "eval") return run_unix_eval(argc, argv);
  if (sub == "conflict") return run_unix_conflict(argc, argv);
  if (sub == "sample") return run_unix_sample(argc, argv);
  if (sub == "experiment") return run_unix_experiment(argc, argv);
  LOUPE_CHECK(false, "unknown subcommand 'unix ", sub, "' (known: train, eval, conflict, sample, experiment)");
  return 2;
}

}  // namespace loupe::cli
