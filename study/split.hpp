// The chest X-ray study's three splits: the data set's own patient-wise test split stays as it is,
// and a validation split is carved, patient by patient, out of its training split. Model selection
// (the best epoch) and the per-label decision thresholds are chosen on the validation split only,
// so the test split is looked at once, at the end.
//
// How patients are chosen (a pure function of the seed and the patient ids):
//   1. every training row belongs to one patient (patient_column); a patient's class is the class
//      of its first row: "covid19" (covid19 = 1), "pneumonia" (pneumonia = 1, covid19 = 0) or
//      "no_finding" (anything else), so each class is split on its own (stratified);
//   2. within a class, patients are ordered by a 64-bit FNV-1a hash of "<seed>:<patient id>";
//   3. patients are moved to validation in that order until the class's validation rows reach
//      `fraction` of its training rows (at least one patient per class when there are two or more).
// All rows of a patient land in the same split. The result is the input table with one more
// column (split_column_out: train / val / test), written as a CSV the data sets read directly.
// Tests: tests/study/test_study_split.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/data/csv.hpp"

namespace loupe::study {

struct SplitOptions {
  double fraction = 0.2;       // share of each class's training rows that go to validation
  uint64_t seed = 0;
  std::string split_column = "split";          // the data set's train / test column
  std::string patient_column = "patient_id";
  std::string split_column_out = "study_split";
};

struct SplitCounts {
  int64_t train = 0, val = 0, test = 0;                 // rows
  int64_t train_patients = 0, val_patients = 0, test_patients = 0;
};

// The table with split_column_out appended (rows in the input order). Raises naming the file and
// column when a needed column is missing or a split value is neither train nor test.
nn::CsvTable carve_validation(const nn::CsvTable& table, const SplitOptions& options, SplitCounts* counts = nullptr);

// RFC 4180 text of a table (fields with a comma, quote or line break are quoted).
std::string csv_text(const nn::CsvTable& table);

// 64-bit FNV-1a of a string (the patient order; stable across machines and compilers).
uint64_t fnv1a(const std::string& text);

}  // namespace loupe::study
