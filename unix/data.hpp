// The offline data of the Uni-X experiment (REFERENCE.md section 8): quantised images with class
// captions (scikit-learn's 8x8 digits with 17 grey levels; Fashion-MNIST at 14x14 with 16), a
// character-level English text stream (the licence texts every Debian system ships), one
// vocabulary over characters, special tokens and the image codebook, the three sequence layouts
// (text-to-image, image-to-text, text-only) with their loss masks and per-position modality,
// seeded held-out splits and batches as int64 tensors (B, T).
//
// Vocabulary ids, in this order:
//   0 PAD, 1 BOS, 2 EOS, 3 IMAGE_START, 4 IMAGE_END,
//   5 .. 5+C-1             the C characters that occur, in byte order,
//   5+C .. 5+C+levels-1    the image codebook (grey level l -> 5+C+l).
// Routing (Uni-X): image codebook tokens and IMAGE_START go to the vision copy, every other id to
// the text copy (is_image_token).
//
// Sequences (n tokens; the model reads tokens[0, n-1) and predicts tokens[1, n)):
//   text-to-image: BOS caption IMAGE_START image(H*W) IMAGE_END EOS
//   image-to-text: BOS IMAGE_START image(H*W) IMAGE_END caption EOS
//   text-only:     BOS text(T chars)                       (exactly T + 1 tokens: fills a batch row)
// Instruction tokens (the conditioning part, not in the loss when mask_instructions is on):
//   text-to-image: BOS caption IMAGE_START   -> the response is image(H*W) IMAGE_END EOS
//   image-to-text: BOS IMAGE_START image IMAGE_END -> the response is caption EOS
//   text-only:     BOS                       -> every text character is a response token
// Tests: tests/unix/test_data.cpp
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

// --- vocabulary ----------------------------------------------------------------------------------

class Vocabulary {
 public:
  static constexpr int64_t pad = 0;
  static constexpr int64_t bos = 1;
  static constexpr int64_t eos = 2;
  static constexpr int64_t image_start = 3;
  static constexpr int64_t image_end = 4;
  static constexpr int64_t num_special = 5;

  Vocabulary() = default;
  // `chars`: distinct characters in id order; `image_levels`: size of the image codebook (> 0).
  Vocabulary(std::string chars, int64_t image_levels);
  // The characters occurring in any of `texts`, sorted by byte value, then `image_levels` codes.
  static Vocabulary build(const std::vector<std::string>& texts, int64_t image_levels);

  int64_t size() const { return image_base() + image_levels_; }
  int64_t num_chars() const { return static_cast<int64_t>(chars_.size()); }
  int64_t image_levels() const { return image_levels_; }
  int64_t image_base() const { return num_special + num_chars(); }  // id of grey level 0
  const std::string& chars() const { return chars_; }

  bool has_char(char c) const;
  int64_t char_id(char c) const;           // throws loupe::Error for a character not in the vocabulary
  int64_t image_token(int64_t level) const;  // level in [0, image_levels)
  int64_t image_level(int64_t id) const;     // inverse of image_token; throws for other ids

  bool is_special(int64_t id) const { return id >= 0 && id < num_special; }
  bool is_char_token(int64_t id) const { return id >= num_special && id < image_base(); }
  bool is_image_level_token(int64_t id) const { return id >= image_base() && id < size(); }
  // Routes to the vision copy in separated layers: the codebook and the IMAGE_START marker.
  bool is_image_token(int64_t id) const { return is_image_level_token(id) || id == image_start; }

  std::vector<int64_t> encode(const std::string& text) const;  // characters only, no BOS/EOS
  // Characters as themselves, specials as <pad> <bos> <eos> <img> </img>, image codes as [l].
  std::string decode(const std::vector<int64_t>& ids) const;
  std::string token_name(int64_t id) const;

  // (B, T) bool: is_image_token of every id of an int64 tensor (on the tensor's device) — the
  // routing mask and the modality of each input position for same-modality attention.
  Tensor vision_mask(const Tensor& tokens) const;

 private:
  std::string chars_;
  int64_t image_levels_ = 0;
  std::array<int32_t, 256> char_to_id_{};  // -1 where absent
};

// --- images ----------------------------------------------------------------------------------------

// Quantised grey images with labels: pixel values are codebook levels in [0, levels).
struct ImageSet {
  std::string name;                   // "digits" or "fashion-mnist", for messages
  int64_t height = 0, width = 0, levels = 0;
  std::vector<uint8_t> pixels;        // (N, H, W) row-major
  std::vector<int64_t> labels;        // (N)
  std::vector<std::string> captions;  // one per class: "a drawing of a seven."
  std::vector<int64_t> source_index;  // (N) each image's row in the file it came from

  int64_t size() const { return static_cast<int64_t>(labels.size()); }
  int64_t pixels_per_image() const { return height * width; }
  const uint8_t* image(int64_t i) const;
  // The images at `indices`, in that order (same captions and geometry).
  ImageSet subset(const std::vector<int64_t>& indices) const;
};

// "a drawing of a seven." (digits 0-9) and "a picture of an ankle boot." (the 10 Fashion-MNIST classes).
std::vector<std::string> digit_captions();
std::vector<std::string> fashion_captions();

// sklearn's digits.csv.gz: 1797 rows of 64 pixel values 0..16 and a label 0..9, no header; the
// 17 values are the 17 image levels.
ImageSet parse_digits_csv(const std::string& text, const std::string& source);
ImageSet load_digits(const std::string& path);
// Where digits.csv.gz is: $LOUPE_DIGITS_CSV, then the copy ./run extracts into
// third_party/sklearn-data/ (relative to the working directory and to `source_root` when given),
// then Debian's python3-sklearn location. "" when none exists.
std::string find_digits_csv(const std::string& source_root = "");

// Fashion-MNIST images (N, 28, 28) with values 0..255 -> 14x14 means of 2x2 blocks quantised to
// 16 levels (level = floor(mean / 16)). `images` any real dtype, `labels` (N) integers 0..9.
ImageSet quantise_fashion(const Tensor& images, const Tensor& labels);
// The "train" (60000) or "test" (10000) split from the IDX files in `dir`; `limit` > 0 keeps
// the first `limit` images.
ImageSet load_fashion_mnist(const std::string& dir, const std::string& split, int64_t limit = -1);

// --- text ------------------------------------------------------------------------------------------

// Tabs, form feeds and carriage returns become spaces; runs of spaces collapse to one; spaces at
// line starts and ends go; more than one blank line collapses to one.
std::string normalise_text(const std::string& raw);
// The regular files (not symbolic links, which repeat another licence) of `dir` in name order,
// each normalised, joined by a blank line. Throws when the folder holds no text.
std::string load_text_stream(const std::string& dir = "/usr/share/common-licenses");

// --- sequences -------------------------------------------------------------------------------------

// The modality a token belongs to: its segment of the sequence. Used for per-modality loss.
enum class Modality : int64_t { none = 0, image = 1, caption = 2, text = 3 };
const char* modality_name(Modality m);  // "none", "image", "caption", "text"

enum class Layout { text_to_image, image_to_text, text_only };
const char* layout_name(Layout layout);

struct Sequence {
  Layout layout = Layout::text_only;
  int64_t source = 0;                // image index in its ImageSet, or character offset in the text
  std::vector<int64_t> tokens;       // (n)
  // (n) Modality of each token: its segment; IMAGE_START and IMAGE_END are image, EOS takes the
  // segment it closes, BOS is none.
  std::vector<int64_t> modality;
  std::vector<uint8_t> response;     // (n) 1 for response tokens, 0 for instruction tokens
  int64_t length() const { return static_cast<int64_t>(tokens.size()); }
};

Sequence text_to_image(const Vocabulary& vocab, const ImageSet& images, int64_t index);
Sequence image_to_text(const Vocabulary& vocab, const ImageSet& images, int64_t index);
// BOS followed by text[offset, offset + chars).
Sequence text_window(const Vocabulary& vocab, const std::string& text, int64_t offset, int64_t chars);

// --- batches ---------------------------------------------------------------------------------------

struct Batch {
  Tensor tokens;     // (B, T) int64: the model's input, tokens[0, n-1) of each sequence, PAD after
  Tensor targets;    // (B, T) int64: the next token at each position, tokens[1, n), PAD after
  Tensor loss_mask;  // (B, T) f32: 1 where the target counts in the loss, 0 elsewhere (and at PAD)
  Tensor modality;   // (B, T) int64: Modality of each target (none at PAD)
  int64_t batch_size() const { return tokens.size(0); }
  int64_t seq_len() const { return tokens.size(1); }
};

// Pads the sequences at `indices` to T = seq_len model positions (a sequence needs n - 1 <= T).
// mask_instructions: the loss counts only response targets (the issue's "instruction tokens
// masked"); off, it counts every non-PAD target. All tensors are on the CPU.
Batch make_batch(const std::vector<Sequence>& sequences, const std::vector<int64_t>& indices, int64_t seq_len,
                 bool mask_instructions = true);
// (B, T) f32: loss_mask where modality == m (per-modality held-out loss, within-batch gradients).
Tensor modality_mask(const Batch& batch, Modality m);
// The same batch with its four tensors on `device`.
Batch to_device(const Batch& batch, Device device);
// Consecutive chunks of [0, count) of batch_size indices (the last one shorter unless drop_last).
std::vector<std::vector<int64_t>> batch_indices(int64_t count, int64_t batch_size, bool drop_last = false);

// --- the experiment's data -------------------------------------------------------------------------

// A deterministic permutation of [0, n) from `seed` (SplitMix64 + Fisher-Yates: the same on every
// platform and standard library, unlike std::shuffle).
std::vector<int64_t> seeded_permutation(int64_t n, uint64_t seed);

struct DataConfig {
  std::string source = "digits";  // "digits" or "fashion-mnist"
  std::string digits_path;        // "" = find_digits_csv()
  std::string fashion_dir = "/usr/share/datasets/fashion-mnist";
  int64_t fashion_limit = -1;     // > 0: at most this many training images (quick runs)
  std::string text_dir = "/usr/share/common-licenses";
  double heldout_fraction = 0.2;  // digits: share of images held out; text: share held out at the tail
  uint64_t seed = 0;              // the digits split and the sequence orders
};

enum class Split { train, heldout };

struct UnixData {
  Vocabulary vocab;
  ImageSet train_images, heldout_images;  // digits: split by image; Fashion-MNIST: train / test
  std::string train_text, heldout_text;   // the stream, and its held-out tail
  uint64_t seed = 0;

  // Longest multimodal sequence minus one: the batch width T that fits every image-text sequence.
  int64_t seq_len() const;
  // Both layouts of every image in the split (so exactly 50/50), in a seeded order.
  std::vector<Sequence> multimodal_sequences(Split split) const;
  // Non-overlapping text windows of `chars` characters (BOS + chars tokens) in a seeded order.
  std::vector<Sequence> text_sequences(Split split, int64_t chars) const;
};

// Loads the images (from `config.source`) and the text, splits both and builds one vocabulary
// over the text, every caption and the codebook (17 levels for digits, 16 for Fashion-MNIST).
UnixData load_unix_data(const DataConfig& config);
// The same from images and text already in memory (tests; other image sources).
UnixData make_unix_data(const ImageSet& train_images, const ImageSet& heldout_images, const std::string& text,
                        double heldout_fraction, uint64_t seed);

}  // namespace loupe::unix
