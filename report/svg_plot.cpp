// SVG line and bar plots. See svg_plot.hpp.
#include "report/svg_plot.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <sstream>

#include "report/html.hpp"
#include "tensor/error.hpp"

namespace loupe::report {

namespace {

// A colour-blind-friendly cycle (Okabe-Ito), then repeats.
const char* kColours[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"};

const char* colour(size_t i) { return kColours[i % (sizeof kColours / sizeof kColours[0])]; }

// Ticks at 1, 2 or 5 times a power of ten covering [lo, hi] in about `count` steps.
std::vector<double> nice_ticks(double lo, double hi, int count = 5) {
  if (!(hi > lo)) return {lo};
  const double raw = (hi - lo) / count;
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / power;
  const double step = (fraction <= 1 ? 1 : fraction <= 2 ? 2 : fraction <= 5 ? 5 : 10) * power;
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step)
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return ticks;
}

struct Range {
  double lo = std::numeric_limits<double>::infinity();
  double hi = -std::numeric_limits<double>::infinity();
  void add(double v) {
    if (!std::isfinite(v)) return;
    lo = std::min(lo, v);
    hi = std::max(hi, v);
  }
  // Empty or zero-width ranges get a width so the plot still has a scale.
  void settle() {
    if (!std::isfinite(lo)) lo = 0, hi = 1;
    if (hi - lo < 1e-12 * std::max(1.0, std::abs(hi))) {
      const double pad = std::max(std::abs(lo) * 0.1, 0.5);
      lo -= pad, hi += pad;
    }
  }
};

// The frame shared by both plots: margins, title, y axis with grid lines, y label.
struct Frame {
  int width, height;
  double left = 64, right = 16, top = 32, bottom = 48;
  double x0() const { return left; }
  double x1() const { return width - right; }
  double y0() const { return height - bottom; }  // bottom of the plotting area (pixel)
  double y1() const { return top; }
};

void open_svg(std::ostringstream& s, const Frame& f, const std::string& title) {
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << f.width << "\" height=\"" << f.height
    << "\" viewBox=\"0 0 " << f.width << " " << f.height << "\" font-family=\"sans-serif\" font-size=\"11\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << f.width / 2 << "\" y=\"18\" text-anchor=\"middle\" font-size=\"13\">" << html_escape(title)
    << "</text>\n";
}

void y_axis(std::ostringstream& s, const Frame& f, const Range& y, const std::string& label) {
  const auto py = [&](double v) { return f.y0() - (v - y.lo) / (y.hi - y.lo) * (f.y0() - f.y1()); };
  for (double t : nice_ticks(y.lo, y.hi)) {
    const double p = py(t);
    s << "<line x1=\"" << f.x0() << "\" x2=\"" << f.x1() << "\" y1=\"" << p << "\" y2=\"" << p
      << "\" stroke=\"#e4e4e4\"/>\n";
    s << "<text x=\"" << f.x0() - 4 << "\" y=\"" << p + 4 << "\" text-anchor=\"end\">" << format_number(t, 3)
      << "</text>\n";
  }
  s << "<line x1=\"" << f.x0() << "\" x2=\"" << f.x0() << "\" y1=\"" << f.y0() << "\" y2=\"" << f.y1()
    << "\" stroke=\"#444\"/>\n";
  s << "<line x1=\"" << f.x0() << "\" x2=\"" << f.x1() << "\" y1=\"" << f.y0() << "\" y2=\"" << f.y0()
    << "\" stroke=\"#444\"/>\n";
  s << "<text transform=\"translate(14," << (f.y0() + f.y1()) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
    << html_escape(label) << "</text>\n";
}

void legend(std::ostringstream& s, const Frame& f, const std::vector<Series>& series) {
  if (series.size() < 2) return;
  double y = f.y1() + 4;
  for (size_t i = 0; i < series.size(); ++i, y += 14) {
    s << "<rect x=\"" << f.x1() - 120 << "\" y=\"" << y << "\" width=\"10\" height=\"10\" fill=\"" << colour(i)
      << "\"/>\n<text x=\"" << f.x1() - 106 << "\" y=\"" << y + 9 << "\">" << html_escape(series[i].label)
      << "</text>\n";
  }
}

void check_series(const Series& s, bool need_x, const char* what) {
  LOUPE_CHECK(!need_x || s.x.size() == s.y.size(), what, ": series '", s.label, "' has ", s.x.size(), " x but ",
              s.y.size(), " y values");
  LOUPE_CHECK(s.err.empty() || s.err.size() == s.y.size(), what, ": series '", s.label, "' has ", s.err.size(),
              " error values for ", s.y.size(), " points");
}

}  // namespace

std::string svg_line_plot(const LinePlot& plot) {
  Range x, y;
  for (const auto& s : plot.series) {
    check_series(s, true, "svg_line_plot");
    for (size_t i = 0; i < s.y.size(); ++i) {
      if (!std::isfinite(s.x[i]) || !std::isfinite(s.y[i])) continue;
      LOUPE_CHECK(!plot.log_x || s.x[i] > 0, "svg_line_plot: log x axis needs x > 0, series '", s.label, "' has ",
                  s.x[i]);
      x.add(plot.log_x ? std::log10(s.x[i]) : s.x[i]);
      const double e = s.err.empty() || !std::isfinite(s.err[i]) ? 0.0 : s.err[i];
      y.add(s.y[i] - e);
      y.add(s.y[i] + e);
    }
  }
  x.settle();
  y.settle();
  const Frame f{plot.width, plot.height};
  const auto px = [&](double v) { return f.x0() + ((plot.log_x ? std::log10(v) : v) - x.lo) / (x.hi - x.lo) * (f.x1() - f.x0()); };
  const auto py = [&](double v) { return f.y0() - (v - y.lo) / (y.hi - y.lo) * (f.y0() - f.y1()); };
  std::ostringstream s;
  open_svg(s, f, plot.title);
  y_axis(s, f, y, plot.y_label);
  for (double t : nice_ticks(x.lo, x.hi)) {
    const double p = f.x0() + (t - x.lo) / (x.hi - x.lo) * (f.x1() - f.x0());
    s << "<text x=\"" << p << "\" y=\"" << f.y0() + 14 << "\" text-anchor=\"middle\">"
      << format_number(plot.log_x ? std::pow(10.0, t) : t, 3) << "</text>\n";
  }
  s << "<text x=\"" << (f.x0() + f.x1()) / 2 << "\" y=\"" << f.height - 8 << "\" text-anchor=\"middle\">"
    << html_escape(plot.x_label) << (plot.log_x ? " (log scale)" : "") << "</text>\n";
  for (size_t k = 0; k < plot.series.size(); ++k) {
    const Series& series = plot.series[k];
    std::ostringstream points;
    for (size_t i = 0; i < series.y.size(); ++i) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
      const double cx = px(series.x[i]), cy = py(series.y[i]);
      points << cx << "," << cy << " ";
      s << "<circle cx=\"" << cx << "\" cy=\"" << cy << "\" r=\"2.5\" fill=\"" << colour(k) << "\"/>\n";
      if (!series.err.empty() && std::isfinite(series.err[i]) && series.err[i] > 0) {
        s << "<line x1=\"" << cx << "\" x2=\"" << cx << "\" y1=\"" << py(series.y[i] - series.err[i]) << "\" y2=\""
          << py(series.y[i] + series.err[i]) << "\" stroke=\"" << colour(k) << "\"/>\n";
      }
    }
    s << "<polyline fill=\"none\" stroke-width=\"1.5\" stroke=\"" << colour(k) << "\" points=\"" << points.str()
      << "\"/>\n";
  }
  legend(s, f, plot.series);
  s << "</svg>";
  return s.str();
}

std::string svg_bar_plot(const BarPlot& plot) {
  Range y;
  y.add(0.0);
  for (const auto& s : plot.series) {
    check_series(s, false, "svg_bar_plot");
    LOUPE_CHECK(s.y.size() == plot.categories.size(), "svg_bar_plot: series '", s.label, "' has ", s.y.size(),
                " bars for ", plot.categories.size(), " categories");
    for (size_t i = 0; i < s.y.size(); ++i) {
      const double e = s.err.empty() || !std::isfinite(s.err[i]) ? 0.0 : s.err[i];
      y.add(s.y[i] - e);
      y.add(s.y[i] + e);
    }
  }
  y.settle();
  const Frame f{plot.width, plot.height};
  const auto py = [&](double v) { return f.y0() - (v - y.lo) / (y.hi - y.lo) * (f.y0() - f.y1()); };
  std::ostringstream s;
  open_svg(s, f, plot.title);
  y_axis(s, f, y, plot.y_label);
  const size_t groups = std::max<size_t>(plot.categories.size(), 1);
  const size_t bars = std::max<size_t>(plot.series.size(), 1);
  const double group_width = (f.x1() - f.x0()) / static_cast<double>(groups);
  const double bar_width = group_width * 0.8 / static_cast<double>(bars);
  for (size_t c = 0; c < plot.categories.size(); ++c) {
    const double gx = f.x0() + group_width * static_cast<double>(c);
    s << "<text x=\"" << gx + group_width / 2 << "\" y=\"" << f.y0() + 14 << "\" text-anchor=\"middle\">"
      << html_escape(plot.categories[c]) << "</text>\n";
    for (size_t k = 0; k < plot.series.size(); ++k) {
      const double v = plot.series[k].y[c];
      if (!std::isfinite(v)) continue;
      const double bx = gx + group_width * 0.1 + bar_width * static_cast<double>(k);
      const double top = py(std::max(v, 0.0)), base = py(std::min(v, 0.0));
      s << "<rect x=\"" << bx << "\" y=\"" << top << "\" width=\"" << bar_width << "\" height=\"" << base - top
        << "\" fill=\"" << colour(k) << "\"/>\n";
      const auto& err = plot.series[k].err;
      if (!err.empty() && std::isfinite(err[c]) && err[c] > 0) {
        const double cx = bx + bar_width / 2;
        s << "<line x1=\"" << cx << "\" x2=\"" << cx << "\" y1=\"" << py(v - err[c]) << "\" y2=\"" << py(v + err[c])
          << "\" stroke=\"#222\"/>\n";
      }
    }
  }
  legend(s, f, plot.series);
  s << "</svg>";
  return s.str();
}

}  // namespace loupe::report
