// Writing result files atomically: the commands use report::write_text_atomic (report/files.hpp).
#pragma once

#include "report/files.hpp"

namespace loupe::cli {

using report::write_text_atomic;

}  // namespace loupe::cli
