// HTML pieces for reports. See html.hpp.
#include "report/html.hpp"

#include <cmath>
#include <cstdio>

namespace loupe::report {

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string format_number(double value, int digits) {
  if (std::isnan(value)) return "nan";
  if (std::isinf(value)) return value > 0 ? "inf" : "-inf";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, "%.*g", digits, value);
  return buffer;
}

std::string format_mean_std(double mean, double std, int digits) {
  return format_number(mean, digits) + " \u00b1 " + format_number(std, digits);
}

HtmlPage::HtmlPage(std::string title) : title_(std::move(title)) {}

void HtmlPage::heading(const std::string& text, int level) {
  const int l = level < 1 ? 1 : (level > 6 ? 6 : level);
  body_ << "<h" << l << ">" << html_escape(text) << "</h" << l << ">\n";
}

void HtmlPage::paragraph(const std::string& text) { body_ << "<p>" << html_escape(text) << "</p>\n"; }

void HtmlPage::table(const std::vector<std::string>& header, const std::vector<std::vector<std::string>>& rows) {
  body_ << "<table>\n<thead><tr>";
  for (const auto& h : header) body_ << "<th>" << html_escape(h) << "</th>";
  body_ << "</tr></thead>\n<tbody>\n";
  for (const auto& row : rows) {
    body_ << "<tr>";
    for (const auto& cell : row) body_ << "<td>" << html_escape(cell) << "</td>";
    body_ << "</tr>\n";
  }
  body_ << "</tbody>\n</table>\n";
}

void HtmlPage::raw(const std::string& html) { body_ << html << "\n"; }

std::string HtmlPage::str() const {
  std::ostringstream page;
  page << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << html_escape(title_)
       << "</title>\n<style>\n"
       << "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}\n"
       << "table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #bbb;padding:3px 8px;text-align:right}\n"
       << "th{background:#eee}td:first-child,th:first-child{text-align:left}\n"
       << "svg{margin:0.5em 1em 0.5em 0}figure{display:inline-block;margin:0}\n"
       << "</style>\n</head>\n<body>\n<h1>" << html_escape(title_) << "</h1>\n"
       << body_.str() << "</body>\n</html>\n";
  return page.str();
}

}  // namespace loupe::report
