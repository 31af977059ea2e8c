// Writing result files atomically: the text goes to a temporary file beside the target, which is
// renamed over it only once complete, so a failed run never leaves a half-written file.
#pragma once

#include <string>

namespace loupe::cli {

void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace loupe::cli
