// Datasets: TensorDataset, ImageFolderDataset (class folders), CsvImageDataset (file + multi-hot
// label columns, filters, missing-file policy), and the real chest X-ray labels when present.
#include <doctest/doctest.h>

#include "nn/data/dataset.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
// A 1-channel h x w PNG whose pixels all hold `level` / 255.
void write_png(const std::string& path, int64_t h, int64_t w, double level) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  nn::save_png(path, full({1, h, w}, level / 255.0));
}
}  // namespace

TEST_CASE("TensorDataset: examples are slices along the first dim") {
  Tensor images = arange(0, 24, 1, DType::f32);
  images = ops::reshape(images, {4, 1, 2, 3});
  Tensor labels = from_values(std::vector<int64_t>{3, 1, 4, 1}, {4});
  nn::TensorDataset ds(images, labels);
  CHECK(ds.size() == 4);
  const nn::Example e = ds.get(2);
  CHECK(e.image.shape() == Shape{1, 2, 3});
  CHECK(values(e.image)[0] == 12.0);
  CHECK(e.label.dim() == 0);
  CHECK(e.label.item() == 4.0);
  CHECK(ds.describe(2) == "#2");
  CHECK_THROWS_WITH_AS(ds.get(4), doctest::Contains("index 4 is out of range"), Error);
  CHECK_THROWS_AS(ds.get(-1), Error);
  CHECK_THROWS_AS(nn::TensorDataset(images, zeros({3})), Error);
}

TEST_CASE("ImageFolderDataset: sorted class folders, sorted files, labels are class indices") {
  ScratchDir dir("folder");
  write_png(dir.file("dog/b.png"), 2, 2, 30);
  write_png(dir.file("dog/a.png"), 2, 2, 20);
  write_png(dir.file("cat/z.PNG"), 2, 2, 10);
  std::filesystem::create_directories(dir.file("ant"));  // an empty class still counts
  write_text(dir.file("dog/readme.txt"), "not an image");
  write_text(dir.file("top-level.png"), "files beside the class folders are ignored");
  nn::ImageFolderDataset ds(dir.path().string());
  CHECK(ds.classes() == std::vector<std::string>{"ant", "cat", "dog"});
  REQUIRE(ds.size() == 3);
  CHECK(ds.label_of(0) == 1);
  CHECK(ds.label_of(1) == 2);
  CHECK(ds.describe(1).find("a.png") != std::string::npos);
  const nn::Example e = ds.get(2);
  CHECK(e.image.shape() == Shape{1, 2, 2});
  CHECK(values(e.image)[0] * 255.0 == doctest::Approx(30));
  CHECK(e.label.dtype() == DType::i64);
  CHECK(e.label.item() == 2.0);
  CHECK(nn::ImageFolderDataset(dir.path().string(), {.channels = nn::ImageChannels::rgb}).get(0).image.shape() ==
        Shape{3, 2, 2});
  CHECK_THROWS_WITH_AS(nn::ImageFolderDataset(dir.file("nothing-here")), doctest::Contains("is not a folder"), Error);
  // A corrupt image: get() names the file.
  write_text(dir.file("cat/y.png"), "garbage");
  nn::ImageFolderDataset with_bad(dir.path().string());
  CHECK_THROWS_WITH_AS(with_bad.get(0), doctest::Contains("y.png"), Error);
}

TEST_CASE("CsvImageDataset: file column, multi-hot labels, filters, and the missing-file policy") {
  ScratchDir dir("csvds");
  write_png(dir.file("images/a.png"), 2, 2, 10);
  write_png(dir.file("images/b,1.png"), 2, 2, 20);
  write_png(dir.file("images/c.png"), 2, 2, 30);
  write_text(dir.file("labels.csv"),
             "file,note,split,covid19,pneumonia\n"
             "a.png,\"first, with a comma\",train,1,1\n"
             "\"b,1.png\",second,test,0,1\n"
             "c.png,\"third \"\"quoted\"\"\",train,0,0\n"
             "gone.png,,test,0,0\n");
  nn::CsvImageOptions options;
  options.image_dir = dir.file("images");
  options.label_columns = {"covid19", "pneumonia"};
  options.filters = {{"split", "train"}};
  nn::CsvImageDataset train(dir.file("labels.csv"), options);
  REQUIRE(train.size() == 2);
  CHECK(train.label_names() == std::vector<std::string>{"covid19", "pneumonia"});
  CHECK(values(train.labels()) == std::vector<double>{1, 1, 0, 0});
  CHECK(train.labels().shape() == Shape{2, 2});
  const nn::Example e = train.get(1);
  CHECK(e.label.dtype() == DType::f32);
  CHECK(values(e.label) == std::vector<double>{0, 0});
  CHECK(values(e.image)[0] * 255.0 == doctest::Approx(30));
  CHECK(train.describe(0).find("a.png") != std::string::npos);

  // The test split names a file that does not exist: stop (the default) fails at construction.
  options.filters = {{"split", "test"}};
  CHECK_THROWS_WITH_AS(nn::CsvImageDataset(dir.file("labels.csv"), options),
                       doctest::Contains("gone.png' does not exist"), Error);
  // skip leaves it out and lists it.
  options.on_bad_file = nn::OnBadFile::skip;
  nn::CsvImageDataset test(dir.file("labels.csv"), options);
  REQUIRE(test.size() == 1);
  CHECK(test.describe(0).find("b,1.png") != std::string::npos);
  REQUIRE(test.skipped().size() == 1);
  CHECK(test.skipped()[0].file.find("gone.png") != std::string::npos);
  // Without the up-front check, get() names the missing file.
  options.on_bad_file = nn::OnBadFile::stop;
  options.check_files_exist = false;
  nn::CsvImageDataset unchecked(dir.file("labels.csv"), options);
  CHECK_THROWS_WITH_AS(unchecked.get(1), doctest::Contains("gone.png': no such file"), Error);

  // No filter: all four rows (with the check off). Without image_dir, files are looked up beside
  // the CSV file.
  nn::CsvImageOptions all;
  all.label_columns = {"pneumonia"};
  all.check_files_exist = false;
  nn::CsvImageDataset beside(dir.file("labels.csv"), all);
  CHECK(beside.size() == 4);
  CHECK(beside.describe(0) == (dir.path() / "a.png").string());
  // Errors: an unknown column, a label that is not a number, no label columns.
  all.label_columns = {"ards"};
  CHECK_THROWS_WITH_AS(nn::CsvImageDataset(dir.file("labels.csv"), all), doctest::Contains("no column 'ards'"), Error);
  all.label_columns = {"split"};
  CHECK_THROWS_WITH_AS(nn::CsvImageDataset(dir.file("labels.csv"), all),
                       doctest::Contains("column 'split' holds 'train', not a number"), Error);
  all.label_columns = {};
  CHECK_THROWS_AS(nn::CsvImageDataset(dir.file("labels.csv"), all), Error);
}

TEST_CASE("CsvImageDataset: the chest X-ray training split") {
  const std::string cxr = cxr_dir();
  if (cxr.empty()) {
    MESSAGE("skipped: the chest X-ray data (../shared/data/cxr or $LOUPE_DATA_DIR/cxr) is not there");
    return;
  }
  nn::CsvImageOptions options;
  options.image_dir = cxr + "/images";
  options.label_columns = {"covid19", "pneumonia", "no_finding"};
  options.filters = {{"split", "train"}};
  nn::CsvImageDataset train(cxr + "/labels.csv", options);
  CHECK(train.size() == 526);
  CHECK(train.skipped().empty());
  // Column sums of the multi-hot labels: 173 COVID-19, 173 + 177 pneumonia, 176 no finding
  // (README: pneumonia = 1 for every Pneumonia/... row, COVID-19 included).
  const std::vector<double> l = values(train.labels());
  double sums[3] = {0, 0, 0};
  for (size_t i = 0; i < l.size(); ++i) sums[i % 3] += l[i];
  CHECK(sums[0] == 173);
  CHECK(sums[1] == 350);
  CHECK(sums[2] == 176);
  const nn::Example e = train.get(0);
  CHECK(e.image.shape() == Shape{1, 256, 256});
  CHECK(e.label.shape() == Shape{3});
}

}  // namespace loupe::test
