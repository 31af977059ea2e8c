// Datasets. See dataset.hpp.
#include "nn/data/dataset.hpp"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>

#include "nn/data/csv.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::nn {

namespace fs = std::filesystem;

std::string Dataset::describe(int64_t index) const {
  std::string name = "#";  // appended rather than "#" + ..., which trips a GCC 12 -Wrestrict false positive
  name += std::to_string(index);
  return name;
}

const std::vector<SkippedFile>& Dataset::skipped() const {
  static const std::vector<SkippedFile> none;
  return none;
}

void Dataset::check_index(int64_t index, const char* what) const {
  LOUPE_CHECK(index >= 0 && index < size(), what, ": index ", index, " is out of range for a dataset of ", size(),
              " examples");
}

// --- TensorDataset ---

TensorDataset::TensorDataset(Tensor images, Tensor labels) : images_(std::move(images)), labels_(std::move(labels)) {
  LOUPE_CHECK(images_.defined() && labels_.defined(), "TensorDataset: images and labels must be defined");
  LOUPE_CHECK(images_.dim() >= 1 && labels_.dim() >= 1 && images_.size(0) == labels_.size(0),
              "TensorDataset: images ", shape_str(images_.shape()), " and labels ", shape_str(labels_.shape()),
              " must have the same first dim");
}

Example TensorDataset::get(int64_t index) const {
  check_index(index, "TensorDataset");
  return {ops::select(images_, 0, index), ops::select(labels_, 0, index)};
}

// --- ImageFolderDataset ---

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool has_extension(const fs::path& path, const std::vector<std::string>& extensions) {
  const std::string ext = lower(path.extension().string());
  return std::any_of(extensions.begin(), extensions.end(), [&](const std::string& e) { return lower(e) == ext; });
}

}  // namespace

ImageFolderDataset::ImageFolderDataset(const std::string& root, ImageFolderOptions options)
    : options_(std::move(options)) {
  std::error_code ec;
  LOUPE_CHECK(fs::is_directory(root, ec), "ImageFolderDataset: '", root, "' is not a folder");
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    if (entry.is_directory()) classes_.push_back(entry.path().filename().string());
  }
  LOUPE_CHECK(!ec, "ImageFolderDataset: cannot list '", root, "' (", ec.message(), ")");
  std::sort(classes_.begin(), classes_.end());
  LOUPE_CHECK(!classes_.empty(), "ImageFolderDataset: '", root, "' has no class subfolders");
  for (size_t c = 0; c < classes_.size(); ++c) {
    std::vector<std::string> names;
    const fs::path folder = fs::path(root) / classes_[c];
    for (const auto& entry : fs::directory_iterator(folder, ec)) {
      if (!entry.is_directory() && has_extension(entry.path(), options_.extensions)) {
        names.push_back(entry.path().string());
      }
    }
    LOUPE_CHECK(!ec, "ImageFolderDataset: cannot list '", folder.string(), "' (", ec.message(), ")");
    std::sort(names.begin(), names.end());
    for (auto& name : names) files_.emplace_back(std::move(name), static_cast<int64_t>(c));
  }
}

Example ImageFolderDataset::get(int64_t index) const {
  check_index(index, "ImageFolderDataset");
  const auto& [path, label] = files_[static_cast<size_t>(index)];
  return {load_image(path, options_.channels), scalar_tensor(static_cast<double>(label), DType::i64)};
}

std::string ImageFolderDataset::describe(int64_t index) const {
  check_index(index, "ImageFolderDataset");
  return files_[static_cast<size_t>(index)].first;
}

int64_t ImageFolderDataset::label_of(int64_t index) const {
  check_index(index, "ImageFolderDataset");
  return files_[static_cast<size_t>(index)].second;
}

// --- CsvImageDataset ---

CsvImageDataset::CsvImageDataset(const std::string& csv_path, CsvImageOptions options) : options_(std::move(options)) {
  LOUPE_CHECK(!options_.label_columns.empty(), "CsvImageDataset: '", csv_path, "': no label columns were given");
  const CsvTable table = read_csv(csv_path);
  const size_t file_col = table.column(options_.file_column);
  std::vector<size_t> label_cols;
  for (const auto& name : options_.label_columns) label_cols.push_back(table.column(name));
  std::vector<std::pair<size_t, std::string>> filters;
  for (const auto& [column, value] : options_.filters) filters.emplace_back(table.column(column), value);
  const fs::path image_dir =
      options_.image_dir.empty() ? fs::path(csv_path).parent_path() : fs::path(options_.image_dir);

  for (size_t r = 0; r < table.rows.size(); ++r) {
    const auto& row = table.rows[r];
    const bool keep = std::all_of(filters.begin(), filters.end(), [&](const auto& f) { return row[f.first] == f.second; });
    if (!keep) continue;
    LOUPE_CHECK(!row[file_col].empty(), "CsvImageDataset: '", csv_path, "': data row ", r + 1, " has an empty '",
                options_.file_column, "'");
    const std::string path = (image_dir / row[file_col]).string();
    std::vector<float> label;
    for (size_t k = 0; k < label_cols.size(); ++k) {
      const std::string& text = row[label_cols[k]];
      char* end = nullptr;
      const double v = std::strtod(text.c_str(), &end);
      LOUPE_CHECK(!text.empty() && end == text.c_str() + text.size(), "CsvImageDataset: '", csv_path, "': data row ",
                  r + 1, " (", row[file_col], "): column '", options_.label_columns[k], "' holds '", text,
                  "', not a number");
      label.push_back(static_cast<float>(v));
    }
    if (options_.check_files_exist) {
      std::error_code ec;
      const bool present = fs::is_regular_file(path, ec);
      if (!present) {
        LOUPE_CHECK(options_.on_bad_file == OnBadFile::skip, "CsvImageDataset: '", csv_path, "': data row ", r + 1,
                    ": image file '", path, "' does not exist");
        skipped_.push_back({path, "no such file"});
        continue;
      }
    }
    files_.push_back(path);
    labels_.insert(labels_.end(), label.begin(), label.end());
  }
}

Example CsvImageDataset::get(int64_t index) const {
  check_index(index, "CsvImageDataset");
  return {load_image(files_[static_cast<size_t>(index)], options_.channels), label_of(index)};
}

std::string CsvImageDataset::describe(int64_t index) const {
  check_index(index, "CsvImageDataset");
  return files_[static_cast<size_t>(index)];
}

Tensor CsvImageDataset::label_of(int64_t index) const {
  check_index(index, "CsvImageDataset");
  const size_t k = options_.label_columns.size();
  const auto first = labels_.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(index) * k);
  return from_values(std::vector<float>(first, first + static_cast<std::ptrdiff_t>(k)), {static_cast<int64_t>(k)});
}

Tensor CsvImageDataset::labels() const {
  return from_values(labels_, {size(), static_cast<int64_t>(options_.label_columns.size())});
}

}  // namespace loupe::nn
