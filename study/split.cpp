// The validation split of the chest X-ray study. See split.hpp.
#include "study/split.hpp"

#include <algorithm>
#include <map>
#include <set>

#include "tensor/error.hpp"

namespace loupe::study {

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

namespace {

std::string class_of(const nn::CsvTable& table, const std::vector<std::string>& row) {
  auto positive = [&](const char* column) {
    return table.has_column(column) && row[table.column(column)] == "1";
  };
  if (positive("covid19")) return "covid19";
  if (positive("pneumonia")) return "pneumonia";
  return "no_finding";
}

std::string quoted(const std::string& field) {
  if (field.find_first_of(",\"\r\n") == std::string::npos) return field;
  std::string out = "\"";
  for (char c : field) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace

nn::CsvTable carve_validation(const nn::CsvTable& table, const SplitOptions& options, SplitCounts* counts) {
  LOUPE_CHECK(options.fraction >= 0 && options.fraction < 1, "study: the validation fraction must be in [0, 1), got ",
              options.fraction);
  const size_t split = table.column(options.split_column);
  const size_t patient = table.column(options.patient_column);
  LOUPE_CHECK(!table.has_column(options.split_column_out), "study: '", table.source, "' already has a column '",
              options.split_column_out, "'");
  // Patients of the training split, per class, with their row counts.
  std::map<std::string, std::vector<std::string>> patients_of_class;  // class -> patients (first seen order)
  std::map<std::string, int64_t> rows_of_patient;
  std::map<std::string, int64_t> rows_of_class;
  for (const auto& row : table.rows) {
    const std::string& s = row[split];
    LOUPE_CHECK(s == "train" || s == "test", "study: '", table.source, "': column '", options.split_column,
                "' holds '", s, "'; expected train or test");
    if (s != "train") continue;
    const std::string& id = row[patient];
    if (rows_of_patient[id]++ == 0) patients_of_class[class_of(table, row)].push_back(id);
  }
  for (const auto& [cls, ids] : patients_of_class)
    for (const std::string& id : ids) rows_of_class[cls] += rows_of_patient[id];
  std::set<std::string> validation;
  for (auto& [cls, ids] : patients_of_class) {
    std::vector<std::pair<uint64_t, std::string>> order;
    for (const std::string& id : ids) order.emplace_back(fnv1a(std::to_string(options.seed) + ":" + id), id);
    std::sort(order.begin(), order.end());
    const double target = options.fraction * static_cast<double>(rows_of_class[cls]);
    int64_t taken = 0;
    for (size_t i = 0; i + 1 < order.size() && options.fraction > 0; ++i) {  // one patient always stays in train
      if (static_cast<double>(taken) >= target && i > 0) break;
      validation.insert(order[i].second);
      taken += rows_of_patient[order[i].second];
    }
  }
  nn::CsvTable out = table;
  out.header.push_back(options.split_column_out);
  SplitCounts c;
  std::set<std::string> seen_train, seen_val, seen_test;
  for (auto& row : out.rows) {
    const std::string id = row[patient];  // a copy: row.push_back below may move the row's strings
    const std::string s = row[split] == "test" ? "test" : validation.count(id) ? "val" : "train";
    row.push_back(s);
    (s == "test" ? c.test : s == "val" ? c.val : c.train) += 1;
    (s == "test" ? seen_test : s == "val" ? seen_val : seen_train).insert(id);
  }
  c.train_patients = static_cast<int64_t>(seen_train.size());
  c.val_patients = static_cast<int64_t>(seen_val.size());
  c.test_patients = static_cast<int64_t>(seen_test.size());
  if (counts) *counts = c;
  return out;
}

std::string csv_text(const nn::CsvTable& table) {
  std::string text;
  auto line = [&](const std::vector<std::string>& fields) {
    for (size_t i = 0; i < fields.size(); ++i) {
      if (i) text += ',';
      text += quoted(fields[i]);
    }
    text += "\n";
  };
  line(table.header);
  for (const auto& row : table.rows) line(row);
  return text;
}

}  // namespace loupe::study
