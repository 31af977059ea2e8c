// The chest X-ray study's HTML report: one page with the metrics tables (test split and adults
// only, with bootstrap intervals), confusion matrices, timings, the attribution share outside the
// lung box, every model's explanations of the same test images side by side, and the activation
// profiles per group. Images are referenced relative to the run folder, so the folder can move.
// Tests: tests/study/test_study_cli.cpp
#pragma once

#include <string>
#include <vector>

#include "study/explain_models.hpp"
#include "study/study.hpp"

namespace loupe::study {

struct ReportData {
  const StudyOptions& options;
  const StudyResult& result;
  const std::vector<ExplainImage>& images;
  const std::vector<ModelExplanations>& explanations;  // one per model, in model order
  std::string groups;                                  // the profile groups, as a comma list
};

std::string study_report_html(const ReportData& data);

}  // namespace loupe::study
