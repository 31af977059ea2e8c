// Tests of unix/data.hpp: the vocabulary (id layout, round trip, routing), text normalisation,
// the sequence layouts with their masks and modalities on hand-made images, batches, seeded
// permutations, the Fashion-MNIST quantisation, and the real data (sklearn's digits, the
// licence texts, Fashion-MNIST), which skip with a message where their files are absent.
#include <doctest/doctest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>

#include "tensor/ops.hpp"
#include "tests/nn/data/data_paths.hpp"
#include "unix/data.hpp"

using namespace loupe;
using namespace loupe::unix;
namespace fs = std::filesystem;

namespace {

// Two 2x2 images with 17 levels; labels 7 and 0.
ImageSet tiny_images() {
  ImageSet set;
  set.name = "tiny";
  set.height = 2;
  set.width = 2;
  set.levels = 17;
  set.captions = digit_captions();
  set.pixels = {0, 16, 3, 4, 5, 6, 7, 8};
  set.labels = {7, 0};
  return set;
}

Vocabulary tiny_vocab() { return Vocabulary::build({"hello world", "a drawing of a seven.", "a drawing of a zero."}, 17); }

std::string digits_path() { return find_digits_csv(LOUPE_TEST_SOURCE_ROOT); }

bool licences_present() { return fs::is_directory("/usr/share/common-licenses"); }

}  // namespace

TEST_CASE("unix vocabulary: id layout, round trip and errors") {
  const Vocabulary vocab = Vocabulary::build({"cab", "ba!"}, 17);
  CHECK(vocab.chars() == "!abc");  // distinct characters in byte order
  CHECK(vocab.num_chars() == 4);
  CHECK(vocab.char_id('!') == Vocabulary::num_special);
  CHECK(vocab.char_id('c') == Vocabulary::num_special + 3);
  CHECK(vocab.image_base() == 9);
  CHECK(vocab.size() == 9 + 17);
  CHECK(vocab.image_token(0) == 9);
  CHECK(vocab.image_token(16) == 25);
  for (int64_t level = 0; level < 17; ++level) CHECK(vocab.image_level(vocab.image_token(level)) == level);
  CHECK_THROWS_AS(vocab.image_token(17), Error);
  CHECK_THROWS_AS(vocab.image_level(8), Error);
  CHECK_THROWS_AS(vocab.char_id('z'), Error);
  CHECK_THROWS_AS(Vocabulary("aa", 3), Error);
  CHECK_THROWS_AS(Vocabulary("ab", 0), Error);

  const std::string text = "abba!c";
  const std::vector<int64_t> ids = vocab.encode(text);
  CHECK(ids.size() == text.size());
  CHECK(vocab.decode(ids) == text);
  CHECK(vocab.decode({Vocabulary::bos, vocab.char_id('a'), Vocabulary::image_start, vocab.image_token(3),
                      Vocabulary::image_end, Vocabulary::eos, Vocabulary::pad}) == "<bos>a<img>[3]</img><eos><pad>");
  CHECK_THROWS_AS(vocab.token_name(vocab.size()), Error);
  CHECK_THROWS_AS(vocab.token_name(-1), Error);
}

TEST_CASE("unix vocabulary: routing of ids to the vision copy") {
  const Vocabulary vocab = Vocabulary::build({"ab"}, 4);
  std::vector<int64_t> all;
  for (int64_t id = 0; id < vocab.size(); ++id) all.push_back(id);
  for (int64_t id : all) {
    // Only the codebook and IMAGE_START route to the vision copy; IMAGE_END, BOS, EOS, PAD and
    // characters stay with text (REFERENCE.md section 8).
    const bool expected = id == Vocabulary::image_start || id >= vocab.image_base();
    CHECK_MESSAGE(vocab.is_image_token(id) == expected, "id ", id);
  }
  CHECK_FALSE(vocab.is_image_token(Vocabulary::image_end));
  CHECK_FALSE(vocab.is_image_token(vocab.size()));

  const Tensor tokens = from_values(all, {1, static_cast<int64_t>(all.size())});
  const Tensor mask = vocab.vision_mask(tokens);
  CHECK(mask.shape() == tokens.shape());
  const std::vector<int64_t> got = to_vector<int64_t>(mask);
  for (size_t i = 0; i < all.size(); ++i) CHECK(got[i] == (vocab.is_image_token(all[i]) ? 1 : 0));
  CHECK_THROWS_AS(vocab.vision_mask(from_values(std::vector<double>{1.0}, {1})), Error);
}

TEST_CASE("unix text: normalisation of the licence layout") {
  CHECK(normalise_text("  Hello,\tworld  \r\n") == "Hello, world");
  CHECK(normalise_text("a\n\n\n\nb\n \nc") == "a\n\nb\n\nc");
  CHECK(normalise_text("\f\n\nx  y\n") == "x y");
  CHECK(normalise_text("") == "");
}

TEST_CASE("unix text: the stream reads regular files in name order, skipping symbolic links") {
  const fs::path dir = fs::temp_directory_path() / ("loupe_unix_text_stream_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::ofstream(dir / "B") << "second\tfile\n";
  std::ofstream(dir / "A") << "first   file\n\n\n";
  std::error_code ec;
  fs::create_symlink(dir / "A", dir / "C", ec);  // a repeated licence (GPL -> GPL-3)
  CHECK(load_text_stream(dir.string()) == "first file\n\nsecond file");
  fs::remove_all(dir);
  CHECK_THROWS_AS(load_text_stream(dir.string()), Error);
}

TEST_CASE("unix sequences: layouts, instruction masks and modalities on two tiny images") {
  const ImageSet images = tiny_images();
  const Vocabulary vocab = tiny_vocab();
  const std::string caption = "a drawing of a seven.";
  const auto c = static_cast<int64_t>(caption.size());
  auto image_ids = [&](int64_t i) {
    std::vector<int64_t> ids;
    for (int64_t p = 0; p < 4; ++p) ids.push_back(vocab.image_token(images.image(i)[p]));
    return ids;
  };

  SUBCASE("text to image") {
    const Sequence s = text_to_image(vocab, images, 0);
    std::vector<int64_t> expected = {Vocabulary::bos};
    for (int64_t id : vocab.encode(caption)) expected.push_back(id);
    expected.push_back(Vocabulary::image_start);
    for (int64_t id : image_ids(0)) expected.push_back(id);
    expected.push_back(Vocabulary::image_end);
    expected.push_back(Vocabulary::eos);
    CHECK(s.tokens == expected);
    CHECK(s.layout == Layout::text_to_image);
    CHECK(s.length() == 1 + c + 1 + 4 + 2);
    // Instruction: BOS, caption, IMAGE_START; response: the image, IMAGE_END, EOS.
    for (int64_t t = 0; t < s.length(); ++t) CHECK_MESSAGE(s.response[t] == (t >= 2 + c ? 1 : 0), "position ", t);
    CHECK(s.modality[0] == static_cast<int64_t>(Modality::none));
    for (int64_t t = 1; t <= c; ++t) CHECK(s.modality[t] == static_cast<int64_t>(Modality::caption));
    for (int64_t t = c + 1; t < s.length(); ++t) CHECK(s.modality[t] == static_cast<int64_t>(Modality::image));
  }
  SUBCASE("image to text") {
    const Sequence s = image_to_text(vocab, images, 1);
    const std::string zero = "a drawing of a zero.";
    std::vector<int64_t> expected = {Vocabulary::bos, Vocabulary::image_start};
    for (int64_t id : image_ids(1)) expected.push_back(id);
    expected.push_back(Vocabulary::image_end);
    for (int64_t id : vocab.encode(zero)) expected.push_back(id);
    expected.push_back(Vocabulary::eos);
    CHECK(s.tokens == expected);
    // Instruction: BOS, IMAGE_START, image, IMAGE_END; response: the caption and EOS.
    for (int64_t t = 0; t < s.length(); ++t) CHECK_MESSAGE(s.response[t] == (t >= 7 ? 1 : 0), "position ", t);
    for (int64_t t = 1; t < 7; ++t) CHECK(s.modality[t] == static_cast<int64_t>(Modality::image));
    for (int64_t t = 7; t < s.length(); ++t) CHECK(s.modality[t] == static_cast<int64_t>(Modality::caption));
  }
  SUBCASE("text only") {
    const Sequence s = text_window(vocab, "hello world", 6, 5);
    CHECK(s.tokens.front() == Vocabulary::bos);
    CHECK(vocab.decode(std::vector<int64_t>(s.tokens.begin() + 1, s.tokens.end())) == "world");
    CHECK(s.source == 6);
    for (int64_t t = 1; t < s.length(); ++t) {
      CHECK(s.response[t] == 1);
      CHECK(s.modality[t] == static_cast<int64_t>(Modality::text));
    }
    CHECK_THROWS_AS(text_window(vocab, "hello", 2, 4), Error);
  }
  SUBCASE("a codebook of another size is refused") {
    ImageSet other = images;
    other.levels = 16;
    CHECK_THROWS_AS(text_to_image(vocab, other, 0), Error);
  }
}

TEST_CASE("unix batches: shifted targets, loss masks, modality and padding") {
  const ImageSet images = tiny_images();
  const Vocabulary vocab = tiny_vocab();
  const std::vector<Sequence> seqs = {text_to_image(vocab, images, 0), image_to_text(vocab, images, 1),
                                      text_window(vocab, "hello world", 0, 5)};
  const int64_t T = 30;
  const Batch batch = make_batch(seqs, {0, 1, 2}, T);
  CHECK(batch.tokens.shape() == Shape{3, T});
  CHECK(batch.tokens.dtype() == DType::i64);
  CHECK(batch.targets.dtype() == DType::i64);
  CHECK(batch.loss_mask.dtype() == DType::f32);
  const auto tokens = to_vector<int64_t>(batch.tokens);
  const auto targets = to_vector<int64_t>(batch.targets);
  const auto mask = to_vector<float>(batch.loss_mask);
  const auto modality = to_vector<int64_t>(batch.modality);
  for (int64_t b = 0; b < 3; ++b) {
    const Sequence& s = seqs[static_cast<size_t>(b)];
    for (int64_t t = 0; t < T; ++t) {
      const auto at = static_cast<size_t>(b * T + t);
      if (t + 1 < s.length()) {
        CHECK(tokens[at] == s.tokens[t]);
        CHECK(targets[at] == s.tokens[t + 1]);
        CHECK(mask[at] == static_cast<float>(s.response[t + 1]));
        CHECK(modality[at] == s.modality[t + 1]);
      } else {
        CHECK(tokens[at] == Vocabulary::pad);
        CHECK(targets[at] == Vocabulary::pad);
        CHECK(mask[at] == 0.0f);
        CHECK(modality[at] == static_cast<int64_t>(Modality::none));
      }
    }
  }
  // Counted targets: text-to-image predicts 4 pixels + IMAGE_END + EOS; image-to-text the caption
  // (20 characters) + EOS; the text window its 5 characters.
  CHECK(ops::sum(batch.loss_mask).item() == doctest::Approx(6 + 21 + 5));
  CHECK(ops::sum(modality_mask(batch, Modality::image)).item() == doctest::Approx(6));
  CHECK(ops::sum(modality_mask(batch, Modality::caption)).item() == doctest::Approx(21));
  CHECK(ops::sum(modality_mask(batch, Modality::text)).item() == doctest::Approx(5));

  // Without instruction masking every real target counts: all n - 1 of each sequence.
  const Batch all = make_batch(seqs, {0, 1, 2}, T, false);
  CHECK(ops::sum(all.loss_mask).item() ==
        doctest::Approx(static_cast<double>(seqs[0].length() + seqs[1].length() + seqs[2].length() - 3)));
  CHECK(ops::sum(modality_mask(all, Modality::caption)).item() == doctest::Approx(21 + 21));

  CHECK_THROWS_AS(make_batch(seqs, {0}, seqs[0].length() - 2), Error);  // needs n - 1 positions
  CHECK_NOTHROW(make_batch(seqs, {0}, seqs[0].length() - 1));
  CHECK_THROWS_AS(make_batch(seqs, {3}, T), Error);
  CHECK_THROWS_AS(make_batch(seqs, {}, T), Error);

  const Batch moved = to_device(batch, Device::cpu());
  CHECK(to_vector<int64_t>(moved.targets) == targets);
  CHECK(batch_indices(5, 2) == std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}, {4}});
  CHECK(batch_indices(5, 2, true) == std::vector<std::vector<int64_t>>{{0, 1}, {2, 3}});
  CHECK(batch_indices(0, 2).empty());
  CHECK_THROWS_AS(batch_indices(5, 0), Error);
}

TEST_CASE("unix seeded permutations are permutations, deterministic and seed-dependent") {
  const std::vector<int64_t> a = seeded_permutation(1000, 5);
  std::vector<int64_t> sorted = a;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
  CHECK(seeded_permutation(1000, 5) == a);
  CHECK(seeded_permutation(1000, 6) != a);
  CHECK(seeded_permutation(0, 1).empty());
  CHECK(seeded_permutation(1, 1) == std::vector<int64_t>{0});
  // Roughly uniform: each position's value averages (n - 1) / 2 over many seeds.
  double first = 0.0;
  for (uint64_t seed = 0; seed < 2000; ++seed) first += static_cast<double>(seeded_permutation(10, seed)[0]);
  CHECK(first / 2000.0 == doctest::Approx(4.5).epsilon(0.05));
}

TEST_CASE("unix digits CSV: parsing and its errors") {
  std::string row;
  for (int i = 0; i < 64; ++i) row += std::to_string(i % 17) + ",";
  const ImageSet set = parse_digits_csv(row + "3\n" + row + "9\n", "two.csv");
  CHECK(set.size() == 2);
  CHECK(set.height == 8);
  CHECK(set.levels == 17);
  CHECK(set.labels == std::vector<int64_t>{3, 9});
  CHECK(set.image(1)[16] == 16);
  CHECK(set.source_index == std::vector<int64_t>{0, 1});
  CHECK_THROWS_AS(parse_digits_csv(row + "10\n", "bad_label.csv"), Error);
  CHECK_THROWS_AS(parse_digits_csv("1,2,3\n", "short.csv"), Error);
  CHECK_THROWS_AS(parse_digits_csv(row.substr(0, row.size() - 2) + "x,1\n", "text.csv"), Error);
  std::string high = "17," + row.substr(row.find(',') + 1) + "1\n";
  CHECK_THROWS_AS(parse_digits_csv(high, "high.csv"), Error);
  CHECK_THROWS_AS(parse_digits_csv("", "empty.csv"), Error);
}

TEST_CASE("unix digits: the real file from python3-sklearn") {
  const std::string path = digits_path();
  if (path.empty()) {
    MESSAGE("skipped: sklearn's digits.csv.gz is absent (./run extracts python3-sklearn's copy into "
            "third_party/sklearn-data/; LOUPE_DIGITS_CSV names another)");
    return;
  }
  const ImageSet digits = load_digits(path);
  REQUIRE(digits.size() == 1797);
  // sklearn's load_digits: the first image is a zero whose first row is 0 0 5 13 9 1 0 0.
  CHECK(digits.labels[0] == 0);
  const std::vector<uint8_t> first_row(digits.image(0), digits.image(0) + 8);
  CHECK(first_row == std::vector<uint8_t>{0, 0, 5, 13, 9, 1, 0, 0});
  // Its class counts (np.bincount(load_digits().target)).
  std::vector<int64_t> counts(10, 0);
  for (int64_t label : digits.labels) ++counts[static_cast<size_t>(label)];
  CHECK(counts == std::vector<int64_t>{178, 182, 177, 183, 181, 182, 181, 179, 174, 180});
  CHECK(*std::max_element(digits.pixels.begin(), digits.pixels.end()) == 16);
}

TEST_CASE("unix data: digits split by image, text tail held out, 50/50 layouts, determinism") {
  const std::string path = digits_path();
  if (path.empty() || !licences_present()) {
    MESSAGE("skipped: needs sklearn's digits.csv.gz (./run extracts it) and /usr/share/common-licenses");
    return;
  }
  DataConfig config;
  config.digits_path = path;
  config.seed = 3;
  const UnixData data = load_unix_data(config);
  CHECK(data.heldout_images.size() == 359);  // floor(1797 * 0.2)
  CHECK(data.train_images.size() == 1797 - 359);
  std::set<int64_t> train(data.train_images.source_index.begin(), data.train_images.source_index.end());
  std::set<int64_t> held(data.heldout_images.source_index.begin(), data.heldout_images.source_index.end());
  CHECK(train.size() == 1438);
  CHECK(held.size() == 359);
  for (int64_t i : held) CHECK_MESSAGE(train.count(i) == 0, "image ", i, " is in both splits");

  // One vocabulary: the characters of the text and captions, then 17 levels.
  CHECK(data.vocab.image_levels() == 17);
  CHECK(data.vocab.size() == Vocabulary::num_special + data.vocab.num_chars() + 17);
  for (char ch : std::string("a drawing of an eight.")) CHECK(data.vocab.has_char(ch));

  // The text: a held-out tail of about 20 %.
  const std::string stream = load_text_stream(config.text_dir);
  CHECK(data.train_text + data.heldout_text == stream);
  CHECK(static_cast<double>(data.heldout_text.size()) == doctest::Approx(0.2 * static_cast<double>(stream.size())).epsilon(0.01));

  // Every image of a split appears once in each direction.
  const auto mm = data.multimodal_sequences(Split::heldout);
  CHECK(mm.size() == 2 * 359);
  std::set<std::pair<int64_t, int>> seen;
  for (const Sequence& s : mm) {
    CHECK(s.length() - 1 <= data.seq_len());
    seen.insert({s.source, static_cast<int>(s.layout)});
  }
  CHECK(seen.size() == 2 * 359);
  const int64_t T = data.seq_len();
  CHECK(T == 1 + 22 + 1 + 64 + 1);  // the longest caption is "a drawing of a three." (21) or "an eight." (22)
  const auto text = data.text_sequences(Split::train, T);
  CHECK(static_cast<int64_t>(text.size()) == static_cast<int64_t>(data.train_text.size()) / T);
  for (const Sequence& s : text) CHECK(s.length() == T + 1);
  const auto held_text = data.text_sequences(Split::heldout, T);
  REQUIRE_FALSE(held_text.empty());
  const Sequence& h = held_text.front();
  CHECK(data.vocab.decode(std::vector<int64_t>(h.tokens.begin() + 1, h.tokens.end())) ==
        data.heldout_text.substr(static_cast<size_t>(h.source), static_cast<size_t>(T)));

  // Determinism: the same seed gives the same split and orders; another seed another split.
  const UnixData again = load_unix_data(config);
  CHECK(again.heldout_images.source_index == data.heldout_images.source_index);
  const auto mm_again = again.multimodal_sequences(Split::heldout);
  bool same = mm_again.size() == mm.size();
  for (size_t i = 0; same && i < mm.size(); ++i) same = mm[i].tokens == mm_again[i].tokens;
  CHECK(same);
  config.seed = 4;
  CHECK(load_unix_data(config).heldout_images.source_index != data.heldout_images.source_index);

  // A batch of real sequences fits T exactly.
  const Batch batch = make_batch(text, {0, 1}, T);
  CHECK(ops::sum(batch.loss_mask).item() == doctest::Approx(2.0 * static_cast<double>(T)));
}

TEST_CASE("unix fashion-mnist: 2x2 means quantised to 16 levels") {
  std::vector<double> pixels(2 * 28 * 28, 0.0);
  // Image 0: block (0, 0) all 255 -> 15; block (0, 1) sums to 63 -> 0; block (1, 0) sums to 64 -> 1.
  for (int y = 0; y < 2; ++y) {
    for (int x = 0; x < 2; ++x) pixels[static_cast<size_t>(y * 28 + x)] = 255.0;
  }
  pixels[2] = 63.0;
  pixels[2 * 28] = 64.0;
  // Image 1: block (13, 13) with 128 each -> mean 128 -> level 8.
  for (int y = 26; y < 28; ++y) {
    for (int x = 26; x < 28; ++x) pixels[static_cast<size_t>(784 + y * 28 + x)] = 128.0;
  }
  const ImageSet set = quantise_fashion(from_values(pixels, {2, 28, 28}), from_values(std::vector<int64_t>{9, 1}, {2}));
  CHECK(set.height == 14);
  CHECK(set.levels == 16);
  CHECK(set.image(0)[0] == 15);
  CHECK(set.image(0)[1] == 0);
  CHECK(set.image(0)[14] == 1);
  CHECK(set.image(1)[195] == 8);
  CHECK(set.captions[9] == "a picture of an ankle boot.");
  CHECK_THROWS_AS(quantise_fashion(from_values(pixels, {2, 784}), from_values(std::vector<int64_t>{9, 1}, {2})), Error);
  CHECK_THROWS_AS(quantise_fashion(from_values(pixels, {2, 28, 28}), from_values(std::vector<int64_t>{10, 1}, {2})), Error);

  const std::string dir = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(dir + "/t10k-images-idx3-ubyte.gz")) {
    MESSAGE("skipped the real file: dataset-fashion-mnist is not installed");
    return;
  }
  const ImageSet test = load_fashion_mnist(dir, "test", 500);
  CHECK(test.size() == 500);
  CHECK(*std::max_element(test.pixels.begin(), test.pixels.end()) == 15);
  CHECK(test.labels[0] == 9);  // the first test image is an ankle boot
  const Vocabulary vocab = Vocabulary::build(fashion_captions(), 16);
  const Sequence s = text_to_image(vocab, test, 0);
  CHECK(s.length() == 1 + 27 + 1 + 196 + 2);

  if (!licences_present()) return;
  // The larger run's data: Fashion-MNIST's train split (limited here) and its test split held out.
  DataConfig config;
  config.source = "fashion-mnist";
  config.fashion_dir = dir;
  config.fashion_limit = 300;
  const UnixData data = load_unix_data(config);
  CHECK(data.train_images.size() == 300);
  CHECK(data.heldout_images.size() == 10000);
  CHECK(data.vocab.image_levels() == 16);
  CHECK(data.seq_len() == 1 + 32 + 1 + 196 + 1);  // the longest caption: "a picture of a pair of trousers."
  const auto mm = data.multimodal_sequences(Split::train);
  CHECK(mm.size() == 600);
  const Batch batch = make_batch(mm, {0, 1, 2, 3}, data.seq_len());
  CHECK(batch.tokens.shape() == Shape{4, data.seq_len()});
  config.source = "cifar";
  CHECK_THROWS_AS(load_unix_data(config), Error);
}
