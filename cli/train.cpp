// `loupe train` (placeholder until its work lands).
#include <iostream>

#include "cli/commands.hpp"

namespace loupe::cli {

int run_train(int, char**) {
  std::cerr << "loupe train: not available yet\n";
  return 2;
}

}  // namespace loupe::cli
