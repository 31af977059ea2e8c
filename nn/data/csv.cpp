// CSV reading. See csv.hpp.
#include "nn/data/csv.hpp"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tensor/error.hpp"

namespace loupe::nn {

std::vector<std::vector<std::string>> parse_csv_rows(const std::string& text, const std::string& source) {
  std::vector<std::vector<std::string>> rows;
  std::vector<std::string> row;
  std::string field;
  size_t i = 0;
  if (text.compare(0, 3, "\xEF\xBB\xBF") == 0) i = 3;  // UTF-8 byte-order mark
  int64_t line = 1;
  bool row_has_content = false;  // false for a blank line, which is skipped
  auto end_field = [&] {
    row.push_back(std::move(field));
    field.clear();
  };
  auto end_row = [&] {
    end_field();
    if (row_has_content) rows.push_back(std::move(row));
    row.clear();
    row_has_content = false;
  };
  while (i < text.size()) {
    const char ch = text[i];
    if (ch == '"' && field.empty()) {
      // A quoted field: runs to the next quote that is not doubled.
      const int64_t start_line = line;
      row_has_content = true;
      ++i;
      for (;;) {
        LOUPE_CHECK(i < text.size(), "read_csv: '", source, "': line ", start_line, ": unterminated quoted field");
        if (text[i] == '"') {
          if (i + 1 < text.size() && text[i + 1] == '"') {
            field.push_back('"');
            i += 2;
            continue;
          }
          ++i;
          break;
        }
        if (text[i] == '\n') ++line;
        field.push_back(text[i++]);
      }
      LOUPE_CHECK(i >= text.size() || text[i] == ',' || text[i] == '\n' || text[i] == '\r', "read_csv: '", source,
                  "': line ", line, ": unexpected text after a closing quote");
      // An empty quoted field still needs to count as a field: mark it present by falling through.
      if (i >= text.size()) break;
      continue;
    }
    if (ch == ',') {
      row_has_content = true;
      end_field();
      ++i;
    } else if (ch == '\n' || ch == '\r') {
      end_row();
      if (ch == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      ++i;
      ++line;
    } else {
      row_has_content = true;
      field.push_back(ch);
      ++i;
    }
  }
  if (row_has_content || !field.empty()) end_row();
  return rows;
}

CsvTable parse_csv(const std::string& text, const std::string& source) {
  auto rows = parse_csv_rows(text, source);
  LOUPE_CHECK(!rows.empty(), "read_csv: '", source, "': no header row");
  CsvTable table;
  table.source = source;
  table.header = std::move(rows.front());
  for (size_t r = 1; r < rows.size(); ++r) {
    LOUPE_CHECK(rows[r].size() == table.header.size(), "read_csv: '", source, "': data row ", r, " has ",
                rows[r].size(), " fields but the header has ", table.header.size());
    table.rows.push_back(std::move(rows[r]));
  }
  return table;
}

CsvTable read_csv(const std::string& path) {
  std::error_code ec;
  LOUPE_CHECK(std::filesystem::exists(path, ec), "read_csv: '", path, "': no such file");
  LOUPE_CHECK(!std::filesystem::is_directory(path, ec), "read_csv: '", path, "': is a directory");
  std::ifstream in(path, std::ios::binary);
  LOUPE_CHECK(in.is_open(), "read_csv: '", path, "': cannot open for reading (", std::strerror(errno), ")");
  std::ostringstream text;
  text << in.rdbuf();
  LOUPE_CHECK(!in.bad(), "read_csv: '", path, "': read error");
  return parse_csv(text.str(), path);
}

size_t CsvTable::column(const std::string& name) const {
  for (size_t c = 0; c < header.size(); ++c) {
    if (header[c] == name) return c;
  }
  std::string present;
  for (const auto& h : header) present += (present.empty() ? "" : ", ") + h;
  throw Error(detail::make_message("read_csv: '", source, "' has no column '", name, "' (columns: ", present, ")"));
}

bool CsvTable::has_column(const std::string& name) const {
  for (const auto& h : header) {
    if (h == name) return true;
  }
  return false;
}

}  // namespace loupe::nn
