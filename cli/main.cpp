// The loupe command-line program: one binary with subcommands. User errors (loupe::Error) are
// printed as one line and give exit code 1; they never abort.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>
#include <string>

#include "cli/commands.hpp"
#include "tensor/error.hpp"
#include "tensor/parallel.hpp"

namespace {

const char* kUsage =
    "usage: loupe <command> [options]\n"
    "\n"
    "commands:\n"
    "  demo      train a small ResNet on Fashion-MNIST, report its test accuracy, explain a few test images\n"
    "  train     train a model of the zoo on an image data set\n"
    "  evaluate  metrics of a checkpoint on a data set (table, confusion matrix, --json)\n"
    "  predict   per-image probabilities of a checkpoint\n"
    "  explain   attributions of a checkpoint's prediction (heatmaps, .npy)\n"
    "  profile   neuron activation profiles: which feature maps respond to which group of images\n"
    "  unix      the Uni-X experiment: train a two-end-separated or shared model on images + text\n"
    "  evaluate-explanations  how faithful the attribution methods are (tabular LFA suite, image suite)\n"
    "  study     the chest X-ray study end to end: five CNNs, ensembles, explanations, one report\n"
    "\n"
    "Run 'loupe <command> --help' for the options of a command.\n";

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0) {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  // One line at a time even into a file or a pipe: a log of a long run (loupe train > log.txt,
  // loupe train | tee) then shows each epoch as it ends, not in 4 KiB chunks at exit.
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    loupe::check_thread_environment();  // a bad LOUPE_NUM_THREADS stops every command up front
    if (command == "demo") return loupe::cli::run_demo(argc, argv);
    if (command == "train") return loupe::cli::run_train(argc, argv);
    if (command == "evaluate") return loupe::cli::run_evaluate(argc, argv);
    if (command == "predict") return loupe::cli::run_predict(argc, argv);
    if (command == "explain") return loupe::cli::run_explain(argc, argv);
    if (command == "profile") return loupe::cli::run_profile(argc, argv);
    if (command == "unix") return loupe::cli::run_unix(argc, argv);
    if (command == "evaluate-explanations") return loupe::cli::run_evaluate_explanations(argc, argv);
    if (command == "study") return loupe::cli::run_study(argc, argv);
  } catch (const loupe::Error& error) {
    std::cerr << "loupe " << command << ": " << error.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "loupe " << command << ": out of memory\n";
    return 1;
  } catch (const std::exception& error) {  // a library's exception (filesystem, ...): still one line, exit 1
    std::cerr << "loupe " << command << ": " << error.what() << "\n";
    return 1;
  }
  std::cerr << "loupe: unknown command '" << command << "'\n" << kUsage;
  return 2;
}
