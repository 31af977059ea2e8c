// The explanation part of the chest X-ray study: every attribution method on the same test
// images for one model, the share of attribution mass outside the central "lung box" per method
// (a shortcut measure: markers, tubes and text sit near the edges), and the model's neuron
// activation profiles per group of images.
//
// Attributions come from explain::explain_to_folder (explain/report.hpp), so the files are the
// ones `loupe explain` writes; each image is explained for its true group's label (covid19,
// pneumonia for other pneumonia, no_finding), the same target for every model. Region shares use
// explain::evaluate::region_mass (lung box rows and columns 15-85 %, border 10 %).
// Tests: tests/study/test_study_cli.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "explain/report.hpp"
#include "nn/checkpoint.hpp"

namespace loupe::study {

struct ExplainImage {
  std::string path;   // image file
  std::string name;   // file stem
  std::string group;  // "COVID-19", "other pneumonia" or "no finding"
  std::string target; // the label explained
  std::string population;
};

struct AttributionCell {
  std::string image, method;
  std::string overlay_png;  // relative to the model's explanation folder
  double outside_box = 0.0;  // share of |attribution| outside the lung box
  double border = 0.0;       // share in the 10 % border
  double seconds = 0.0;
};

struct ModelExplanations {
  std::string model;
  std::vector<std::string> input_png;  // per image, relative to the folder
  std::vector<AttributionCell> cells;  // image-major, methods in order
};

// Runs the methods on the images (or reads the results of an earlier, finished call from
// <folder>/attributions.tsv) and writes the folder.
ModelExplanations explain_model(nn::Module& model, const nn::ModelInfo& info, const std::vector<ExplainImage>& images,
                                const explain::ReportOptions& options, const std::string& folder);

// The mean outside-box share per method over the images (method order of the cells).
std::vector<std::pair<std::string, double>> mean_outside_share(const ModelExplanations& explanations);

// The layer whose maps are profiled for a zoo model: the last convolutional stage.
std::string profile_layer(const std::string& model);

}  // namespace loupe::study
