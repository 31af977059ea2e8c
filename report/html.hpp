// Small pieces for the HTML reports that several commands write (loupe explain, the explanation
// evaluation, the Uni-X experiment): escaping, tables and one page frame with a shared style.
//
//   report::HtmlPage page("Uni-X experiment");
//   page.heading("Held-out loss");
//   page.paragraph("Mean +- std over 3 seeds.");
//   page.table({"arm", "image", "caption"}, rows);   // rows: vector<vector<string>>, escaped here
//   page.raw(svg_line_plot(plot));                    // inline SVG or other trusted HTML
//   report::write_text_atomic(dir + "/report.html", page.str());
//
// Tests: tests/report/test_report.cpp.
#pragma once

#include <sstream>
#include <string>
#include <vector>

namespace loupe::report {

// Escapes & < > " ' for use in HTML text and attribute values.
std::string html_escape(const std::string& text);

// A number as text with `digits` significant digits ("nan"/"inf" as such), for tables.
std::string format_number(double value, int digits = 4);

// "mean +- std" with `digits` significant digits, e.g. "1.234 ± 0.056".
std::string format_mean_std(double mean, double std, int digits = 4);

class HtmlPage {
 public:
  explicit HtmlPage(std::string title);
  void heading(const std::string& text, int level = 2);  // <h2> by default; escaped
  void paragraph(const std::string& text);               // escaped
  void table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows);
  void raw(const std::string& html);                     // trusted HTML/SVG, inserted as is
  std::string str() const;                               // the complete document

 private:
  std::string title_;
  std::ostringstream body_;
};

}  // namespace loupe::report
