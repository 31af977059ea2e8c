// Line plots as inline SVG, for the HTML reports (evaluation curves, conflict by depth, training
// losses). No dependencies beyond the standard library: the SVG text goes straight into a page.
//
//   LinePlot plot{.title = "Deletion curve", .x_label = "fraction removed", .y_label = "p(class)"};
//   plot.series.push_back({.label = "IG", .x = xs, .y = ys, .err = stderrs});
//   page << svg_line_plot(plot);
//
// Each series is drawn as a polyline with point markers; a non-empty `err` (same length as y) adds
// error bars of +-err. Axes get about five "nice" ticks (1, 2 or 5 times a power of ten); NaN or
// infinite points are skipped. Tests: tests/report/test_report.cpp.
#pragma once

#include <string>
#include <vector>

namespace loupe::report {

struct Series {
  std::string label;
  std::vector<double> x;
  std::vector<double> y;
  std::vector<double> err;  // empty, or one half-width per point (drawn as error bars)
};

struct LinePlot {
  std::string title;
  std::string x_label;
  std::string y_label;
  std::vector<Series> series;
  bool log_x = false;  // log10 x axis (all x must then be > 0)
  int width = 560;     // pixels
  int height = 340;
};

// The <svg> element (with a legend when there is more than one series).
std::string svg_line_plot(const LinePlot& plot);

// Grouped vertical bars: one group per category, one bar per series within it (series.x is
// ignored; series.y[i] is the bar of category i; err adds error bars).
struct BarPlot {
  std::string title;
  std::string y_label;
  std::vector<std::string> categories;
  std::vector<Series> series;
  int width = 560;
  int height = 340;
};

std::string svg_bar_plot(const BarPlot& plot);

}  // namespace loupe::report
