// `loupe evaluate-explanations SUITE`: how faithful are the attribution methods? Two suites, each
// writing its tables, curves and an HTML report into its own folder:
//   tabular  the LFA framework of Han et al. 2022 on scikit-learn's tabular data sets
//            (cli/evaluate_tabular.cpp)
//   images   deletion/insertion, infidelity, sensitivity, the randomisation check and the
//            baseline study on image models (cli/evaluate_images.cpp)
//   all      both, into DIR/tabular and DIR/images (--quick and --device pass through):
//            loupe evaluate-explanations all [--quick] --out DIR
// Run 'loupe evaluate-explanations SUITE --help' for a suite's options.
#include <iostream>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "tensor/error.hpp"

namespace loupe::cli {

namespace {

// Runs both suites with their defaults, each in its own folder under --out.
int run_all_suites(int argc, char** argv) {
  std::string out, device;
  bool quick = false;
  for (int i = 3; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--quick") {
      quick = true;
    } else if ((arg == "--out" || arg == "--device") && i + 1 < argc) {
      (arg == "--out" ? out : device) = argv[++i];
    } else if (arg == "--help" || arg == "-h") {
      std::cout << "usage: loupe evaluate-explanations all [--quick] [--device NAME] --out DIR\n"
                   "Runs the tabular suite into DIR/tabular and the images suite into DIR/images.\n";
      return 0;
    } else {
      throw Error("all: unknown or incomplete option '" + arg +
                  "' (known: --quick, --device NAME, --out DIR; run a suite on its own for more)");
    }
  }
  LOUPE_CHECK(!out.empty(), "all: option --out DIR is required");
  const auto run_suite = [&](const std::string& suite, int (*run)(int, char**), bool takes_device) {
    std::vector<std::string> words = {argv[0], argv[1], suite, "--out", out + "/" + suite};
    if (quick) words.push_back("--quick");
    if (takes_device && !device.empty()) words.insert(words.end(), {"--device", device});
    std::vector<char*> args;
    for (auto& w : words) args.push_back(w.data());
    args.push_back(nullptr);
    std::cerr << "evaluate-explanations all: " << suite << " suite -> " << out << "/" << suite << "\n";
    return run(static_cast<int>(words.size()), args.data());
  };
  const int tabular = run_suite("tabular", run_evaluate_tabular, false);
  if (tabular != 0) return tabular;
  return run_suite("images", run_evaluate_images, true);
}

}  // namespace

int run_evaluate_explanations(int argc, char** argv) {
  const std::string suite = argc >= 3 ? argv[2] : "";
  if (suite.empty() || suite == "--help" || suite == "-h") {
    std::cout << "usage: loupe evaluate-explanations tabular|images|all [options]\n"
                 "  tabular  LFA agreement, no-free-lunch, model recovery and PGI/PGU on sklearn's tabular data\n"
                 "  images   faithfulness metrics, sanity check and baselines on image models\n"
                 "  all      both suites, into DIR/tabular and DIR/images\n"
                 "Run 'loupe evaluate-explanations SUITE --help' for a suite's options.\n";
    return suite.empty() ? 2 : 0;
  }
  if (suite == "tabular") return run_evaluate_tabular(argc, argv);
  if (suite == "images") return run_evaluate_images(argc, argv);
  if (suite == "all") return run_all_suites(argc, argv);
  throw Error("evaluate-explanations: unknown suite '" + suite + "' (known: tabular, images, all)");
}

}  // namespace loupe::cli
