// `loupe evaluate` (placeholder until its work lands).
#include <iostream>

#include "cli/commands.hpp"

namespace loupe::cli {

int run_evaluate(int, char**) {
  std::cerr << "loupe evaluate: not available yet\n";
  return 2;
}

}  // namespace loupe::cli
