// gzip and IDX readers: hand-built files, corrupt inputs, and the real Fashion-MNIST when present.
#include <doctest/doctest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nn/data/gzip.hpp"
#include "nn/data/idx.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {
// A gzip member holding "hello hello hello\n" as one stored (uncompressed) deflate block:
// header, block (BFINAL=1, BTYPE=00, LEN, NLEN, bytes), CRC-32 and size.
std::vector<uint8_t> stored_gzip(const std::string& text, uint32_t crc) {
  std::vector<uint8_t> gz = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
  const uint16_t len = static_cast<uint16_t>(text.size());
  gz.push_back(1);
  gz.push_back(len & 0xff);
  gz.push_back(len >> 8);
  gz.push_back(~len & 0xff);
  gz.push_back((~len >> 8) & 0xff);
  gz.insert(gz.end(), text.begin(), text.end());
  for (int i = 0; i < 4; ++i) gz.push_back((crc >> (8 * i)) & 0xff);
  for (int i = 0; i < 4; ++i) gz.push_back((text.size() >> (8 * i)) & 0xff);
  return gz;
}
}  // namespace

TEST_CASE("gunzip: a stored block round-trips and its CRC is checked") {
  const std::string text = "hello hello hello\n";
  const uint32_t crc = 0xDF8A7C3Bu;  // CRC-32 of the text above (as zlib.crc32 gives)
  auto gz = stored_gzip(text, crc);
  const auto out = nn::gunzip(gz, "mem.gz");
  CHECK(std::string(out.begin(), out.end()) == text);
  auto bad_crc = stored_gzip(text, crc ^ 1);
  CHECK_THROWS_WITH_AS(nn::gunzip(bad_crc, "mem.gz"), doctest::Contains("CRC"), Error);
  auto truncated = gz;
  truncated.resize(12);
  CHECK_THROWS_AS(nn::gunzip(truncated, "mem.gz"), Error);
  std::vector<uint8_t> not_gzip = {'P', 'K', 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  CHECK_THROWS_WITH_AS(nn::gunzip(not_gzip, "x.zip"), doctest::Contains("x.zip"), Error);
}

TEST_CASE("idx: a hand-built u8 file parses; bad sizes are errors") {
  // magic 00 00 08 02, dims 2 x 3, then 6 bytes
  std::vector<uint8_t> bytes = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 252};
  Tensor t = nn::parse_idx(bytes, "mem.idx", DType::f32);
  CHECK(t.shape() == Shape{2, 3});
  CHECK(values(t) == std::vector<double>{1, 2, 3, 250, 251, 252});
  Tensor labels = nn::parse_idx(bytes, "mem.idx", DType::i64);
  CHECK(labels.dtype() == DType::i64);
  auto short_bytes = bytes;
  short_bytes.pop_back();
  CHECK_THROWS_WITH_AS(nn::parse_idx(short_bytes, "mem.idx", DType::f32), doctest::Contains("mem.idx"), Error);
  CHECK_THROWS_AS(nn::load_idx("/nonexistent/file.idx"), Error);
}

TEST_CASE("idx: the Fashion-MNIST test split from Debian's package") {
  const std::string path = "/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz";
  if (!std::filesystem::exists(path)) {
    MESSAGE("skipped: dataset-fashion-mnist is not installed");
    return;
  }
  Tensor labels = nn::load_idx(path, DType::i64);
  CHECK(labels.shape() == Shape{10000});
  // The test split is balanced: 1000 images per class.
  std::vector<int64_t> counts(10, 0);
  for (int64_t v : to_vector<int64_t>(labels)) ++counts[static_cast<size_t>(v)];
  for (int64_t c : counts) CHECK(c == 1000);
  Tensor images = nn::load_idx("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz", DType::f32);
  CHECK(images.shape() == Shape{10000, 28, 28});
}

}  // namespace loupe::test
