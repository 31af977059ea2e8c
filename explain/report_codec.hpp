// The per-image part of an explanation report as bytes, and back: how the ranks of a sharded
// `mpirun -np N loupe explain` send their images' results to rank 0, which writes one report
// (cli/explain.cpp, docs/distributed.md). Text tokens: a string is "<length>:<bytes>", a number
// is written with 17 significant digits (read back as the same double).
// Tests: tests/distributed/test_explain_shards.cpp
#pragma once

#include <string>
#include <vector>

#include "explain/report.hpp"

namespace loupe::explain {

std::string encode_report_images(const std::vector<ReportImage>& images);
// Raises loupe::Error naming the position when the bytes are not what encode_report_images wrote.
std::vector<ReportImage> decode_report_images(const std::string& bytes);

}  // namespace loupe::explain
