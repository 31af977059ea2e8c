// Conflict by depth for the HTML reports of `loupe unix conflict` and `loupe unix experiment`:
// the per-layer "all" rows of unix/conflict.hpp (the cosines over a layer's measured matrices
// together), averaged over seeds (mean, and the sample standard deviation as error bars), drawn as
// four SVG line plots by layer index: the conflict -(cos(g_t, g_m) - cos(g_A, g_B)), the raw
// cos(g_t, g_m) and the baseline cos(g_A, g_B) beside it (REFERENCE.md: at small scale the
// baseline dominates), and the within-batch cos(image-token, caption-token gradients) labelled as
// NOT the paper's metric. A layer a profile does not measure (Uni-X's separated ends) has no point.
// Tests: tests/unix/test_report.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "unix/conflict.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

// One curve: a model (an arm at a checkpoint step) measured once per seed.
struct ConflictProfile {
  std::string label;                            // "shared L6, step 400"
  std::vector<std::vector<ConflictRow>> seeds;  // each seed's rows (gradient_conflict's output)
};

// Per layer (ascending) the mean and sample std over seeds of one field of the layer's "all" row
// (or of its only matrix row when a layer measured one matrix). std is 0 for one seed.
struct DepthCurve {
  std::vector<double> layer, mean, std;
};
enum class ConflictField { conflict, cos_text_mm, cos_a_b, within_batch };
DepthCurve depth_curve(const ConflictProfile& profile, ConflictField field);

// The four plots as SVG documents (conflict, raw cosine, baseline, within-batch; a plot with no
// finite point is left out), the same wrapped in <figure>s for a page, and a table of the per-layer means +- std.
std::vector<std::string> conflict_depth_svg_list(const std::vector<ConflictProfile>& profiles);
std::string conflict_depth_svgs(const std::vector<ConflictProfile>& profiles);
std::vector<std::vector<std::string>> conflict_depth_table(const std::vector<ConflictProfile>& profiles);
std::vector<std::string> conflict_depth_table_header();
// A whole page: title, a paragraph per note, the plots and the table.
std::string conflict_report_html(const std::string& title, const std::vector<std::string>& notes,
                                 const std::vector<ConflictProfile>& profiles);

}  // namespace loupe::unix
