// The Uni-X experiment's offline data: vocabulary, images, text stream, sequences, batches, splits.
// Layouts and id order: unix/data.hpp. Tests: tests/unix/test_data.cpp
#include "unix/data.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <set>

#include "nn/data/csv.hpp"
#include "nn/data/gzip.hpp"
#include "nn/data/idx.hpp"
#include "tensor/ops.hpp"

namespace loupe::unix {

namespace fs = std::filesystem;

// --- vocabulary ----------------------------------------------------------------------------------

Vocabulary::Vocabulary(std::string chars, int64_t image_levels) : chars_(std::move(chars)), image_levels_(image_levels) {
  LOUPE_CHECK(image_levels_ > 0, "unix vocabulary: the image codebook needs at least one level, got ", image_levels_);
  char_to_id_.fill(-1);
  for (size_t i = 0; i < chars_.size(); ++i) {
    const auto byte = static_cast<unsigned char>(chars_[i]);
    LOUPE_CHECK(char_to_id_[byte] < 0, "unix vocabulary: the character ", static_cast<int>(byte), " occurs twice");
    char_to_id_[byte] = static_cast<int32_t>(num_special + static_cast<int64_t>(i));
  }
}

Vocabulary Vocabulary::build(const std::vector<std::string>& texts, int64_t image_levels) {
  std::array<bool, 256> seen{};
  for (const std::string& text : texts) {
    for (char c : text) seen[static_cast<unsigned char>(c)] = true;
  }
  std::string chars;
  for (int byte = 0; byte < 256; ++byte) {
    if (seen[static_cast<size_t>(byte)]) chars.push_back(static_cast<char>(byte));
  }
  return Vocabulary(std::move(chars), image_levels);
}

bool Vocabulary::has_char(char c) const { return char_to_id_[static_cast<unsigned char>(c)] >= 0; }

int64_t Vocabulary::char_id(char c) const {
  const int32_t id = char_to_id_[static_cast<unsigned char>(c)];
  LOUPE_CHECK(id >= 0, "unix vocabulary: the character ", static_cast<int>(static_cast<unsigned char>(c)), " ('",
              std::string(1, c), "') is not in the vocabulary of ", num_chars(), " characters");
  return id;
}

int64_t Vocabulary::image_token(int64_t level) const {
  LOUPE_CHECK(level >= 0 && level < image_levels_, "unix vocabulary: image level ", level, " outside [0, ",
              image_levels_, ")");
  return image_base() + level;
}

int64_t Vocabulary::image_level(int64_t id) const {
  LOUPE_CHECK(is_image_level_token(id), "unix vocabulary: id ", id, " is not an image code (those are [",
              image_base(), ", ", size(), "))");
  return id - image_base();
}

std::vector<int64_t> Vocabulary::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  ids.reserve(text.size());
  for (char c : text) ids.push_back(char_id(c));
  return ids;
}

std::string Vocabulary::token_name(int64_t id) const {
  static const char* const specials[num_special] = {"<pad>", "<bos>", "<eos>", "<img>", "</img>"};
  if (is_special(id)) return specials[id];
  if (is_char_token(id)) return std::string(1, chars_[static_cast<size_t>(id - num_special)]);
  if (is_image_level_token(id)) return "[" + std::to_string(id - image_base()) + "]";
  throw Error(detail::make_message("unix vocabulary: id ", id, " outside [0, ", size(), ")"));
}

std::string Vocabulary::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) out += token_name(id);
  return out;
}

Tensor Vocabulary::vision_mask(const Tensor& tokens) const {
  LOUPE_CHECK(tokens.dtype() == DType::i64, "unix vision_mask: tokens must be int64, got ", dtype_name(tokens.dtype()));
  const Tensor codes = ops::ge(tokens, ops::scalar_like(static_cast<double>(image_base()), tokens));
  const Tensor start = ops::eq(tokens, ops::scalar_like(static_cast<double>(image_start), tokens));
  return ops::logical_or(codes, start);
}

// --- images ----------------------------------------------------------------------------------------

const uint8_t* ImageSet::image(int64_t i) const {
  LOUPE_CHECK(i >= 0 && i < size(), "unix ", name, ": image ", i, " outside [0, ", size(), ")");
  LOUPE_CHECK(static_cast<int64_t>(pixels.size()) == size() * pixels_per_image(), "unix ", name, ": ", pixels.size(),
              " pixels for ", size(), " images of ", height, "x", width);
  return pixels.data() + i * pixels_per_image();
}

ImageSet ImageSet::subset(const std::vector<int64_t>& indices) const {
  ImageSet out;
  out.name = name;
  out.height = height;
  out.width = width;
  out.levels = levels;
  out.captions = captions;
  out.pixels.reserve(indices.size() * static_cast<size_t>(pixels_per_image()));
  for (int64_t i : indices) {
    const uint8_t* p = image(i);
    out.pixels.insert(out.pixels.end(), p, p + pixels_per_image());
    out.labels.push_back(labels[static_cast<size_t>(i)]);
    out.source_index.push_back(source_index.size() == labels.size() ? source_index[static_cast<size_t>(i)] : i);
  }
  return out;
}

namespace {

std::string with_article(const std::string& noun) {
  const bool vowel = !noun.empty() && std::string("aeiou").find(noun[0]) != std::string::npos;
  return (vowel ? "an " : "a ") + noun;
}

}  // namespace

std::vector<std::string> digit_captions() {
  static const char* const words[10] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};
  std::vector<std::string> out;
  for (const char* word : words) out.push_back("a drawing of " + with_article(word) + ".");
  return out;
}

std::vector<std::string> fashion_captions() {
  // Fashion-MNIST's classes 0..9 (T-shirt/top, Trouser, Pullover, Dress, Coat, Sandal, Shirt,
  // Sneaker, Bag, Ankle boot), worded as plain English.
  static const char* const things[10] = {"a t-shirt or top", "a pair of trousers", "a pullover", "a dress", "a coat",
                                         "a sandal",         "a shirt",            "a sneaker",  "a bag",   "an ankle boot"};
  std::vector<std::string> out;
  for (const char* thing : things) out.push_back(std::string("a picture of ") + thing + ".");
  return out;
}

ImageSet parse_digits_csv(const std::string& text, const std::string& source) {
  const auto rows = nn::parse_csv_rows(text, source);
  ImageSet set;
  set.name = "digits";
  set.height = 8;
  set.width = 8;
  set.levels = 17;
  set.captions = digit_captions();
  for (size_t r = 0; r < rows.size(); ++r) {
    const auto& row = rows[r];
    if (row.size() == 1 && row[0].empty()) continue;  // a trailing blank line
    LOUPE_CHECK(row.size() == 65, "unix digits: '", source, "' row ", r + 1, " has ", row.size(),
                " fields, expected 64 pixels and a label");
    for (size_t c = 0; c < 65; ++c) {
      char* end = nullptr;
      const long value = std::strtol(row[c].c_str(), &end, 10);
      LOUPE_CHECK(!row[c].empty() && end != nullptr && *end == '\0', "unix digits: '", source, "' row ", r + 1,
                  " field ", c + 1, " is not an integer: '", row[c], "'");
      const long high = c < 64 ? 16 : 9;
      LOUPE_CHECK(value >= 0 && value <= high, "unix digits: '", source, "' row ", r + 1, " field ", c + 1, " = ",
                  value, " outside [0, ", high, "]");
      if (c < 64) {
        set.pixels.push_back(static_cast<uint8_t>(value));
      } else {
        set.source_index.push_back(set.size());
        set.labels.push_back(value);
      }
    }
  }
  LOUPE_CHECK(set.size() > 0, "unix digits: '", source, "' holds no images");
  return set;
}

ImageSet load_digits(const std::string& path) {
  const std::vector<uint8_t> bytes = nn::read_gzip_file(path);
  return parse_digits_csv(std::string(bytes.begin(), bytes.end()), path);
}

std::string find_digits_csv(const std::string& source_root) {
  std::vector<fs::path> candidates;
  if (const char* env = std::getenv("LOUPE_DIGITS_CSV"); env != nullptr && *env != '\0') candidates.emplace_back(env);
  const fs::path cached = fs::path("third_party") / "sklearn-data" / "digits.csv.gz";
  candidates.push_back(cached);
  if (!source_root.empty()) candidates.push_back(fs::path(source_root) / cached);
  candidates.emplace_back("/usr/lib/python3/dist-packages/sklearn/datasets/data/digits.csv.gz");
  std::error_code ec;
  for (const fs::path& path : candidates) {
    if (fs::is_regular_file(path, ec)) return path.string();
  }
  return std::string();
}

ImageSet quantise_fashion(const Tensor& images, const Tensor& labels) {
  LOUPE_CHECK(images.dim() == 3 && images.size(1) == 28 && images.size(2) == 28, "unix fashion-mnist: images must be (N, 28, 28), got ",
              shape_str(images.shape()));
  LOUPE_CHECK(labels.dim() == 1 && labels.size(0) == images.size(0), "unix fashion-mnist: labels ",
              shape_str(labels.shape()), " do not match images ", shape_str(images.shape()));
  const Tensor dense = ops::contiguous(ops::to_dtype(ops::to_device(images, Device::cpu()), DType::f32));
  const float* p = dense.data<float>();
  ImageSet set;
  set.name = "fashion-mnist";
  set.height = 14;
  set.width = 14;
  set.levels = 16;
  set.captions = fashion_captions();
  set.labels = to_vector<int64_t>(labels);
  for (int64_t i = 0; i < static_cast<int64_t>(set.labels.size()); ++i) set.source_index.push_back(i);
  for (int64_t label : set.labels) {
    LOUPE_CHECK(label >= 0 && label < 10, "unix fashion-mnist: label ", label, " outside [0, 10)");
  }
  const int64_t n = images.size(0);
  set.pixels.resize(static_cast<size_t>(n * 196));
  for (int64_t i = 0; i < n; ++i) {
    const float* img = p + i * 784;
    for (int64_t y = 0; y < 14; ++y) {
      for (int64_t x = 0; x < 14; ++x) {
        // The pixels are integers 0..255, so the 2x2 sum is exact; floor(mean / 16) = sum / 64.
        long sum = 0;
        for (int64_t dy = 0; dy < 2; ++dy) {
          for (int64_t dx = 0; dx < 2; ++dx) {
            const float v = img[(2 * y + dy) * 28 + 2 * x + dx];
            LOUPE_CHECK(v >= 0.0f && v <= 255.0f, "unix fashion-mnist: pixel value ", v, " outside [0, 255]");
            sum += std::lround(v);
          }
        }
        set.pixels[static_cast<size_t>(i * 196 + y * 14 + x)] = static_cast<uint8_t>(std::min<long>(sum / 64, 15));
      }
    }
  }
  return set;
}

ImageSet load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit) {
  LOUPE_CHECK(split == "train" || split == "test", "unix fashion-mnist: the splits are train and test, not '", split, "'");
  const std::string prefix = dir + "/" + (split == "train" ? "train" : "t10k");
  Tensor images = nn::load_idx(prefix + "-images-idx3-ubyte.gz", DType::f32);  // (N, 28, 28) in 0..255
  Tensor labels = nn::load_idx(prefix + "-labels-idx1-ubyte.gz", DType::i64);  // (N)
  if (limit > 0 && limit < images.size(0)) {
    images = ops::narrow(images, 0, 0, limit);
    labels = ops::narrow(labels, 0, 0, limit);
  }
  return quantise_fashion(images, labels);
}

// --- text ------------------------------------------------------------------------------------------

std::string normalise_text(const std::string& raw) {
  // First each line on its own: spaces collapsed and trimmed.
  std::vector<std::string> lines;
  std::string line;
  bool pending_space = false;
  auto end_line = [&] {
    lines.push_back(line);
    line.clear();
    pending_space = false;
  };
  for (char c : raw) {
    if (c == '\n') {
      end_line();
    } else if (c == ' ' || c == '\t' || c == '\f' || c == '\r' || c == '\v') {
      pending_space = !line.empty();
    } else {
      if (pending_space) line.push_back(' ');
      pending_space = false;
      line.push_back(c);
    }
  }
  if (!line.empty()) end_line();
  // Then blank lines: at most one between paragraphs, none at the start or end.
  std::string out;
  bool blank_pending = false;
  for (const std::string& l : lines) {
    if (l.empty()) {
      blank_pending = !out.empty();
      continue;
    }
    if (!out.empty()) out += blank_pending ? "\n\n" : "\n";
    blank_pending = false;
    out += l;
  }
  return out;
}

std::string load_text_stream(const std::string& dir) {
  std::error_code ec;
  LOUPE_CHECK(fs::is_directory(dir, ec), "unix text: '", dir, "' is not a folder");
  std::vector<std::string> names;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (entry.is_symlink(ec) || !entry.is_regular_file(ec)) continue;
    names.push_back(entry.path().filename().string());
  }
  std::sort(names.begin(), names.end());
  std::string stream;
  for (const std::string& name : names) {
    const std::vector<uint8_t> bytes = nn::read_file_bytes(dir + "/" + name);
    const std::string text = normalise_text(std::string(bytes.begin(), bytes.end()));
    if (text.empty()) continue;
    if (!stream.empty()) stream += "\n\n";
    stream += text;
  }
  LOUPE_CHECK(!stream.empty(), "unix text: '", dir, "' holds no text files");
  return stream;
}

// --- sequences -------------------------------------------------------------------------------------

const char* modality_name(Modality m) {
  switch (m) {
    case Modality::none: return "none";
    case Modality::image: return "image";
    case Modality::caption: return "caption";
    case Modality::text: return "text";
  }
  return "?";
}

const char* layout_name(Layout layout) {
  switch (layout) {
    case Layout::text_to_image: return "text_to_image";
    case Layout::image_to_text: return "image_to_text";
    case Layout::text_only: return "text_only";
  }
  return "?";
}

namespace {

struct SequenceBuilder {
  Sequence seq;
  void push(int64_t token, Modality modality, bool response) {
    seq.tokens.push_back(token);
    seq.modality.push_back(static_cast<int64_t>(modality));
    seq.response.push_back(response ? 1 : 0);
  }
  void push_image(const Vocabulary& vocab, const ImageSet& images, int64_t index, bool response) {
    LOUPE_CHECK(images.levels == vocab.image_levels(), "unix sequences: ", images.name, " has ", images.levels,
                " grey levels but the vocabulary's codebook has ", vocab.image_levels());
    const uint8_t* p = images.image(index);
    for (int64_t i = 0; i < images.pixels_per_image(); ++i) push(vocab.image_token(p[i]), Modality::image, response);
  }
  void push_text(const Vocabulary& vocab, const std::string& text, Modality modality, bool response) {
    for (char c : text) push(vocab.char_id(c), modality, response);
  }
};

const std::string& caption_of(const ImageSet& images, int64_t index) {
  const int64_t label = images.labels.at(static_cast<size_t>(index));
  LOUPE_CHECK(label >= 0 && label < static_cast<int64_t>(images.captions.size()), "unix sequences: ", images.name,
              " label ", label, " has no caption");
  return images.captions[static_cast<size_t>(label)];
}

}  // namespace

Sequence text_to_image(const Vocabulary& vocab, const ImageSet& images, int64_t index) {
  SequenceBuilder b;
  b.seq.layout = Layout::text_to_image;
  b.seq.source = index;
  b.push(Vocabulary::bos, Modality::none, false);
  b.push_text(vocab, caption_of(images, index), Modality::caption, false);
  b.push(Vocabulary::image_start, Modality::image, false);
  b.push_image(vocab, images, index, true);
  b.push(Vocabulary::image_end, Modality::image, true);
  b.push(Vocabulary::eos, Modality::image, true);
  return std::move(b.seq);
}

Sequence image_to_text(const Vocabulary& vocab, const ImageSet& images, int64_t index) {
  SequenceBuilder b;
  b.seq.layout = Layout::image_to_text;
  b.seq.source = index;
  b.push(Vocabulary::bos, Modality::none, false);
  b.push(Vocabulary::image_start, Modality::image, false);
  b.push_image(vocab, images, index, false);
  b.push(Vocabulary::image_end, Modality::image, false);
  b.push_text(vocab, caption_of(images, index), Modality::caption, true);
  b.push(Vocabulary::eos, Modality::caption, true);
  return std::move(b.seq);
}

Sequence text_window(const Vocabulary& vocab, const std::string& text, int64_t offset, int64_t chars) {
  LOUPE_CHECK(offset >= 0 && chars > 0 && offset + chars <= static_cast<int64_t>(text.size()), "unix text_window: [",
              offset, ", ", offset + chars, ") outside the text of ", text.size(), " characters");
  SequenceBuilder b;
  b.seq.layout = Layout::text_only;
  b.seq.source = offset;
  b.push(Vocabulary::bos, Modality::none, false);
  b.push_text(vocab, text.substr(static_cast<size_t>(offset), static_cast<size_t>(chars)), Modality::text, true);
  return std::move(b.seq);
}

// --- batches ---------------------------------------------------------------------------------------

Batch make_batch(const std::vector<Sequence>& sequences, const std::vector<int64_t>& indices, int64_t seq_len,
                 bool mask_instructions) {
  LOUPE_CHECK(!indices.empty() && seq_len > 0, "unix make_batch: needs at least one sequence and seq_len > 0, got ",
              indices.size(), " and ", seq_len);
  const auto B = static_cast<int64_t>(indices.size());
  const int64_t T = seq_len;
  std::vector<int64_t> tokens(static_cast<size_t>(B * T), Vocabulary::pad);
  std::vector<int64_t> targets(static_cast<size_t>(B * T), Vocabulary::pad);
  std::vector<double> mask(static_cast<size_t>(B * T), 0.0);
  std::vector<int64_t> modality(static_cast<size_t>(B * T), static_cast<int64_t>(Modality::none));
  for (int64_t b = 0; b < B; ++b) {
    const int64_t index = indices[static_cast<size_t>(b)];
    LOUPE_CHECK(index >= 0 && index < static_cast<int64_t>(sequences.size()), "unix make_batch: sequence ", index,
                " outside [0, ", sequences.size(), ")");
    const Sequence& s = sequences[static_cast<size_t>(index)];
    const int64_t n = s.length();
    LOUPE_CHECK(n >= 2 && n - 1 <= T, "unix make_batch: a ", layout_name(s.layout), " sequence of ", n,
                " tokens needs seq_len >= ", n - 1, ", got ", T);
    for (int64_t t = 0; t + 1 < n; ++t) {
      const auto at = static_cast<size_t>(b * T + t);
      const auto next = static_cast<size_t>(t + 1);
      tokens[at] = s.tokens[static_cast<size_t>(t)];
      targets[at] = s.tokens[next];
      modality[at] = s.modality[next];
      const bool counts = mask_instructions ? s.response[next] != 0 : s.tokens[next] != Vocabulary::pad;
      mask[at] = counts ? 1.0 : 0.0;
    }
  }
  Batch batch;
  batch.tokens = from_values(tokens, {B, T});
  batch.targets = from_values(targets, {B, T});
  batch.loss_mask = from_values(mask, {B, T}, DType::f32);
  batch.modality = from_values(modality, {B, T});
  return batch;
}

Tensor modality_mask(const Batch& batch, Modality m) {
  const Tensor is_m = ops::eq(batch.modality, ops::scalar_like(static_cast<double>(m), batch.modality));
  return ops::mul(batch.loss_mask, ops::to_dtype(is_m, batch.loss_mask.dtype()));
}

Batch to_device(const Batch& batch, Device device) {
  Batch out;
  out.tokens = ops::to_device(batch.tokens, device);
  out.targets = ops::to_device(batch.targets, device);
  out.loss_mask = ops::to_device(batch.loss_mask, device);
  out.modality = ops::to_device(batch.modality, device);
  return out;
}

std::vector<std::vector<int64_t>> batch_indices(int64_t count, int64_t batch_size, bool drop_last) {
  LOUPE_CHECK(count >= 0 && batch_size > 0, "unix batch_indices: count ", count, ", batch_size ", batch_size);
  std::vector<std::vector<int64_t>> out;
  for (int64_t start = 0; start < count; start += batch_size) {
    const int64_t end = std::min(count, start + batch_size);
    if (drop_last && end - start < batch_size) break;
    std::vector<int64_t> chunk;
    for (int64_t i = start; i < end; ++i) chunk.push_back(i);
    out.push_back(std::move(chunk));
  }
  return out;
}

// --- the experiment's data -------------------------------------------------------------------------

std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed) {
  LOUPE_CHECK(n >= 0, "unix seeded_permutation: n = ", n);
  uint64_t state = seed;
  auto next = [&state] {  // SplitMix64
    uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  };
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  for (int64_t i = n - 1; i > 0; --i) {
    // Rejection sampling keeps j uniform in [0, i].
    const auto range = static_cast<uint64_t>(i) + 1;
    const uint64_t limit = UINT64_MAX - UINT64_MAX % range;
    uint64_t r = next();
    while (r >= limit) r = next();
    std::swap(order[static_cast<size_t>(i)], order[static_cast<size_t>(r % range)]);
  }
  return order;
}

int64_t UnixData::seq_len() const {
  int64_t longest_caption = 0;
  for (const ImageSet* set : {&train_images, &heldout_images}) {
    for (const std::string& c : set->captions) longest_caption = std::max<int64_t>(longest_caption, static_cast<int64_t>(c.size()));
  }
  // BOS caption IMAGE_START image IMAGE_END EOS, minus one (the last token is only a target).
  return 1 + longest_caption + 1 + train_images.pixels_per_image() + 1 + 1 - 1;
}

std::vector<Sequence> UnixData::multimodal_sequences(Split split) const {
  const ImageSet& images = split == Split::train ? train_images : heldout_images;
  std::vector<Sequence> pairs;
  pairs.reserve(static_cast<size_t>(2 * images.size()));
  for (int64_t i = 0; i < images.size(); ++i) {
    pairs.push_back(text_to_image(vocab, images, i));
    pairs.push_back(image_to_text(vocab, images, i));
  }
  // Distinct seeds per split and kind, so the orders are independent.
  const std::vector<int64_t> order = seeded_permutation(static_cast<int64_t>(pairs.size()), seed * 4 + (split == Split::train ? 0 : 1));
  std::vector<Sequence> out;
  out.reserve(pairs.size());
  for (int64_t i : order) out.push_back(std::move(pairs[static_cast<size_t>(i)]));
  return out;
}

std::vector<Sequence> UnixData::text_sequences(Split split, int64_t chars) const {
  LOUPE_CHECK(chars > 0, "unix text_sequences: chars must be positive, got ", chars);
  const std::string& text = split == Split::train ? train_text : heldout_text;
  const int64_t count = static_cast<int64_t>(text.size()) / chars;
  const std::vector<int64_t> order = seeded_permutation(count, seed * 4 + (split == Split::train ? 2 : 3));
  std::vector<Sequence> out;
  out.reserve(static_cast<size_t>(count));
  for (int64_t i : order) out.push_back(text_window(vocab, text, i * chars, chars));
  return out;
}

UnixData make_unix_data(const ImageSet& train_images, const ImageSet& heldout_images, const std::string& text,
                        double heldout_fraction, uint64_t seed) {
  LOUPE_CHECK(heldout_fraction > 0.0 && heldout_fraction < 1.0, "unix data: heldout_fraction must be in (0, 1), got ",
              heldout_fraction);
  LOUPE_CHECK(train_images.levels == heldout_images.levels && train_images.height == heldout_images.height &&
                  train_images.width == heldout_images.width,
              "unix data: the train and held-out images differ in geometry or levels");
  LOUPE_CHECK(train_images.size() > 0 && heldout_images.size() > 0, "unix data: both image splits must be non-empty");
  UnixData data;
  data.seed = seed;
  data.train_images = train_images;
  data.heldout_images = heldout_images;
  const auto cut = static_cast<size_t>(static_cast<double>(text.size()) * (1.0 - heldout_fraction));
  data.train_text = text.substr(0, cut);
  data.heldout_text = text.substr(cut);
  std::vector<std::string> texts = {text};
  for (const std::string& c : train_images.captions) texts.push_back(c);
  for (const std::string& c : heldout_images.captions) texts.push_back(c);
  data.vocab = Vocabulary::build(texts, train_images.levels);
  return data;
}

UnixData load_unix_data(const DataConfig& config) {
  const std::string text = load_text_stream(config.text_dir);
  if (config.source == "digits") {
    const std::string path = config.digits_path.empty() ? find_digits_csv() : config.digits_path;
    LOUPE_CHECK(!path.empty(), "unix data: sklearn's digits.csv.gz was not found (./run extracts it into "
                               "third_party/sklearn-data/; or set LOUPE_DIGITS_CSV)");
    const ImageSet all = load_digits(path);
    // Held out by image: a seeded permutation, the first share of it held out.
    const std::vector<int64_t> order = seeded_permutation(all.size(), config.seed);
    const auto heldout = std::max<int64_t>(1, static_cast<int64_t>(static_cast<double>(all.size()) * config.heldout_fraction));
    const std::vector<int64_t> held(order.begin(), order.begin() + heldout);
    const std::vector<int64_t> train(order.begin() + heldout, order.end());
    return make_unix_data(all.subset(train), all.subset(held), text, config.heldout_fraction, config.seed);
  }
  if (config.source == "fashion-mnist") {
    return make_unix_data(load_fashion_mnist(config.fashion_dir, "train", config.fashion_limit),
                          load_fashion_mnist(config.fashion_dir, "test"), text, config.heldout_fraction, config.seed);
  }
  throw Error("unix data: the image source is 'digits' or 'fashion-mnist', not '" + config.source + "'");
}

}  // namespace loupe::unix
