// The study's validation split: patient-wise, stratified by class, seeded, test rows untouched.
#include <doctest/doctest.h>

#include <map>
#include <set>

#include "nn/data/csv.hpp"
#include "study/split.hpp"
#include "tensor/error.hpp"

namespace loupe::test {

namespace {

// prefix + number, built by appending (GCC 12 warns falsely on "literal" + std::string here).
std::string named(const char* prefix, int n, const char* suffix = "") {
  std::string text = prefix;
  text += std::to_string(n);
  text += suffix;
  return text;
}

// 3 classes x 20 training patients (some with 3 images) + 10 test patients.
nn::CsvTable sample_table() {
  nn::CsvTable t;
  t.source = "sample.csv";
  t.header = {"file", "patient_id", "split", "covid19", "pneumonia", "no_finding", "note"};
  int file = 0;
  for (int cls = 0; cls < 3; ++cls) {
    for (int p = 0; p < 30; ++p) {
      const int images = p % 4 == 0 ? 3 : 1;
      for (int i = 0; i < images; ++i) {
        t.rows.push_back({named("f", file++, ".png"), named("c", cls, ":p") + std::to_string(p),
                          p < 20 ? "train" : "test", cls == 0 ? "1" : "0", cls <= 1 ? "1" : "0", cls == 2 ? "1" : "0",
                          "a, \"quoted\" note"});
      }
    }
  }
  return t;
}

}  // namespace

TEST_CASE("carve_validation: whole patients, about the fraction of each class, test rows kept, seeded") {
  const nn::CsvTable table = sample_table();
  study::SplitOptions options;
  options.fraction = 0.25;
  study::SplitCounts counts;
  const nn::CsvTable out = study::carve_validation(table, options, &counts);
  REQUIRE(out.rows.size() == table.rows.size());
  REQUIRE(out.header.back() == "study_split");
  std::map<std::string, std::set<std::string>> splits_of_patient;
  std::map<int, int> train_rows, val_rows;
  for (size_t r = 0; r < out.rows.size(); ++r) {
    const auto& row = out.rows[r];
    const std::string& s = row.back();
    splits_of_patient[row[1]].insert(s);
    if (table.rows[r][2] == "test") {
      CHECK(s == "test");
    } else {
      CHECK((s == "train" || s == "val"));
      const int cls = row[3] == "1" ? 0 : row[4] == "1" ? 1 : 2;
      (s == "val" ? val_rows : train_rows)[cls]++;
    }
  }
  for (const auto& [patient, splits] : splits_of_patient) CHECK(splits.size() == 1);
  for (int cls = 0; cls < 3; ++cls) {
    const double share = static_cast<double>(val_rows[cls]) / (val_rows[cls] + train_rows[cls]);
    CHECK(share >= 0.25);  // patients are added until the class reaches the fraction
    CHECK(share < 0.25 + 3.0 / 25.0);  // ... and not more than one patient (3 images of 25) beyond it
  }
  CHECK(counts.test == 10 * 3 * 1 + 3 * 3 * 2);  // patients 20..29: 20 and 24 and 28 have 3 images
  CHECK(counts.train + counts.val + counts.test == static_cast<int64_t>(table.rows.size()));

  // The same seed gives the same split; another seed another one.
  CHECK(study::csv_text(study::carve_validation(table, options)) == study::csv_text(out));
  options.seed = 7;
  CHECK(study::csv_text(study::carve_validation(table, options)) != study::csv_text(out));
}

TEST_CASE("carve_validation: the CSV text reads back as the same table (quoted fields)") {
  const nn::CsvTable out = study::carve_validation(sample_table(), {});
  const nn::CsvTable back = nn::parse_csv(study::csv_text(out), "round trip");
  CHECK(back.header == out.header);
  CHECK(back.rows == out.rows);
  CHECK(back.rows[0][6] == "a, \"quoted\" note");
}

TEST_CASE("carve_validation: bad input is refused with a message naming it") {
  nn::CsvTable t = sample_table();
  t.rows[3][2] = "validation";
  CHECK_THROWS_WITH_AS(study::carve_validation(t, {}), doctest::Contains("holds 'validation'"), Error);
  study::SplitOptions options;
  options.patient_column = "patient";
  CHECK_THROWS_WITH_AS(study::carve_validation(sample_table(), options), doctest::Contains("patient"), Error);
  options = {};
  options.fraction = 1.0;
  CHECK_THROWS_WITH_AS(study::carve_validation(sample_table(), options), doctest::Contains("fraction"), Error);
}

TEST_CASE("fnv1a: the published test vectors") {
  CHECK(study::fnv1a("") == 0xcbf29ce484222325ull);
  CHECK(study::fnv1a("a") == 0xaf63dc4c8601ec8cull);
  CHECK(study::fnv1a("foobar") == 0x85944171f73967e8ull);
}

}  // namespace loupe::test
