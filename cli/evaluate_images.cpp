// `loupe evaluate-explanations images`: not built yet (issue 12).
#include "cli/commands.hpp"
#include "tensor/error.hpp"

namespace loupe::cli {

int run_evaluate_images(int, char**) { throw Error("evaluate-explanations images: not built yet"); }

}  // namespace loupe::cli
