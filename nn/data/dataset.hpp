// Datasets: a numbered collection of examples, each an image tensor and a label tensor.
//
//   TensorDataset       examples are slices of two in-memory tensors (e.g. Fashion-MNIST from idx)
//   ImageFolderDataset  root/<class name>/<image file>: one subfolder per class, classes in sorted
//                       order, label = class index (a 0-d int64 tensor, for cross_entropy)
//   CsvImageDataset     a CSV file with a file-name column and label columns: label = the label
//                       columns as a multi-hot float32 vector (for BCE with logits), rows chosen
//                       by optional column = value filters (e.g. split = train)
//
// Images are decoded by load_image (image.hpp) into (C, H, W) float32 in [0, 1]. A file that is
// missing or cannot be decoded is handled by the dataset's OnBadFile policy:
//   stop  the error (loupe::Error naming the file) reaches the caller: get() throws, and the
//         constructor throws for a missing file, so a long run stops before it starts;
//   skip  the constructor drops missing files and lists them in skipped(); a file that fails to
//         decode later still makes get() throw, and the DataLoader, seeing the skip policy,
//         leaves that example out of its batch and lists it in its own skipped().
// get() must be safe to call from several threads at once (the loader's workers do).
// Tests: tests/nn/data/test_dataset.cpp
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "nn/data/image.hpp"
#include "tensor/tensor.hpp"

namespace loupe::nn {

struct Example {
  Tensor image;  // (C, H, W) for image datasets; any shape for TensorDataset
  Tensor label;  // 0-d int64 class index, or (K,) float32 multi-hot
};

enum class OnBadFile { stop, skip };

// A file left out, and why.
struct SkippedFile {
  std::string file;
  std::string reason;
};

class Dataset {
 public:
  virtual ~Dataset() = default;
  virtual int64_t size() const = 0;
  virtual Example get(int64_t index) const = 0;
  // What example `index` is read from (a file path), for messages; "#index" by default.
  virtual std::string describe(int64_t index) const;
  virtual OnBadFile on_bad_file() const { return OnBadFile::stop; }
  // Files the dataset dropped when it was built (only under OnBadFile::skip).
  virtual const std::vector<SkippedFile>& skipped() const;

 protected:
  // Throws unless 0 <= index < size(), naming `what` (the dataset's kind).
  void check_index(int64_t index, const char* what) const;
};

// Example i = (images[i], labels[i]): both tensors are indexed along their first dim.
class TensorDataset : public Dataset {
 public:
  TensorDataset(Tensor images, Tensor labels);
  int64_t size() const override { return images_.size(0); }
  Example get(int64_t index) const override;

 private:
  Tensor images_;
  Tensor labels_;
};

struct ImageFolderOptions {
  ImageChannels channels = ImageChannels::as_stored;
  OnBadFile on_bad_file = OnBadFile::stop;
  // File name endings (compared without regard to case) that count as images.
  std::vector<std::string> extensions = {".png", ".jpg", ".jpeg", ".bmp"};
};

class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(const std::string& root, ImageFolderOptions options = {});
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Example get(int64_t index) const override;
  std::string describe(int64_t index) const override;
  OnBadFile on_bad_file() const override { return options_.on_bad_file; }

  const std::vector<std::string>& classes() const { return classes_; }
  int64_t label_of(int64_t index) const;

 private:
  ImageFolderOptions options_;
  std::vector<std::string> classes_;
  std::vector<std::pair<std::string, int64_t>> files_;  // (path, class index), sorted by class then name
};

struct CsvImageOptions {
  std::string image_dir;                  // folder the file column is relative to; "" = the CSV's folder
  std::string file_column = "file";
  std::vector<std::string> label_columns;  // at least one; their values are read as numbers
  // Keep only rows whose column equals the value, e.g. {{"split", "train"}}; all must match.
  std::vector<std::pair<std::string, std::string>> filters;
  ImageChannels channels = ImageChannels::as_stored;
  OnBadFile on_bad_file = OnBadFile::stop;
  bool check_files_exist = true;  // look for every file when the dataset is built
};

class CsvImageDataset : public Dataset {
 public:
  CsvImageDataset(const std::string& csv_path, CsvImageOptions options);
  int64_t size() const override { return static_cast<int64_t>(files_.size()); }
  Example get(int64_t index) const override;
  std::string describe(int64_t index) const override;
  OnBadFile on_bad_file() const override { return options_.on_bad_file; }
  const std::vector<SkippedFile>& skipped() const override { return skipped_; }

  const std::vector<std::string>& label_names() const { return options_.label_columns; }
  // The (K,) label of an example without decoding its image; labels() stacks all of them (N, K).
  Tensor label_of(int64_t index) const;
  Tensor labels() const;

 private:
  CsvImageOptions options_;
  std::vector<std::string> files_;  // full paths
  std::vector<float> labels_;       // size() x K, row-major
  std::vector<SkippedFile> skipped_;
};

}  // namespace loupe::nn
