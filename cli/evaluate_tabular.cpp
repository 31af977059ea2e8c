// `loupe evaluate-explanations tabular`: not built yet (issue 12).
#include "cli/commands.hpp"
#include "tensor/error.hpp"

namespace loupe::cli {

int run_evaluate_tabular(int, char**) { throw Error("evaluate-explanations tabular: not built yet"); }

}  // namespace loupe::cli
