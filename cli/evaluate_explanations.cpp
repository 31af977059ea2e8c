// `loupe evaluate-explanations SUITE`: how faithful are the attribution methods? Two suites, each
// writing its tables, curves and an HTML report into its own folder:
//   tabular  the LFA framework of Han et al. 2022 on scikit-learn's tabular data sets
//            (cli/evaluate_tabular.cpp)
//   images   deletion/insertion, infidelity, sensitivity, the randomisation check and the
//            baseline study on image models (cli/evaluate_images.cpp)
// Run 'loupe evaluate-explanations SUITE --help' for a suite's options.
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "tensor/error.hpp"

namespace loupe::cli {

int run_evaluate_explanations(int argc, char** argv) {
  const std::string suite = argc >= 3 ? argv[2] : "";
  if (suite.empty() || suite == "--help" || suite == "-h") {
    std::cout << "usage: loupe evaluate-explanations tabular|images [options]\n"
                 "  tabular  LFA agreement, no-free-lunch, model recovery and PGI/PGU on sklearn's tabular data\n"
                 "  images   faithfulness metrics, sanity check and baselines on image models\n"
                 "Run 'loupe evaluate-explanations SUITE --help' for a suite's options.\n";
    return suite.empty() ? 2 : 0;
  }
  if (suite == "tabular") return run_evaluate_tabular(argc, argv);
  if (suite == "images") return run_evaluate_images(argc, argv);
  throw Error("evaluate-explanations: unknown suite '" + suite + "' (known: tabular, images)");
}

}  // namespace loupe::cli
