// `loupe evaluate-explanations tabular` (cli/evaluate_tabular.cpp, explain/evaluate/lfa_experiment.hpp)
// run as a program with --quick on wine and diabetes: its files, the identities on the same draws
// (every method equals its LFA instance to rounding on real trained models), exact model recovery
// and no free lunch on the linear regression (every method's loss on its own neighbourhood is the
// column's minimum), the JSON on stdout, --help and bad options. Skips where the program or
// sklearn's data files are absent.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "explain/evaluate/tabular.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/nn/data/data_paths.hpp"

namespace loupe::test {

namespace fs = std::filesystem;

namespace {

std::string q(const std::string& s) { return "'" + s + "'"; }

// Rows of a simple CSV (no quoted commas in the columns read here) split by commas.
std::vector<std::vector<std::string>> csv_rows(const std::string& text) {
  std::vector<std::vector<std::string>> rows;
  std::stringstream lines(text);
  std::string line;
  std::getline(lines, line);  // header
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::stringstream f(line);
    std::string field;
    while (std::getline(f, field, ',')) fields.push_back(field);
    rows.push_back(fields);
  }
  return rows;
}

}  // namespace

TEST_CASE("evaluate tabular command: --quick on wine and diabetes, files, identities, bad options") {
  const std::string program = loupe_program();
  if (program.empty()) {
    MESSAGE("skipped: build/cli/loupe is not built");
    return;
  }
  const fs::path dir = fs::temp_directory_path() / ("loupe_test_evaluate_tabular_" + std::to_string(getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::string out, err;
  REQUIRE(run_loupe_command(program, "evaluate-explanations", "tabular --help", dir, &out) == 0);
  CHECK(out.find("--perturbations") != std::string::npos);
  CHECK(out.find("--quick") != std::string::npos);

  CHECK(run_loupe_command(program, "evaluate-explanations",
                          "tabular --quick --models foo --out " + q((dir / "bad").string()), dir, &out, &err) != 0);
  CHECK(err.find("foo") != std::string::npos);
  CHECK(run_loupe_command(program, "evaluate-explanations",
                          "tabular --quick --points 0 --out " + q((dir / "bad").string()), dir, &out, &err) != 0);
  CHECK(run_loupe_command(program, "evaluate-explanations",
                          "tabular --quick --datasets iris --out " + q((dir / "bad").string()), dir, &out, &err) != 0);
  CHECK(err.find("iris") != std::string::npos);

  const std::string data_dir = explain::tabular::find_sklearn_file("wine_data.csv", LOUPE_TEST_SOURCE_ROOT);
  if (data_dir.empty() ||
      explain::tabular::find_sklearn_file("diabetes_target.csv.gz", LOUPE_TEST_SOURCE_ROOT).empty()) {
    MESSAGE("skipped the run: sklearn's wine / diabetes files are absent (./run extracts them)");
    fs::remove_all(dir);
    return;
  }
  const fs::path run_dir = dir / "run";
  REQUIRE(run_loupe_command(program, "evaluate-explanations",
                            "tabular --quick --datasets wine,diabetes --models linear,mlp3 --points 6 --data " +
                                q(data_dir) + " --out " + q(run_dir.string()) + " --json",
                            dir, &out, &err) == 0);
  CHECK(err.empty());  // progress only on a terminal
  CHECK(out.find("\"command\": \"evaluate-explanations tabular\"") != std::string::npos);
  CHECK(out == read_text(run_dir / "results.json"));
  for (const char* f : {"models.csv", "identity.csv", "agreement.csv", "lfa_loss.csv", "recovery.csv",
                        "convergence.csv", "perturbation_gap.csv", "perturbation_gap_auc.csv", "report.html"})
    CHECK_MESSAGE(fs::is_regular_file(run_dir / f), f);
  const std::string html = read_text(run_dir / "report.html");
  CHECK(html.find("<svg") != std::string::npos);
  CHECK(html.find("No free lunch") != std::string::npos);

  // 2 data sets x 2 models x 8 methods: each method equals its LFA instance on the same draws.
  const auto identity = csv_rows(read_text(run_dir / "identity.csv"));
  REQUIRE(identity.size() == 32);
  for (const auto& row : identity) {
    CAPTURE(row[0] + " " + row[1] + " " + row[2]);
    CHECK(std::atof(row[3].c_str()) < 1e-9);
  }
  const auto agreement = csv_rows(read_text(run_dir / "agreement.csv"));
  CHECK(agreement.size() == 2 * 2 * 64);

  // Linear regression: every method is exact on its own neighbourhood (loss at the column's
  // minimum, near 0), and recovers w (VG, SmoothGrad, C-LIME) or w * x (the others).
  std::map<std::string, std::map<std::string, double>> loss;  // [neighbourhood][method]
  for (const auto& row : csv_rows(read_text(run_dir / "lfa_loss.csv"))) {
    REQUIRE(row.size() == 8);
    if (row[2] == row[3]) CHECK(std::atof(row[6].c_str()) == 0.0);  // own method minus itself
    if (row[0] == "diabetes" && row[1] == "linear regression") loss[row[3]][row[2]] = std::atof(row[4].c_str());
  }
  REQUIRE(loss.size() == 8);
  for (const auto& entry : loss) {  // no structured binding: clang 14 cannot CAPTURE one
    const std::string& neighbourhood = entry.first;
    const auto& by_method = entry.second;
    CAPTURE(neighbourhood);
    REQUIRE(by_method.count(neighbourhood) == 1);
    CHECK(by_method.at(neighbourhood) < 1e-20);
  }
  const std::map<std::string, bool> recovers_w = {{"lime", false},
                                                  {"kernel_shap", false},
                                                  {"occlusion", false},
                                                  {"clime", true},
                                                  {"smoothgrad", true},
                                                  {"vanilla_gradient", true},
                                                  {"integrated_gradients", false},
                                                  {"gradient_x_input", false}};
  int recovery_rows = 0;
  for (const auto& row : csv_rows(read_text(run_dir / "recovery.csv"))) {
    if (row[0] != "diabetes" || row[3] != "explained") continue;
    ++recovery_rows;
    CAPTURE(row[2]);
    const double to_w = std::atof(row[4].c_str()), to_wx = std::atof(row[6].c_str());
    CHECK((recovers_w.at(row[2]) ? to_w : to_wx) < 1e-12);
    CHECK((recovers_w.at(row[2]) ? to_wx : to_w) > 1e-3);
  }
  CHECK(recovery_rows == 8);
  fs::remove_all(dir);
}

}  // namespace loupe::test
