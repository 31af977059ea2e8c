// The declared-size limit (tensor/io/limits.hpp) in every reader that allocates from a header:
// .npy, safetensors, IDX, gzip and decoded images; LOUPE_MAX_TENSOR_BYTES parsing; and writers
// refusing to rename over something that is not a regular file (file_util.hpp).
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>

#include "nn/data/gzip.hpp"
#include "nn/data/idx.hpp"
#include "nn/data/image.hpp"
#include "tensor/io/limits.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tensor/ops/creation.hpp"
#include "tests/nn/data/data_paths.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

namespace loupe::test {

namespace {

// Sets LOUPE_MAX_TENSOR_BYTES for one scope and restores the previous value.
class ScopedLimit {
 public:
  explicit ScopedLimit(const char* value) {
    if (const char* old = std::getenv("LOUPE_MAX_TENSOR_BYTES")) previous_ = old;
    ::setenv("LOUPE_MAX_TENSOR_BYTES", value, 1);
  }
  ~ScopedLimit() {
    if (previous_) {
      ::setenv("LOUPE_MAX_TENSOR_BYTES", previous_->c_str(), 1);
    } else {
      ::unsetenv("LOUPE_MAX_TENSOR_BYTES");
    }
  }

 private:
  std::optional<std::string> previous_;
};

}  // namespace

TEST_CASE("LOUPE_MAX_TENSOR_BYTES: bytes with K/M/G/T suffixes; anything else is refused naming the variable") {
  CHECK(io::parse_byte_size("123", "V") == 123);
  CHECK(io::parse_byte_size("64K", "V") == 64 * 1024);
  CHECK(io::parse_byte_size("512m", "V") == 512ull << 20);
  CHECK(io::parse_byte_size("4G", "V") == 4ull << 30);
  CHECK(io::parse_byte_size("2T", "V") == 2ull << 40);
  for (const char* bad : {"", "0", "-5", "abc", "4GB", "1.5G", "G", "99999999999999999999", "20000000T", " 4"}) {
    INFO(bad);
    CHECK_THROWS_WITH_AS(io::parse_byte_size(bad, "LOUPE_MAX_TENSOR_BYTES"), doctest::Contains("LOUPE_MAX_TENSOR_BYTES"),
                         Error);
  }
  {
    ScopedLimit limit("1K");
    CHECK(io::max_tensor_bytes() == 1024);
  }
  {
    ScopedLimit limit("junk");
    CHECK_THROWS_WITH_AS(io::max_tensor_bytes(), doctest::Contains("LOUPE_MAX_TENSOR_BYTES"), Error);
  }
}

TEST_CASE("declared sizes above the limit are refused before allocation: npy, safetensors, IDX, gzip, images") {
  ScratchDir dir("limits");
  const Tensor big = full({16, 16}, 0.25);  // 1 KiB of float32
  save_npy(dir.file("a.npy"), big);
  save_safetensors(dir.file("a.safetensors"), {{"w", big}});
  const std::string png = dir.file("a.png");
  nn::save_png(png, full({3, 16, 16}, 0.5));
  std::vector<uint8_t> idx = {0, 0, 8, 2, 0, 0, 0, 32, 0, 0, 0, 32};
  idx.resize(12 + 32 * 32, 7);
  {
    ScopedLimit limit("1023");
    CHECK_THROWS_WITH_AS(load_npy(dir.file("a.npy")), doctest::Contains("above the limit of 1023 bytes"), Error);
    CHECK_THROWS_WITH_AS(load_npy(dir.file("a.npy")), doctest::Contains("a.npy"), Error);
    CHECK_THROWS_WITH_AS(load_safetensors(dir.file("a.safetensors")), doctest::Contains("LOUPE_MAX_TENSOR_BYTES"), Error);
    CHECK_THROWS_WITH_AS(nn::load_image(png), doctest::Contains("a 16x16 image declares"), Error);
    // 32 x 32 bytes as float32 = 4 KiB.
    CHECK_THROWS_WITH_AS(nn::parse_idx(idx, "x.idx", DType::f32), doctest::Contains("x.idx"), Error);
  }
  {
    ScopedLimit limit("4K");  // exactly the declared size passes
    CHECK(load_npy(dir.file("a.npy")).numel() == 256);
    CHECK(load_safetensors(dir.file("a.safetensors")).at("w").numel() == 256);
    CHECK(nn::parse_idx(idx, "x.idx", DType::f32).numel() == 1024);
  }
  // A shape of terabytes in a small file is refused as what it is: too few data bytes.
  std::vector<uint8_t> huge = {0, 0, 8, 3, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0};
  CHECK_THROWS_WITH_AS(nn::parse_idx(huge, "huge.idx", DType::f32), doctest::Contains("huge.idx' holds 0 data bytes"),
                       Error);
  // 255 dimensions of 2^32 - 1 overflow 64 bits: a clear error, not undefined behaviour.
  std::vector<uint8_t> overflow = {0, 0, 8, 255};
  overflow.resize(4 + 4 * 255, 0xFF);
  CHECK_THROWS_WITH_AS(nn::parse_idx(overflow, "o.idx", DType::f32), doctest::Contains("overflows"), Error);
}

TEST_CASE("a zero-size shape whose other extents overflow int64 strides is refused (found by the IDX fuzzer)") {
  ScratchDir dir("stride-overflow");
  {
    std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (0, 4294967296, 4294967296), }";
    header.append(118 - header.size(), ' ');
    header += '\n';
    std::ofstream(dir.file("z.npy"), std::ios::binary)
        << std::string("\x93NUMPY\x01\x00", 8) << char(header.size() & 0xFF) << char(header.size() >> 8) << header;
  }
  CHECK_THROWS_WITH_AS(load_npy(dir.file("z.npy")), doctest::Contains("overflows"), Error);
  {
    const std::string header = R"({"z":{"dtype":"F32","shape":[0,4294967296,4294967296],"data_offsets":[0,0]}})";
    std::string length(8, '\0');
    length[0] = static_cast<char>(header.size());
    std::ofstream(dir.file("z.safetensors"), std::ios::binary) << length << header;
  }
  CHECK_THROWS_WITH_AS(load_safetensors(dir.file("z.safetensors")), doctest::Contains("overflows"), Error);
  const std::vector<uint8_t> idx = {0, 0, 8, 3, 0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff};
  CHECK_THROWS_WITH_AS(nn::parse_idx(idx, "z.idx", DType::f64), doctest::Contains("overflows"), Error);
}

TEST_CASE("JPEGs whose Huffman table declares more than 256 codes are refused before stb reads them (fuzzer finds)") {
  const std::filesystem::path folder = std::filesystem::path(LOUPE_TEST_SOURCE_ROOT) / "tests/fuzz/regressions/image";
  for (const char* name : {"jpeg-dht-over-256-codes.jpg", "jpeg-dht-after-ff-padding.jpg", "jpeg-dc-symbol-above-15.jpg"}) {
    INFO(name);
    CHECK_THROWS_WITH_AS(nn::load_image((folder / name).string()), doctest::Contains("Huffman table"), Error);
  }
}

TEST_CASE("a PNG chunk running past the end of the file is refused before stb reserves it (image fuzzer find)") {
  // The fuzzer's file: an IDAT declaring 1459617875 bytes in a 251-byte file (stb reserved 2 GiB for it).
  const std::filesystem::path folder = std::filesystem::path(LOUPE_TEST_SOURCE_ROOT) / "tests/fuzz/regressions/image";
  CHECK_THROWS_WITH_AS(nn::load_image((folder / "png-idat-length-2gib.png").string()),
                       doctest::Contains("a chunk declares 1459617875 bytes, past the end of the 251-byte file"), Error);
  // A valid PNG still decodes, and cutting its last chunk short is refused the same way.
  std::vector<uint8_t> png = nn::encode_png(full({1, 4, 4}, 0.5));
  CHECK(nn::decode_image(png, "ok.png").shape() == Shape{1, 4, 4});
  png.resize(png.size() - 13);  // IEND (12 bytes) and the last byte of the chunk before it
  CHECK_THROWS_WITH_AS(nn::decode_image(png, "cut.png"), doctest::Contains("past the end of the"), Error);
}

TEST_CASE("gunzip: a trailer above the limit, a stream longer than its trailer, a 4 GiB trailer") {
  // "hello" as one stored deflate block.
  std::vector<uint8_t> gz = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 5, 0, 0xfa, 0xff, 'h', 'e', 'l', 'l', 'o',
                             0x86, 0xa6, 0x10, 0x36, 5, 0, 0, 0};
  CHECK(nn::gunzip(gz, "ok.gz") == std::vector<uint8_t>{'h', 'e', 'l', 'l', 'o'});
  std::vector<uint8_t> short_trailer = gz;
  short_trailer[gz.size() - 4] = 3;  // says 3 bytes: the decoder stops at the buffer's end
  CHECK_THROWS_WITH_AS(nn::gunzip(short_trailer, "short.gz"), doctest::Contains("short.gz"), Error);
  std::vector<uint8_t> liar = gz;
  liar[gz.size() - 2] = 1;  // says 65541 bytes: more than 18 deflate bytes can expand to (1032:1)
  CHECK_THROWS_WITH_AS(nn::gunzip(liar, "liar.gz"), doctest::Contains("compressed bytes can hold"), Error);
  std::vector<uint8_t> bomb = gz;
  bomb[gz.size() - 1] = 0xFF;  // says almost 4 GiB
  CHECK_THROWS_WITH_AS(nn::gunzip(bomb, "bomb.gz"), doctest::Contains("bomb.gz"), Error);
  {
    ScopedLimit limit("4");
    CHECK_THROWS_WITH_AS(nn::gunzip(gz, "ok.gz"), doctest::Contains("LOUPE_MAX_TENSOR_BYTES"), Error);
  }
}

TEST_CASE("atomic writers refuse to replace something that is not a regular file") {
  ScratchDir dir("not-regular");
  std::filesystem::create_directories(dir.file("folder"));
  CHECK_THROWS_WITH_AS(save_npy(dir.file("folder"), ones({2})), doctest::Contains("not a regular file"), Error);
  CHECK(std::filesystem::is_directory(dir.file("folder")));
  // A FIFO stands in for a device (a test must never risk renaming over /dev/full itself).
  REQUIRE(::mkfifo(dir.file("fifo").c_str(), 0600) == 0);
  CHECK_THROWS_WITH_AS(save_safetensors(dir.file("fifo"), {{"x", ones({2})}}), doctest::Contains("fifo"), Error);
  CHECK(std::filesystem::is_fifo(dir.file("fifo")));
  CHECK_THROWS_AS(nn::save_png(dir.file("fifo"), ones({1, 2, 2})), Error);
  CHECK(std::filesystem::is_fifo(dir.file("fifo")));
  // Nothing is left behind by the refusals.
  int64_t entries = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir.path())) {
    (void)entry;
    ++entries;
  }
  CHECK(entries == 2);
}

}  // namespace loupe::test
