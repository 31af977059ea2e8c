// The CSV reader: quoted fields with commas, doubled quotes and line breaks, CRLF, blank lines,
// errors with the line number, and the real labels.csv of the chest X-ray data when present.
#include <doctest/doctest.h>

#include "nn/data/csv.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

using Rows = std::vector<std::vector<std::string>>;

TEST_CASE("parse_csv_rows: plain, quoted, escaped and multi-line fields") {
  CHECK(nn::parse_csv_rows("a,b,c\n1,2,3\n", "t") == Rows{{"a", "b", "c"}, {"1", "2", "3"}});
  // A quoted field keeps its commas; "" inside quotes is one quote.
  CHECK(nn::parse_csv_rows("x,\"hello, world\",\"say \"\"hi\"\"\"\n", "t") ==
        Rows{{"x", "hello, world", "say \"hi\""}});
  // A quoted field may hold a line break; CRLF ends lines; no final newline is needed.
  CHECK(nn::parse_csv_rows("a,\"two\nlines\"\r\nb,c", "t") == Rows{{"a", "two\nlines"}, {"b", "c"}});
  // Empty fields, quoted empty fields, a trailing comma.
  CHECK(nn::parse_csv_rows("a,,\"\",\n", "t") == Rows{{"a", "", "", ""}});
  // Blank lines are skipped; a byte-order mark is ignored.
  CHECK(nn::parse_csv_rows("\xEF\xBB\xBFh\n\n1\n\r\n2\n", "t") == Rows{{"h"}, {"1"}, {"2"}});
  // A quote inside an unquoted field is an ordinary character.
  CHECK(nn::parse_csv_rows("5\"3,x\n", "t") == Rows{{"5\"3", "x"}});
}

TEST_CASE("parse_csv: header, column lookup, and errors naming the source and line") {
  const nn::CsvTable t = nn::parse_csv("file,label,note\na.png,1,\"x, y\"\nb.png,0,\n", "labels.csv");
  CHECK(t.header == std::vector<std::string>{"file", "label", "note"});
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0][t.column("note")] == "x, y");
  CHECK(t.rows[1][t.column("note")].empty());
  CHECK(t.has_column("label"));
  CHECK_FALSE(t.has_column("split"));
  CHECK_THROWS_WITH_AS(t.column("split"), doctest::Contains("labels.csv' has no column 'split' (columns: file, label"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::parse_csv("a,b\n1,2\n3\n", "f.csv"), doctest::Contains("f.csv': data row 2 has 1 fields"),
                       Error);
  CHECK_THROWS_WITH_AS(nn::parse_csv("a,b\n1,\"open\n\n", "f.csv"),
                       doctest::Contains("line 2: unterminated quoted field"), Error);
  CHECK_THROWS_WITH_AS(nn::parse_csv("a,b\n\"x\"y,2\n", "f.csv"), doctest::Contains("line 2: unexpected text"), Error);
  CHECK_THROWS_AS(nn::parse_csv("", "f.csv"), Error);
  CHECK_THROWS_WITH_AS(nn::read_csv("/nonexistent-folder/labels.csv"), doctest::Contains("labels.csv': no such file"),
                       Error);
}

TEST_CASE("read_csv: a file on disk") {
  ScratchDir dir("csv");
  write_text(dir.file("t.csv"), "file,split\r\n\"a,1.png\",train\r\nb.png,test\r\n");
  const nn::CsvTable t = nn::read_csv(dir.file("t.csv"));
  REQUIRE(t.rows.size() == 2);
  CHECK(t.rows[0][0] == "a,1.png");
  CHECK(t.rows[1][1] == "test");
}

TEST_CASE("read_csv: the chest X-ray labels.csv (quoted fields with commas)") {
  const std::string cxr = cxr_dir();
  if (cxr.empty()) {
    MESSAGE("skipped: the chest X-ray data (../shared/data/cxr or $LOUPE_DATA_DIR/cxr) is not there");
    return;
  }
  const nn::CsvTable t = nn::read_csv(cxr + "/labels.csv");
  CHECK(t.rows.size() == 747);  // the README's counts
  int64_t train = 0, covid = 0;
  for (const auto& row : t.rows) {
    train += row[t.column("split")] == "train" ? 1 : 0;
    covid += row[t.column("covid19")] == "1" ? 1 : 0;
  }
  CHECK(train == 526);
  CHECK(covid == 249);
}

}  // namespace loupe::test
