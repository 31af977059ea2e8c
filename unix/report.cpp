// Conflict-by-depth plots and tables. See report.hpp.
#include "unix/report.hpp"

#include <cmath>
#include <map>

#include "report/html.hpp"
#include "report/svg_plot.hpp"

namespace loupe::unix {

namespace {

double field_of(const ConflictRow& r, ConflictField f) {
  switch (f) {
    case ConflictField::conflict:
      return r.conflict;
    case ConflictField::cos_text_mm:
      return r.cos_text_mm;
    case ConflictField::cos_a_b:
      return r.cos_a_b;
    case ConflictField::within_batch:
      return r.within_batch_cos_image_text;
  }
  return std::nan("");
}

// The row standing for a whole layer: its "all" row, else its single matrix row.
std::map<int64_t, const ConflictRow*> layer_rows(const std::vector<ConflictRow>& rows) {
  std::map<int64_t, const ConflictRow*> out;
  std::map<int64_t, int> matrices;
  for (const ConflictRow& r : rows) {
    if (r.kind == "all") {
      out[r.layer] = &r;
    } else if (++matrices[r.layer] == 1 && !out.count(r.layer)) {
      out[r.layer] = &r;
    }
  }
  for (const auto& [layer, n] : matrices) {
    LOUPE_CHECK(n == 1 || (out[layer] != nullptr && out[layer]->kind == "all"), "unix conflict report: layer ", layer,
                " has ", n, " matrix rows and no \"all\" row");
  }
  return out;
}

}  // namespace

DepthCurve depth_curve(const ConflictProfile& profile, ConflictField field) {
  std::map<int64_t, std::vector<double>> values;
  for (const auto& rows : profile.seeds) {
    for (const auto& [layer, row] : layer_rows(rows)) {
      const double v = field_of(*row, field);
      if (std::isfinite(v)) values[layer].push_back(v);
    }
  }
  DepthCurve curve;
  for (const auto& [layer, v] : values) {
    double mean = 0.0;
    for (double x : v) mean += x;
    mean /= static_cast<double>(v.size());
    double var = 0.0;
    for (double x : v) var += (x - mean) * (x - mean);
    curve.layer.push_back(static_cast<double>(layer));
    curve.mean.push_back(mean);
    curve.std.push_back(v.size() > 1 ? std::sqrt(var / static_cast<double>(v.size() - 1)) : 0.0);
  }
  return curve;
}

std::vector<std::string> conflict_depth_svg_list(const std::vector<ConflictProfile>& profiles) {
  struct Panel {
    ConflictField field;
    const char* title;
    const char* y;
  };
  const Panel panels[] = {
      {ConflictField::conflict, "Gradient conflict by depth: -(cos(g_t, g_m) - cos(g_A, g_B))", "conflict"},
      {ConflictField::cos_text_mm, "Raw cosine cos(g_t, g_m): text-only vs image-text mean gradients", "cosine"},
      {ConflictField::cos_a_b, "Baseline cos(g_A, g_B): two random halves of the same pool", "cosine"},
      {ConflictField::within_batch, "Within-batch cos(image-token, caption-token grads) - NOT the paper's metric",
       "cosine"},
  };
  std::vector<std::string> out;
  for (const Panel& panel : panels) {
    report::LinePlot plot;
    plot.title = panel.title;
    plot.x_label = "layer (0 = first)";
    plot.y_label = panel.y;
    for (const ConflictProfile& p : profiles) {
      const DepthCurve c = depth_curve(p, panel.field);
      if (c.layer.empty()) continue;
      bool any_spread = false;
      for (double s : c.std) any_spread = any_spread || s > 0;
      plot.series.push_back({p.label, c.layer, c.mean, any_spread ? c.std : std::vector<double>{}});
    }
    if (plot.series.empty()) continue;
    out.push_back(report::svg_line_plot(plot));
  }
  return out;
}

std::string conflict_depth_svgs(const std::vector<ConflictProfile>& profiles) {
  std::string out;
  for (const std::string& svg : conflict_depth_svg_list(profiles)) out += "<figure>" + svg + "</figure>\n";
  return out;
}

std::vector<std::string> conflict_depth_table_header() {
  return {"model",
          "layer",
          "conflict",
          "cos(g_t, g_m)",
          "cos(g_A, g_B) baseline",
          "within-batch cos (not the paper's metric)"};
}

std::vector<std::vector<std::string>> conflict_depth_table(const std::vector<ConflictProfile>& profiles) {
  std::vector<std::vector<std::string>> rows;
  for (const ConflictProfile& p : profiles) {
    const DepthCurve conflict = depth_curve(p, ConflictField::conflict);
    const DepthCurve raw = depth_curve(p, ConflictField::cos_text_mm);
    const DepthCurve base = depth_curve(p, ConflictField::cos_a_b);
    const DepthCurve within = depth_curve(p, ConflictField::within_batch);
    const auto cell = [&](const DepthCurve& c, double layer) {
      for (size_t i = 0; i < c.layer.size(); ++i) {
        if (c.layer[i] == layer) {
          return p.seeds.size() > 1 ? report::format_mean_std(c.mean[i], c.std[i], 3)
                                    : report::format_number(c.mean[i], 4);
        }
      }
      return std::string("-");
    };
    for (double layer : raw.layer) {
      rows.push_back({p.label, report::format_number(layer, 3), cell(conflict, layer), cell(raw, layer),
                      cell(base, layer), cell(within, layer)});
    }
  }
  return rows;
}

std::string conflict_report_html(const std::string& title, const std::vector<std::string>& notes,
                                 const std::vector<ConflictProfile>& profiles) {
  report::HtmlPage page(title);
  for (const std::string& n : notes) page.paragraph(n);
  page.heading("Conflict by depth");
  page.raw(conflict_depth_svgs(profiles));
  page.heading("Per layer (all measured matrices of the layer together)");
  page.table(conflict_depth_table_header(), conflict_depth_table(profiles));
  return page.str();
}

}  // namespace loupe::unix
