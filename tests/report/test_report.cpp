// report/: HTML escaping and tables, number formatting, SVG plots (scales, skipped points, error
// bars, bad input) and atomic writes (no half-written or stray temporary files).
#include <doctest/doctest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "report/files.hpp"
#include "report/html.hpp"
#include "report/svg_plot.hpp"
#include "tensor/error.hpp"

using namespace loupe;

namespace {

int count(const std::string& text, const std::string& what) {
  int n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

TEST_CASE("report: html escaping, numbers and tables") {
  CHECK(report::html_escape("a<b & \"c\" 'd'>") == "a&lt;b &amp; &quot;c&quot; &#39;d&#39;&gt;");
  CHECK(report::format_number(1.23456789, 3) == "1.23");
  CHECK(report::format_number(std::nan("")) == "nan");
  CHECK(report::format_number(-INFINITY) == "-inf");
  CHECK(report::format_mean_std(0.5, 0.25, 2) == "0.5 \u00b1 0.25");
  report::HtmlPage page("T<1>");
  page.heading("Losses");
  page.table({"arm", "loss"}, {{"<unix>", "1.5"}, {"shared", "2"}});
  const std::string html = page.str();
  CHECK(html.find("<title>T&lt;1&gt;</title>") != std::string::npos);
  CHECK(html.find("<td>&lt;unix&gt;</td><td>1.5</td>") != std::string::npos);
  CHECK(count(html, "<tr>") == 3);
  CHECK(html.find("</html>") != std::string::npos);
}

TEST_CASE("report: line plot places points by their values and skips NaN") {
  report::LinePlot plot;
  plot.width = 200, plot.height = 100;
  plot.series.push_back({"a", {0, 1, 2}, {0, 10, std::nan("")}, {}});
  const std::string svg = report::svg_line_plot(plot);
  // Two finite points: the plotting area is x in [64, 184], y in [32, 52] (margins 64/16/32/48).
  CHECK(count(svg, "<circle") == 2);
  CHECK(svg.find("cx=\"64\" cy=\"52\"") != std::string::npos);  // (0, 0): bottom left
  CHECK(svg.find("cx=\"184\" cy=\"32\"") != std::string::npos);  // (1, 10): right, top (x = 2 had NaN y)
  CHECK(svg.find("<svg") == 0);
  plot.series.push_back({"b", {1, 2}, {1, 2}, {0.5, 0.5}});
  const std::string two = report::svg_line_plot(plot);
  CHECK(count(two, "<polyline") == 2);
  CHECK(two.find(">b</text>") != std::string::npos);  // legend
  // error bars: a vertical line per point with err > 0
  CHECK(count(two, "stroke=\"#D55E00\"/>") == 2);
}

TEST_CASE("report: plots refuse inconsistent series") {
  report::LinePlot plot;
  plot.series.push_back({"a", {0, 1}, {0}, {}});
  CHECK_THROWS_WITH_AS(report::svg_line_plot(plot), doctest::Contains("series 'a' has 2 x but 1 y"), Error);
  report::LinePlot log_plot;
  log_plot.log_x = true;
  log_plot.series.push_back({"s", {0.0, 1.0}, {1, 2}, {}});
  CHECK_THROWS_WITH_AS(report::svg_line_plot(log_plot), doctest::Contains("x > 0"), Error);
  report::BarPlot bars;
  bars.categories = {"q", "k"};
  bars.series.push_back({"c", {}, {0.1}, {}});
  CHECK_THROWS_WITH_AS(report::svg_bar_plot(bars), doctest::Contains("1 bars for 2 categories"), Error);
  bars.series[0].y = {0.1, -0.2};
  const std::string svg = report::svg_bar_plot(bars);
  CHECK(count(svg, "<rect x=") == 2);
  CHECK(svg.find(">k</text>") != std::string::npos);
}

TEST_CASE("report: write_text_atomic replaces whole files and keeps the old one on failure") {
  const std::string dir = std::filesystem::temp_directory_path() / ("loupe_report_" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/out.txt";
  report::write_text_atomic(path, "first");
  report::write_text_atomic(path, "second");
  CHECK(read_file(path) == "second");
  CHECK(std::distance(std::filesystem::directory_iterator(dir), std::filesystem::directory_iterator()) == 1);
  CHECK_THROWS_WITH_AS(report::write_text_atomic(dir + "/missing/x.txt", "x"), doctest::Contains("cannot create"),
                       Error);
  // A device or folder in the target's place is refused, not renamed over (as root it could be).
  CHECK_THROWS_WITH_AS(report::write_text_atomic(dir, "x"), doctest::Contains("not a regular file"), Error);
  if (std::filesystem::exists("/dev/null")) {
    CHECK_THROWS_WITH_AS(report::write_text_atomic("/dev/null", "x"), doctest::Contains("not a regular file"), Error);
  }
  CHECK(read_file(path) == "second");
  std::filesystem::remove_all(dir);
}
