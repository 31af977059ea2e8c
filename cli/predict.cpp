// `loupe predict` (placeholder until its work lands).
#include <iostream>

#include "cli/commands.hpp"

namespace loupe::cli {

int run_predict(int, char**) {
  std::cerr << "loupe predict: not available yet\n";
  return 2;
}

}  // namespace loupe::cli
