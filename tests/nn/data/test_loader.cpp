// DataLoader: batching, drop_last, shuffling per epoch, the same batches for any number of worker
// threads (random transforms included), resuming mid-epoch, bounded look-ahead, and the skip / stop
// policy for a corrupt file.
#include <doctest/doctest.h>

#include <atomic>
#include <chrono>
#include <set>
#include <thread>

#include "nn/data/loader.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// n examples; example i is a (1, 2, 2) image filled with i and the label i. Counts get() calls.
class CountingDataset : public nn::Dataset {
 public:
  explicit CountingDataset(int64_t n) : n_(n) {}
  int64_t size() const override { return n_; }
  nn::Example get(int64_t index) const override {
    check_index(index, "CountingDataset");
    ++calls;
    return {full({1, 2, 2}, static_cast<double>(index)), scalar_tensor(static_cast<double>(index), DType::i64)};
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_;
};

// Every batch of one epoch: (labels, image values) in order.
std::vector<std::pair<std::vector<int64_t>, std::vector<double>>> run_epoch(nn::DataLoader& loader) {
  std::vector<std::pair<std::vector<int64_t>, std::vector<double>>> out;
  while (auto batch = loader.next()) {
    out.emplace_back(to_vector<int64_t>(batch->labels), values(batch->images));
  }
  return out;
}

}  // namespace

TEST_CASE("DataLoader: batches in order, the last one partial unless drop_last") {
  auto ds = std::make_shared<CountingDataset>(10);
  nn::DataLoader loader(ds, {.batch_size = 4});
  CHECK(loader.batches_per_epoch() == 3);
  auto b0 = loader.next();
  REQUIRE(b0);
  CHECK(b0->images.shape() == Shape{4, 1, 2, 2});
  CHECK(b0->labels.shape() == Shape{4});
  CHECK(b0->indices == std::vector<int64_t>{0, 1, 2, 3});
  CHECK(values(b0->images)[4] == 1.0);
  CHECK(loader.next()->indices == std::vector<int64_t>{4, 5, 6, 7});
  CHECK(loader.next()->indices == std::vector<int64_t>{8, 9});
  CHECK_FALSE(loader.next());
  // The state moved to the next epoch; next() goes on with it.
  CHECK(loader.state().epoch == 1);
  CHECK(loader.state().batch == 0);
  CHECK(loader.next()->indices == std::vector<int64_t>{0, 1, 2, 3});

  nn::DataLoader dropping(ds, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.batches_per_epoch() == 2);
  CHECK(run_epoch(dropping).size() == 2);
  CHECK_THROWS_AS(nn::DataLoader(ds, {.batch_size = 0}), Error);
}

TEST_CASE("DataLoader: shuffling is a permutation per epoch, fixed by the seed") {
  auto ds = std::make_shared<CountingDataset>(50);
  nn::DataLoader a(ds, {.batch_size = 7, .shuffle = true, .seed = 3});
  nn::DataLoader b(ds, {.batch_size = 7, .shuffle = true, .seed = 3});
  nn::DataLoader c(ds, {.batch_size = 7, .shuffle = true, .seed = 4});
  const auto e0 = a.epoch_order(0), e1 = a.epoch_order(1);
  CHECK(std::set<int64_t>(e0.begin(), e0.end()).size() == 50);
  CHECK(e0 != e1);
  CHECK(e0 == b.epoch_order(0));
  CHECK(e0 != c.epoch_order(0));
  std::vector<int64_t> seen;
  while (auto batch = a.next()) seen.insert(seen.end(), batch->indices.begin(), batch->indices.end());
  CHECK(seen == e0);
}

TEST_CASE("DataLoader: the same batches for 0, 1 and 3 workers, random transforms included") {
  auto ds = std::make_shared<CountingDataset>(23);
  // A random crop of a 1x2x2 image filled with i gives i anyway; use a pipeline whose randomness
  // shows in the values: pad to 4x4 then rotate randomly and flip.
  nn::Compose augment({nn::transforms::resize_pad(4), nn::transforms::random_rotation(30),
                       nn::transforms::random_hflip(), nn::transforms::random_crop(3, 3)});
  std::vector<std::vector<std::pair<std::vector<int64_t>, std::vector<double>>>> reference;
  for (int workers : {0, 1, 3}) {
    nn::DataLoader loader(ds, {.batch_size = 5, .shuffle = true, .seed = 17, .num_workers = workers,
                               .prefetch_batches = 1},
                          augment);
    std::vector<std::vector<std::pair<std::vector<int64_t>, std::vector<double>>>> epochs;
    for (int64_t epoch = 0; epoch < 3; ++epoch) {
      loader.start_epoch(epoch);
      epochs.push_back(run_epoch(loader));
    }
    CHECK(epochs[0].size() == 5);
    CHECK(epochs[0] != epochs[1]);  // a new order (and new augmentations) each epoch
    if (reference.empty()) {
      reference = epochs;
    } else {
      CHECK(epochs == reference);
    }
  }
}

TEST_CASE("DataLoader: resuming from a saved state gives the rest of the epoch") {
  auto ds = std::make_shared<CountingDataset>(30);
  nn::Compose augment({nn::transforms::resize_pad(5), nn::transforms::random_rotation(20)});
  nn::LoaderOptions options{.batch_size = 4, .shuffle = true, .seed = 99, .num_workers = 2};
  nn::DataLoader full_run(ds, options, augment);
  full_run.start_epoch(2);
  const auto all = run_epoch(full_run);
  REQUIRE(all.size() == 8);

  nn::DataLoader first(ds, options, augment);
  first.start_epoch(2);
  first.next();
  first.next();
  first.next();
  const nn::LoaderState saved = first.state();
  CHECK(saved.epoch == 2);
  CHECK(saved.batch == 3);

  nn::DataLoader resumed(ds, options, augment);
  resumed.set_state(saved);
  const auto rest = run_epoch(resumed);
  REQUIRE(rest.size() == 5);
  for (size_t i = 0; i < rest.size(); ++i) CHECK(rest[i] == all[i + 3]);
  CHECK_THROWS_AS(resumed.start_epoch(0, 9), Error);
}

TEST_CASE("DataLoader: workers stay a bounded number of batches ahead") {
  auto ds = std::make_shared<CountingDataset>(100);
  nn::DataLoader loader(ds, {.batch_size = 2, .num_workers = 2, .prefetch_batches = 1});
  REQUIRE(loader.next());
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  // After the first batch is handed out, at most batches 1 and 2 (look-ahead 2 * 1) are loaded.
  CHECK(ds->calls.load() <= 2 * 3);
  int64_t batches = 1;
  while (loader.next()) ++batches;
  CHECK(batches == 50);
  CHECK(ds->calls.load() == 100);
}

TEST_CASE("DataLoader: a corrupt image is skipped and reported, or stops the run naming the file") {
  ScratchDir dir("loader");
  std::string csv = "file,y\n";
  for (int i = 0; i < 6; ++i) {
    const std::string name = "img" + std::to_string(i) + ".png";
    if (i == 3) {
      write_text(dir.file(name), "corrupt bytes");
    } else {
      nn::save_png(dir.file(name), full({1, 2, 2}, i / 255.0));
    }
    csv += name + "," + std::to_string(i % 2) + "\n";
  }
  write_text(dir.file("labels.csv"), csv);
  nn::CsvImageOptions options;
  options.label_columns = {"y"};
  options.on_bad_file = nn::OnBadFile::skip;
  for (int workers : {0, 2}) {
    nn::DataLoader loader(std::make_shared<nn::CsvImageDataset>(dir.file("labels.csv"), options),
                          {.batch_size = 2, .num_workers = workers});
    std::vector<std::vector<int64_t>> indices;
    while (auto batch = loader.next()) {
      indices.push_back(batch->indices);
      CHECK(batch->labels.shape() == Shape{static_cast<int64_t>(batch->indices.size()), 1});
    }
    CHECK(indices == std::vector<std::vector<int64_t>>{{0, 1}, {2}, {4, 5}});
    REQUIRE(loader.skipped().size() == 1);
    CHECK(loader.skipped()[0].file.find("img3.png") != std::string::npos);
    CHECK(loader.skipped()[0].reason.find("cannot decode") != std::string::npos);
    // A second epoch does not list the same file twice.
    run_epoch(loader);
    CHECK(loader.skipped().size() == 1);
  }
  options.on_bad_file = nn::OnBadFile::stop;
  for (int workers : {0, 2}) {
    nn::DataLoader loader(std::make_shared<nn::CsvImageDataset>(dir.file("labels.csv"), options),
                          {.batch_size = 2, .num_workers = workers});
    CHECK(loader.next());
    CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains("img3.png"), Error);
  }
}

TEST_CASE("DataLoader: images of different shapes in one batch are an error that suggests a resize") {
  ScratchDir dir("loader");
  std::filesystem::create_directories(dir.file("a"));
  nn::save_png(dir.file("a/x.png"), zeros({1, 2, 2}));
  nn::save_png(dir.file("a/y.png"), zeros({1, 3, 2}));
  auto ds = std::make_shared<nn::ImageFolderDataset>(dir.path().string());
  nn::DataLoader loader(ds, {.batch_size = 2});
  CHECK_THROWS_WITH_AS(loader.next(), doctest::Contains("add a resize transform"), Error);
  nn::DataLoader resized(ds, {.batch_size = 2}, nn::Compose({nn::transforms::resize(4, 4)}));
  auto batch = resized.next();
  REQUIRE(batch);
  CHECK(batch->images.shape() == Shape{2, 1, 4, 4});
  CHECK(batch->labels.dtype() == DType::i64);
}

TEST_CASE("DataLoader: chest X-rays through the study's pipeline (grey, aspect resize with padding, RGB)") {
  const std::string cxr = cxr_dir();
  if (cxr.empty()) {
    MESSAGE("skipped: the chest X-ray data (../shared/data/cxr or $LOUPE_DATA_DIR/cxr) is not there");
    return;
  }
  nn::CsvImageOptions options;
  options.image_dir = cxr + "/images";
  options.label_columns = {"covid19", "pneumonia", "no_finding"};
  options.filters = {{"split", "test"}};
  auto test_split = std::make_shared<nn::CsvImageDataset>(cxr + "/labels.csv", options);
  REQUIRE(test_split->size() == 221);
  nn::Compose pipeline({nn::transforms::grey(), nn::transforms::resize_pad(64), nn::transforms::random_hflip(),
                        nn::transforms::normalize({0.5}, {0.25}), nn::transforms::rgb()});
  std::vector<double> first_values;
  for (int workers : {0, 2}) {
    nn::DataLoader loader(test_split, {.batch_size = 8, .shuffle = true, .seed = 7, .num_workers = workers}, pipeline);
    auto batch = loader.next();
    REQUIRE(batch);
    CHECK(batch->images.shape() == Shape{8, 3, 64, 64});
    CHECK(batch->labels.shape() == Shape{8, 3});
    // Every example is exactly one of: COVID-19 (1, 1, 0), other pneumonia (0, 1, 0), no finding (0, 0, 1).
    const std::vector<double> l = values(batch->labels);
    for (size_t i = 0; i < 8; ++i) {
      CHECK(l[3 * i + 2] + l[3 * i + 1] == 1.0);
      CHECK(l[3 * i] <= l[3 * i + 1]);
    }
    auto second = loader.next();
    REQUIRE(second);
    if (first_values.empty()) {
      first_values = values(second->images);
    } else {
      CHECK(values(second->images) == first_values);
    }
  }
}

}  // namespace loupe::test
