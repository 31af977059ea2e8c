// Tabular data and models of the LFA experiments (explain/evaluate/tabular.hpp): min-max
// normalisation, the real sklearn files (shapes 569x30, 178x13, 442x10, values in [0, 1], known
// class counts and first values; skipped with a message where ./run could not extract them),
// corrupt files, the seeded split, and native training (deterministic, better than chance).
#include <doctest/doctest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "explain/evaluate/tabular.hpp"
#include "tests/explain/explain_test_util.hpp"
#include "tests/nn/data/data_paths.hpp"

namespace loupe::test {

namespace tab = explain::tabular;

namespace {

bool have(const std::string& name) {
  for (const std::string& f : tab::dataset_files(name))
    if (tab::find_sklearn_file(f, LOUPE_TEST_SOURCE_ROOT).empty()) return false;
  return true;
}

std::string dir_of(const std::string& name) {
  return tab::find_sklearn_file(tab::dataset_files(name)[0], LOUPE_TEST_SOURCE_ROOT);
}

}  // namespace

TEST_CASE("evaluate tabular: min-max normalisation") {
  const Tensor x = from_values(std::vector<double>{1, 5, 2, 3, 5, 4, 2, 5, 6}, {3, 3}, DType::f64);
  const Tensor n = tab::min_max_normalise(x);
  check_close(n, from_values(std::vector<double>{0, 0, 0, 1, 0, 0.5, 0.5, 0, 1}, {3, 3}, DType::f64), 1e-15, 0,
              "normalised");  // the constant middle column becomes 0
  CHECK_THROWS_AS(tab::min_max_normalise(zeros({3}, DType::f64)), Error);
}

TEST_CASE("evaluate tabular: sklearn's breast cancer, wine and diabetes files") {
  for (const std::string& name : tab::dataset_names()) {
    CAPTURE(name);
    if (!have(name)) {
      MESSAGE("skipped " << name
                         << ": sklearn's data files are absent (./run extracts python3-sklearn's copies into "
                            "third_party/sklearn-data/; LOUPE_SKLEARN_DATA names another folder)");
      continue;
    }
    const tab::Dataset data = tab::load(name, dir_of(name));
    const Shape expected = name == "breast_cancer" ? Shape{569, 30} : name == "wine" ? Shape{178, 13} : Shape{442, 10};
    REQUIRE(data.x.shape() == expected);
    REQUIRE(data.y.shape() == Shape{expected[0]});
    const auto lo = values(ops::amin(data.x, {0})), hi = values(ops::amax(data.x, {0}));
    for (size_t j = 0; j < lo.size(); ++j) {
      CHECK(lo[j] == 0.0);
      CHECK(hi[j] == doctest::Approx(1.0).epsilon(1e-15));
    }
    const auto y = values(data.y);
    double ones = 0;
    for (double v : y) ones += v;
    if (name == "breast_cancer") {
      CHECK(data.classification);
      CHECK(ones == 357.0);  // benign
    } else if (name == "wine") {
      CHECK(ones == 59.0);  // class_0
    } else {
      CHECK_FALSE(data.classification);
      CHECK(*std::min_element(y.begin(), y.end()) == 0.0);
      CHECK(*std::max_element(y.begin(), y.end()) == doctest::Approx(1.0));
      // sklearn's first row: age 59, sex 2, bmi 32.1, ...; target 151. bmi ranges 18.0 .. 42.2.
      CHECK(values(data.x)[2] == doctest::Approx((32.1 - 18.0) / (42.2 - 18.0)));
      CHECK(y[0] == doctest::Approx((151.0 - 25.0) / (346.0 - 25.0)));
    }
  }
}

TEST_CASE("evaluate tabular: corrupt and missing files raise errors naming them") {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("loupe_tabular_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  {
    std::ofstream(dir / "breast_cancer.csv") << "569,30,malignant,benign\n1,2,3\n";
    std::ofstream(dir / "wine_data.csv") << "178,13,a,b,c\n";
  }
  CHECK_THROWS_WITH_AS(tab::load("breast_cancer", dir.string()), doctest::Contains("breast_cancer.csv"), Error);
  CHECK_THROWS_WITH_AS(tab::load("wine", dir.string()), doctest::Contains("wine_data.csv"), Error);
  CHECK_THROWS_WITH_AS(tab::load("diabetes", dir.string()), doctest::Contains("diabetes_data_raw.csv.gz"), Error);
  CHECK_THROWS_AS(tab::load("iris", dir.string()), Error);
  std::filesystem::remove_all(dir);
}

TEST_CASE("evaluate tabular: seeded split and deterministic native training") {
  if (!have("breast_cancer") || !have("diabetes")) {
    MESSAGE("skipped: sklearn's breast_cancer.csv / diabetes files are absent (./run extracts them)");
    return;
  }
  const tab::Dataset bc = tab::load("breast_cancer", dir_of("breast_cancer"));
  const tab::Split s1 = tab::split(bc, 0.3, 5), s2 = tab::split(bc, 0.3, 5);
  CHECK(s1.x_test.size(0) == 171);
  CHECK(s1.x_train.size(0) == 398);
  check_close(s1.x_test, s2.x_test, 0, 0, "same seed, same split");
  tab::TrainOptions o;
  o.steps = 2000;
  o.seed = 1;
  const tab::Trained a = tab::train(tab::ModelKind::linear, bc, s1, o);
  const tab::Trained b = tab::train(tab::ModelKind::linear, bc, s1, o);
  check_close(a.model.weights[0], b.model.weights[0], 0, 0, "deterministic");
  CHECK(a.test_metric > 0.9);  // logistic regression on breast cancer: about 0.95-0.98
  CHECK(a.model.name() == "logistic");
  const tab::Trained mlp = tab::train(tab::ModelKind::mlp3, bc, s1, o);
  CHECK(mlp.model.weights.size() == 3);
  CHECK(mlp.model.weights[1].shape() == Shape{8, 8});
  CHECK(mlp.test_metric > 0.85);
  const tab::Dataset db = tab::load("diabetes", dir_of("diabetes"));
  const tab::Split sd = tab::split(db, 0.3, 5);
  o.steps = 1500;
  const tab::Trained lr = tab::train(tab::ModelKind::linear, db, sd, o);
  CHECK(lr.model.name() == "linear regression");
  CHECK(lr.model.output() == explain::Output::logit);
  CHECK(lr.test_metric > 0.3);  // R^2 of linear regression on diabetes: about 0.4-0.5
}

}  // namespace loupe::test
