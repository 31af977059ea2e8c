// Explanations and region shares of one model of the study. See explain_models.hpp.
#include "study/explain_models.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "explain/evaluate/faithfulness.hpp"
#include "report/files.hpp"
#include "report/html.hpp"
#include "tensor/error.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/ops.hpp"

namespace loupe::study {

namespace fs = std::filesystem;

namespace {

// Nine significant digits: state files read back on resume round-trip a float exactly.
std::string number(double v) { return report::format_number(v, 9); }

const char* kTable = "attributions.tsv";

std::string tsv(const ModelExplanations& e) {
  std::string text = "# input\n";
  for (const std::string& png : e.input_png) text += "input\t" + png + "\n";
  for (const AttributionCell& c : e.cells) {
    text += "cell\t" + c.image + "\t" + c.method + "\t" + c.overlay_png + "\t" + number(c.outside_box) + "\t" +
            number(c.border) + "\t" + number(c.seconds) + "\n";
  }
  return text;
}

bool read_tsv(const std::string& path, ModelExplanations* out) {
  std::ifstream in(path);
  if (!in) return false;
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    std::string field;
    while (std::getline(fields, field, '\t')) f.push_back(field);
    if (f.size() == 2 && f[0] == "input") out->input_png.push_back(f[1]);
    if (f.size() == 7 && f[0] == "cell") {
      out->cells.push_back({f[1], f[2], f[3], std::atof(f[4].c_str()), std::atof(f[5].c_str()), std::atof(f[6].c_str())});
    }
  }
  return true;
}

}  // namespace

std::string profile_layer(const std::string& model) {
  if (model == "resnet18" || model == "resnet34") return "layer4";
  if (model == "densenet121" || model == "densenet161") return "features.denseblock4";
  if (model == "inception_v3") return "Mixed_7c";
  if (model == "inception_resnet_v2") return "conv2d_7b";
  LOUPE_CHECK(false, "study: no profiled layer known for model '", model, "'");
  return "";
}

ModelExplanations explain_model(nn::Module& model, const nn::ModelInfo& info, const std::vector<ExplainImage>& images,
                                const explain::ReportOptions& options, const std::string& folder) {
  ModelExplanations result;
  result.model = info.model;
  if (fs::is_regular_file(folder + "/" + kTable) && read_tsv(folder + "/" + kTable, &result)) return result;
  std::vector<explain::ReportInput> inputs;
  for (const ExplainImage& image : images) {
    explain::ReportInput in = explain::load_report_input(image.path, info);
    in.name = image.name;
    in.target = image.target;
    inputs.push_back(std::move(in));
  }
  explain::ReportOptions run = options;
  run.title = "loupe study: " + info.model;
  const explain::Report report = explain::explain_to_folder(model, info, inputs, run, folder);
  report::write_text_atomic(folder + "/report.json", explain::report_json(report));
  for (const explain::ReportImage& image : report.images) {
    result.input_png.push_back(image.input_png);
    LOUPE_CHECK(image.targets.size() == 1, "study: image '", image.name, "' was explained for ", image.targets.size(),
                " targets; expected one");
    for (const explain::ReportAttribution& a : image.targets[0].attributions) {
      const Tensor map = load_npy(folder + "/" + a.npy);  // (C, H, W)
      const explain::evaluate::RegionShares shares = explain::evaluate::region_mass(ops::unsqueeze(map, 0));
      const double centre = to_vector<double>(shares.centre)[0];
      const double border = to_vector<double>(shares.border)[0];
      result.cells.push_back({image.name, a.method, a.overlay_png, 1.0 - centre, border, a.seconds});
    }
  }
  report::write_text_atomic(folder + "/" + kTable, tsv(result));
  return result;
}

std::vector<std::pair<std::string, double>> mean_outside_share(const ModelExplanations& explanations) {
  std::vector<std::pair<std::string, double>> out;
  std::map<std::string, std::pair<double, int>> sums;
  for (const AttributionCell& c : explanations.cells) {
    if (!sums.count(c.method)) {
      out.emplace_back(c.method, 0.0);
      sums[c.method] = {0.0, 0};
    }
    if (!std::isnan(c.outside_box)) {  // an all-zero map has no share
      sums[c.method].first += c.outside_box;
      sums[c.method].second += 1;
    }
  }
  for (auto& [method, value] : out) {
    const auto& s = sums[method];
    value = s.second ? s.first / s.second : NAN;
  }
  return out;
}

}  // namespace loupe::study
