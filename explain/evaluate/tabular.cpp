// Tabular data sets and models for the LFA experiments. See tabular.hpp.
#include "explain/evaluate/tabular.hpp"

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>

#include "nn/data/csv.hpp"
#include "nn/data/gzip.hpp"
#include "nn/optim/optimizer.hpp"
#include "tensor/ops/random_ops.hpp"

namespace loupe::explain::tabular {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDebianDir = "/usr/lib/python3/dist-packages/sklearn/datasets/data";

double parse_number(const std::string& field, const std::string& source, size_t row, size_t col) {
  char* end = nullptr;
  const double v = std::strtod(field.c_str(), &end);
  LOUPE_CHECK(!field.empty() && end != nullptr && *end == '\0' && std::isfinite(v), "tabular: '", source, "' row ",
              row + 1, " field ", col + 1, " is not a number: '", field, "'");
  return v;
}

// sklearn's layout for breast_cancer.csv and wine_data.csv: a first line "N,d,name_0,name_1,..",
// then N rows of d features and an integer class.
void read_sklearn_classification(const std::string& path, int64_t n_expected, int64_t d_expected, Tensor& x,
                                 std::vector<int64_t>& labels) {
  const std::vector<uint8_t> bytes = nn::read_file_bytes(path);
  const auto rows = nn::parse_csv_rows(std::string(bytes.begin(), bytes.end()), path);
  LOUPE_CHECK(!rows.empty() && rows[0].size() >= 2, "tabular: '", path, "' has no header line");
  const auto n = static_cast<int64_t>(parse_number(rows[0][0], path, 0, 0));
  const auto d = static_cast<int64_t>(parse_number(rows[0][1], path, 0, 1));
  LOUPE_CHECK(n == n_expected && d == d_expected, "tabular: '", path, "' announces ", n, " x ", d, ", expected ",
              n_expected, " x ", d_expected);
  LOUPE_CHECK(static_cast<int64_t>(rows.size()) - 1 >= n, "tabular: '", path, "' announces ", n, " rows but holds ",
              rows.size() - 1);
  std::vector<double> values;
  labels.clear();
  for (int64_t r = 1; r <= n; ++r) {
    const auto& row = rows[static_cast<size_t>(r)];
    LOUPE_CHECK(static_cast<int64_t>(row.size()) == d + 1, "tabular: '", path, "' row ", r + 1, " has ", row.size(),
                " fields, expected ", d + 1);
    for (int64_t c = 0; c < d; ++c)
      values.push_back(parse_number(row[static_cast<size_t>(c)], path, static_cast<size_t>(r), static_cast<size_t>(c)));
    labels.push_back(static_cast<int64_t>(
        parse_number(row[static_cast<size_t>(d)], path, static_cast<size_t>(r), static_cast<size_t>(d))));
  }
  x = from_values(values, {n, d}, DType::f64);
}

// Whitespace-separated numbers, one row per line (the diabetes files, gzip-compressed).
std::vector<std::vector<double>> read_gzip_table(const std::string& path) {
  const std::vector<uint8_t> bytes = nn::read_gzip_file(path);
  std::vector<std::vector<double>> rows;
  std::string line;
  size_t line_no = 0;
  auto flush = [&]() {
    ++line_no;
    std::vector<double> row;
    size_t i = 0;
    while (i < line.size()) {
      while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
      size_t j = i;
      while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
      if (j > i) row.push_back(parse_number(line.substr(i, j - i), path, line_no - 1, row.size()));
      i = j;
    }
    if (!row.empty()) rows.push_back(std::move(row));
    line.clear();
  };
  for (uint8_t b : bytes) {
    if (b == '\n')
      flush();
    else
      line.push_back(static_cast<char>(b));
  }
  if (!line.empty()) flush();
  return rows;
}

}  // namespace

std::string find_sklearn_file(const std::string& file, const std::string& source_root) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("LOUPE_SKLEARN_DATA"); env != nullptr && *env != '\0') dirs.emplace_back(env);
  const fs::path cached = fs::path("third_party") / "sklearn-data";
  dirs.push_back(cached);
  if (!source_root.empty()) dirs.push_back(fs::path(source_root) / cached);
  dirs.emplace_back(kDebianDir);
  std::error_code ec;
  for (const fs::path& dir : dirs)
    if (fs::is_regular_file(dir / file, ec)) return dir.string();
  return std::string();
}

const std::vector<std::string>& dataset_names() {
  static const std::vector<std::string> names = {"breast_cancer", "wine", "diabetes"};
  return names;
}

std::vector<std::string> dataset_files(const std::string& name) {
  if (name == "breast_cancer") return {"breast_cancer.csv"};
  if (name == "wine") return {"wine_data.csv"};
  if (name == "diabetes") return {"diabetes_data_raw.csv.gz", "diabetes_target.csv.gz"};
  throw Error("tabular: unknown data set '" + name + "' (known: breast_cancer, wine, diabetes)");
}

Tensor min_max_normalise(const Tensor& x) {
  LOUPE_CHECK(x.defined() && x.dim() == 2 && x.size(0) >= 1, "min_max_normalise: x must be (N, d), got ",
              x.defined() ? shape_str(x.shape()) : "undefined");
  const Tensor xf = ops::to_dtype(x, DType::f64);
  const Tensor lo = ops::amin(xf, {0}, true), hi = ops::amax(xf, {0}, true);  // (1, d)
  const Tensor range = ops::sub(hi, lo);
  // A constant column: divide by 1 (its values minus the minimum are all 0).
  const Tensor safe = ops::where(ops::gt(range, zeros_like(range)), range, ones_like(range));
  return ops::div(ops::sub(xf, lo), safe);
}

Dataset load(const std::string& name, const std::string& dir_in) {
  const std::vector<std::string> files = dataset_files(name);
  const std::string dir = dir_in.empty() ? find_sklearn_file(files[0]) : dir_in;
  LOUPE_CHECK(!dir.empty(), "tabular: sklearn's ", files[0],
              " was not found (./run extracts it into third_party/sklearn-data/; or set LOUPE_SKLEARN_DATA)");
  Dataset data;
  data.name = name;
  Tensor x;
  if (name == "breast_cancer" || name == "wine") {
    std::vector<int64_t> labels;
    if (name == "breast_cancer") {
      read_sklearn_classification((fs::path(dir) / files[0]).string(), 569, 30, x, labels);
      data.task = "binary: benign (1) vs malignant (0); logistic regression on p(benign)";
    } else {
      read_sklearn_classification((fs::path(dir) / files[0]).string(), 178, 13, x, labels);
      data.task = "one-vs-rest: class_0 (1) vs classes 1 and 2 (0); logistic regression on p(class_0)";
    }
    std::vector<double> y;
    for (int64_t l : labels) y.push_back(name == "wine" ? (l == 0 ? 1.0 : 0.0) : static_cast<double>(l));
    data.y = from_values(y, {static_cast<int64_t>(y.size())}, DType::f64);
    data.classification = true;
  } else {
    const std::string data_path = (fs::path(dir) / files[0]).string(),
                      target_path = (fs::path(dir) / files[1]).string();
    const auto rows = read_gzip_table(data_path);
    const auto targets = read_gzip_table(target_path);
    LOUPE_CHECK(rows.size() == 442 && targets.size() == 442, "tabular: diabetes needs 442 rows in '", data_path,
                "' and '", target_path, "', got ", rows.size(), " and ", targets.size());
    std::vector<double> values, y;
    for (size_t r = 0; r < rows.size(); ++r) {
      LOUPE_CHECK(rows[r].size() == 10 && targets[r].size() == 1, "tabular: diabetes row ", r + 1, " has ",
                  rows[r].size(), " features and ", targets[r].size(), " targets, expected 10 and 1");
      values.insert(values.end(), rows[r].begin(), rows[r].end());
      y.push_back(targets[r][0]);
    }
    x = from_values(values, {442, 10}, DType::f64);
    data.y = ops::reshape(min_max_normalise(from_values(y, {442, 1}, DType::f64)), {442});
    data.classification = false;
    data.task = "regression: disease progression after one year (min-max normalised); linear regression";
  }
  data.x = min_max_normalise(x);
  return data;
}

Split split(const Dataset& data, double test_fraction, uint64_t seed) {
  LOUPE_CHECK(test_fraction > 0.0 && test_fraction < 1.0, "tabular::split: test_fraction must be in (0, 1), got ",
              test_fraction);
  const int64_t n = data.x.size(0);
  const auto n_test = static_cast<int64_t>(std::llround(test_fraction * static_cast<double>(n)));
  LOUPE_CHECK(n_test >= 1 && n_test < n, "tabular::split: ", n, " rows leave no train or test rows");
  Generator gen(seed);
  const Tensor order = permutation(n, &gen);
  const Tensor test_idx = ops::narrow(order, 0, 0, n_test), train_idx = ops::narrow(order, 0, n_test, n - n_test);
  Split s;
  s.x_train = ops::index_select(data.x, 0, train_idx);
  s.y_train = ops::index_select(data.y, 0, train_idx);
  s.x_test = ops::index_select(data.x, 0, test_idx);
  s.y_test = ops::index_select(data.y, 0, test_idx);
  return s;
}

std::string model_name(ModelKind kind) {
  switch (kind) {
    case ModelKind::linear: return "linear";
    case ModelKind::mlp3: return "mlp3";
    case ModelKind::mlp5: return "mlp5";
    case ModelKind::mlp8: return "mlp8";
  }
  return "?";
}

const std::vector<ModelKind>& model_kinds() {
  static const std::vector<ModelKind> kinds = {ModelKind::linear, ModelKind::mlp3, ModelKind::mlp5, ModelKind::mlp8};
  return kinds;
}

std::string Model::name() const {
  if (kind == ModelKind::linear) return classification ? "logistic" : "linear regression";
  return model_name(kind);
}

ForwardFn Model::forward() const {
  const std::vector<Tensor> w = weights, b = biases;
  return [w, b](const std::vector<Tensor>& in) {
    Tensor h = in[0];
    for (size_t i = 0; i < w.size(); ++i) {
      h = linear(h, w[i], b[i]);
      if (i + 1 < w.size()) h = relu(h);
    }
    return h;
  };
}

Model make_model(ModelKind kind, int64_t d, bool classification, uint64_t seed) {
  LOUPE_CHECK(d >= 1, "tabular::make_model: d must be >= 1, got ", d);
  const int64_t layers = kind == ModelKind::linear ? 1 : kind == ModelKind::mlp3 ? 3 : kind == ModelKind::mlp5 ? 5 : 8;
  constexpr int64_t width = 8;
  Generator gen(seed);
  Model m;
  m.kind = kind;
  m.classification = classification;
  for (int64_t l = 0; l < layers; ++l) {
    const int64_t in = l == 0 ? d : width, out = l + 1 == layers ? 1 : width;
    const double bound = 1.0 / std::sqrt(static_cast<double>(in));  // torch.nn.Linear's
    m.weights.push_back(uniform({out, in}, -bound, bound, DType::f64, &gen).set_requires_grad(true));
    m.biases.push_back(uniform({out}, -bound, bound, DType::f64, &gen).set_requires_grad(true));
  }
  return m;
}

Trained train(ModelKind kind, const Dataset& data, const Split& split, const TrainOptions& options) {
  LOUPE_CHECK(options.steps >= 1 && options.lr > 0.0, "tabular::train: steps must be >= 1 and lr > 0");
  const auto start = std::chrono::steady_clock::now();
  Trained t;
  t.model = make_model(kind, data.x.size(1), data.classification, options.seed);
  std::vector<Tensor> params = t.model.weights;
  params.insert(params.end(), t.model.biases.begin(), t.model.biases.end());
  nn::AdamOptions adam_options;
  adam_options.lr = options.lr;
  nn::Adam adam(params, adam_options);
  const ForwardFn f = t.model.forward();
  const int64_t n = split.x_train.size(0);
  const Tensor target = ops::reshape(split.y_train, {n, 1});
  for (int64_t step = 0; step < options.steps; ++step) {
    adam.zero_grad();
    const Tensor out = f({split.x_train});  // (n, 1)
    const Tensor l = data.classification ? binary_cross_entropy_with_logits(out, target) : mse_loss(out, target);
    backward(l);
    adam.step();
    t.train_loss = l.item();
  }
  NoGradGuard no_grad;
  const Tensor out = ops::reshape(f({split.x_test}), {split.x_test.size(0)});
  const std::vector<double> o = to_vector<double>(out), y = to_vector<double>(split.y_test);
  if (data.classification) {
    double correct = 0;
    for (size_t i = 0; i < o.size(); ++i) correct += ((o[i] > 0.0) == (y[i] > 0.5)) ? 1.0 : 0.0;
    t.test_metric = correct / static_cast<double>(o.size());
  } else {
    double mean = 0, ss_res = 0, ss_tot = 0;
    for (double v : y) mean += v;
    mean /= static_cast<double>(y.size());
    for (size_t i = 0; i < o.size(); ++i) {
      ss_res += (y[i] - o[i]) * (y[i] - o[i]);
      ss_tot += (y[i] - mean) * (y[i] - mean);
    }
    t.test_metric = ss_tot > 0 ? 1.0 - ss_res / ss_tot : 0.0;
  }
  t.train_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return t;
}

}  // namespace loupe::explain::tabular
