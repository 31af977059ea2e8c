// A small CSV reader (RFC 4180): comma-separated fields, fields in double quotes may hold commas,
// line breaks and doubled quotes (""), lines end in LF or CRLF, and a UTF-8 byte-order mark at the
// start is ignored. The first row is the header. Every row must have as many fields as the header.
// Tests: tests/nn/data/test_csv.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loupe::nn {

struct CsvTable {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;

  // The position of a header name; throws loupe::Error naming `source` and the columns present.
  size_t column(const std::string& name) const;
  bool has_column(const std::string& name) const;

  std::string source;  // the file name (or what the text came from), for error messages
};

// Splits text into rows of fields (no header handling); `source` names it in error messages,
// which give the 1-based line of the problem (an unterminated quote, text after a closing quote).
std::vector<std::vector<std::string>> parse_csv_rows(const std::string& text, const std::string& source);
// Parses text with a header row. Blank lines are skipped.
CsvTable parse_csv(const std::string& text, const std::string& source);
// Reads and parses a file; a missing or unreadable file raises loupe::Error naming it.
CsvTable read_csv(const std::string& path);

}  // namespace loupe::nn
