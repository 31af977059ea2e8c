// `loupe explain` (placeholder until its work lands).
#include <iostream>

#include "cli/commands.hpp"

namespace loupe::cli {

int run_explain(int, char**) {
  std::cerr << "loupe explain: not available yet\n";
  return 2;
}

}  // namespace loupe::cli
