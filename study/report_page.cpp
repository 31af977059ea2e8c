// The chest X-ray study's report page. See report_page.hpp.
#include "study/report_page.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>

#include "explain/report.hpp"
#include "report/html.hpp"
#include "report/svg_plot.hpp"

namespace loupe::study {

namespace fs = std::filesystem;
using report::format_number;
using report::html_escape;

namespace {

const std::vector<std::string> kLabels = {"covid19", "pneumonia", "no_finding"};

// A value with its interval below it in small print (keeps the wide tables readable).
std::string value_cell(const Interval& i, int digits = 3) {
  if (std::isnan(i.value)) return "<td>n/a</td>";
  std::string html = "<td>" + format_number(i.value, digits);
  if (!std::isnan(i.low))
    html += "<br><small>" + format_number(i.low, 2) + "&ndash;" + format_number(i.high, 2) + "</small>";
  return html + "</td>";
}

std::string seconds(double s) { return std::isnan(s) ? "-" : format_number(s, 4); }

void metrics_table(report::HtmlPage& page, const std::vector<SystemRow>& systems, bool adult) {
  std::string html = "<table><tr><th>model</th><th>images</th><th>micro-F1</th><th>macro-F1</th>";
  for (const std::string& l : kLabels) html += "<th>F1 " + html_escape(l) + "</th>";
  for (const std::string& l : kLabels) html += "<th>AUROC " + html_escape(l) + "</th>";
  html += "<th>macro AUROC</th><th>subset accuracy</th></tr>";
  for (const SystemRow& s : systems) {
    const SystemMetrics& m = adult ? s.adult : s.test;
    if (m.images == 0) continue;
    html += "<tr><td>" + html_escape(s.name) + "</td><td>" + std::to_string(m.images) + "</td>" + value_cell(m.micro_f1) +
            value_cell(m.macro_f1);
    for (const Interval& f : m.f1) html += value_cell(f);
    for (const Interval& a : m.auroc) html += value_cell(a);
    html += value_cell(m.macro_auroc) + value_cell(m.subset_accuracy) + "</tr>";
  }
  page.raw(html + "</table>");
}

}  // namespace

std::string study_report_html(const ReportData& d) {
  const StudyOptions& o = d.options;
  const StudyResult& r = d.result;
  report::HtmlPage page("loupe study cxr");
  page.raw("<style>body{max-width:none}td{white-space:nowrap}td img{display:block;width:112px;height:112px}"
           ".grid td{padding:1px;text-align:center;font-size:12px}.cm{display:inline-block;vertical-align:top;"
           "margin-right:1.5em}.cm table{font-size:13px}</style>");
  page.paragraph("Command: " + o.command);
  page.paragraph("Data: " + o.data + ". Images: " + std::to_string(r.train_images) + " training, " +
                 std::to_string(r.val_images) + " validation (carved patient-wise from the training split, seed " +
                 std::to_string(o.split_seed) + ", split.csv), " + std::to_string(r.test_images) + " test, of them " +
                 std::to_string(r.adult_test_images) + " adults. Epoch and per-label thresholds chosen on validation; " +
                 "the test split is used only for the numbers below. Intervals: 95 % percentile bootstrap over " +
                 std::to_string(o.bootstrap) + " resamples of the test images.");
  page.paragraph("Training: from scratch, Adam lr " + format_number(o.train.lr) + ", weight decay " +
                 format_number(o.train.weight_decay) + ", batch " + std::to_string(o.train.batch_size) + ", " +
                 std::to_string(o.train.epochs) + " epochs, BCE with logits, seed " + std::to_string(o.train.seed) +
                 "; ResNet/DenseNet at " + std::to_string(o.image_size) + " px, Inception nets at " +
                 std::to_string(o.inception_size) + " px; device " + o.train.device.str() + ".");

  page.heading("Test split: all images");
  metrics_table(page, r.systems, false);
  page.heading("Test split: adults only (population = adult)");
  page.paragraph("The README's harder check: no children, so age cannot separate the classes (hospitals still differ).");
  metrics_table(page, r.systems, true);

  page.paragraph("Each cell: the value on the test images and, below it, the 95 % bootstrap interval. The majority "
                 "vote's AUROC ranks the share of models that vote for a label.");

  page.heading("Decision thresholds (chosen on validation)");
  {
    std::vector<std::string> header = {"model"};
    for (const std::string& l : kLabels) header.push_back("threshold " + l);
    std::vector<std::vector<std::string>> rows;
    for (const SystemRow& s : r.systems) {
      std::vector<std::string> row = {s.name};
      for (size_t j = 0; j < kLabels.size(); ++j)
        row.push_back(j < s.thresholds.size() ? format_number(s.thresholds[j], 3) : "votes > 1/2");
      rows.push_back(row);
    }
    page.table(header, rows);
    page.paragraph("Per label, the cut with the best F1 on the validation split (probability > threshold is positive).");
  }

  page.heading("Confusion matrices (test split; rows: true group, columns: predicted)");
  {
    std::string html;
    for (const SystemRow& s : r.systems) {
      html += "<div class=\"cm\"><b>" + html_escape(s.name) + "</b><table><tr><th>true \\ predicted</th>";
      for (const std::string& c : confusion_columns()) html += "<th>" + html_escape(c) + "</th>";
      html += "</tr>";
      for (size_t i = 0; i < s.test.confusion.size(); ++i) {
        html += "<tr><td>" + html_escape(confusion_rows()[i]) + "</td>";
        for (int64_t v : s.test.confusion[i]) html += "<td>" + std::to_string(v) + "</td>";
        html += "</tr>";
      }
      html += "</table></div>";
    }
    page.raw(html);
    page.paragraph("Predicted group: COVID-19 when covid19 is predicted, else other pneumonia when pneumonia is, else "
                   "no finding when no_finding is, else none.");
  }

  page.heading("Models and timings");
  {
    std::vector<std::vector<std::string>> rows;
    for (const ModelTimes& m : r.models) {
      rows.push_back({m.model, std::to_string(m.image_size), std::to_string(m.parameters),
                      std::to_string(m.trained.best_epoch), format_number(m.trained.best_val_micro_f1, 3),
                      seconds(m.trained.seconds), seconds(m.eval_seconds), seconds(m.explain_seconds),
                      seconds(m.profile_seconds)});
    }
    page.table({"model", "input px", "parameters", "best epoch (validation)", "validation micro-F1", "train s",
                "evaluate s", "explain s", "profile s"},
               rows);
  }

  page.heading("Attribution outside the lung box");
  page.paragraph("Share of |attribution| (summed over channels) outside the central box (rows and columns 15-85 % of "
                 "the image), mean over the explained images; a uniform map gives 0.51. High values mean the "
                 "method says the model looks at the edges: markers, text, tubes, the body outline.");
  if (!d.explanations.empty()) {
    std::vector<std::string> methods;
    for (const auto& [method, share] : mean_outside_share(d.explanations[0])) methods.push_back(method);
    std::vector<std::vector<std::string>> rows;
    report::BarPlot plot;
    plot.title = "share of attribution outside the lung box";
    plot.y_label = "share";
    plot.categories = methods;
    plot.width = 900;
    for (const ModelExplanations& e : d.explanations) {
      std::vector<std::string> row = {e.model};
      report::Series series;
      series.label = e.model;
      for (const auto& [method, share] : mean_outside_share(e)) {
        row.push_back(format_number(share, 3));
        series.y.push_back(share);
      }
      rows.push_back(row);
      plot.series.push_back(series);
    }
    // An empty last group keeps the legend (drawn at the top right) off the bars.
    plot.categories.push_back("");
    for (report::Series& series : plot.series) series.y.push_back(NAN);
    std::vector<std::string> header = {"model"};
    header.insert(header.end(), methods.begin(), methods.end());
    page.table(header, rows);
    page.raw(report::svg_bar_plot(plot));
  }

  page.heading("The same test images explained by every method of every model");
  page.paragraph("Each image is explained for its true group's label (its logit: a saturated sigmoid would give all-zero gradients). Overlays as in loupe "
                 "explain: signed methods in diverging colours (red positive, blue negative), absolute ones in "
                 "sequential colours, clipped at the 99th percentile of |map|. Full-size files and .npy arrays "
                 "are in explain/<model>/.");
  for (size_t i = 0; i < d.images.size(); ++i) {
    const ExplainImage& image = d.images[i];
    page.heading(image.name + " (" + image.group + ", " + image.population + "; target " + image.target + ")", 3);
    std::string html = "<table class=\"grid\"><tr><th>model</th><th>input</th>";
    std::vector<std::string> methods;
    if (!d.explanations.empty())
      for (const AttributionCell& c : d.explanations[0].cells)
        if (c.image == image.name) methods.push_back(c.method);
    for (const std::string& m : methods) html += "<th>" + html_escape(m) + "</th>";
    html += "</tr>";
    for (const ModelExplanations& e : d.explanations) {
      const std::string base = "explain/" + e.model + "/";
      html += "<tr><td>" + html_escape(e.model) + "</td>";
      html += "<td>" + (i < e.input_png.size() ? "<img src=\"" + html_escape(base + e.input_png[i]) + "\">" : "") + "</td>";
      for (const std::string& m : methods) {
        html += "<td>";
        for (const AttributionCell& c : e.cells)
          if (c.image == image.name && c.method == m)
            html += "<img src=\"" + html_escape(base + c.overlay_png) + "\" title=\"outside the lung box: " +
                    format_number(c.outside_box, 3) + "\">" + format_number(c.outside_box, 2);
        html += "</td>";
      }
      html += "</tr>";
    }
    page.raw(html + "</table>");
  }

  page.heading("Neuron activation profiles per group");
  page.paragraph("Groups: " + d.groups + " (pneumonia-covid19 = pneumonia without COVID-19), over the test split. "
                 "Each row shows a group's top feature maps of the last convolutional stage (maps that respond more "
                 "to this group than on average over the groups). Full tables: profiles/<model>/profiles.html.");
  for (const ModelTimes& m : r.models) {
    const std::string folder = o.out + "/profiles/" + m.model;
    page.heading(m.model, 3);
    std::vector<std::string> pngs;
    std::error_code ec;
    for (const auto& entry : fs::directory_iterator(folder, ec))
      if (entry.path().extension() == ".png") pngs.push_back(entry.path().filename().string());
    std::sort(pngs.begin(), pngs.end());
    std::string html = "<p><a href=\"profiles/" + html_escape(m.model) + "/profiles.html\">profiles.html</a></p>";
    for (const std::string& png : pngs)
      html += "<figure><img style=\"height:48px\" src=\"profiles/" + html_escape(m.model + "/" + png) +
              "\"><figcaption>" + html_escape(png) + "</figcaption></figure> ";
    page.raw(html);
  }

  page.heading("Confounders (read before trusting the numbers)");
  page.paragraph("All COVID-19 images are adults, 243 of 249 from one hospital (Hannover), many AP bedside films with "
                 "tubes, lines and ECG leads; 86 % of the other-pneumonia and 58 % of the no-finding images are "
                 "children aged 1-5 from one centre (Kermany). A CNN can separate the classes by age, hospital or "
                 "devices without learning a lung finding. The adults-only table and the outside-lung-box shares "
                 "above measure part of this; the adult non-COVID classes are small, so their F1 values rest on a "
                 "handful of images.");
  return page.str();
}

}  // namespace loupe::study
