// The subcommands of the loupe program. Each takes the whole argv (its options start at argv[2])
// and returns the process exit code.
#pragma once

namespace loupe::cli {

int run_demo(int argc, char** argv);

}  // namespace loupe::cli
