// Writing result files atomically: the text goes to a temporary file beside the target (named
// with the process id, so two processes never share it), which is renamed over the target only
// once complete and flushed, so a failed run never leaves a half-written file. A failure raises
// loupe::Error naming the file. An existing target that is not a regular file (a folder, a device
// such as /dev/full) is refused rather than replaced. Tests: tests/report/test_report.cpp.
#pragma once

#include <string>

namespace loupe::report {

void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace loupe::report
