// The fuzz targets (targets.hpp) in the normal suite, with or without clang: every seed of
// tests/fuzz/corpus/<target>/ must be read without error (they are valid files), and every file in
// tests/fuzz/regressions/<target>/ (inputs that once crashed a reader, and hand-made hostile ones)
// must be refused with loupe::Error or read, never anything else.
// LOUPE_WRITE_FUZZ_SEEDS=1 ./build/tests/loupe_tests -tc="fuzz seeds*" rewrites the seed corpus.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "nn/checkpoint.hpp"
#include "nn/data/image.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tensor/parallel.hpp"
#include "tests/fuzz/targets.hpp"
#include "tests/nn/data/data_paths.hpp"
#include "tests/nn/data/helpers.hpp"
#include "tests/support.hpp"

extern "C" unsigned char* stbi_zlib_compress(unsigned char* data, int data_len, int* out_len, int quality);

namespace loupe::test {

namespace {

namespace fs = std::filesystem;

fs::path fuzz_root() { return fs::path(LOUPE_TEST_SOURCE_ROOT) / "tests" / "fuzz"; }

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
}

std::string le32(uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>((v >> (8 * i)) & 0xFF);
  return s;
}

uint32_t crc32(const std::string& data) {
  uint32_t crc = 0xFFFFFFFFu;
  for (unsigned char byte : data) {
    crc ^= byte;
    for (int k = 0; k < 8; ++k) crc = (crc & 1) ? 0xEDB88320u ^ (crc >> 1) : crc >> 1;
  }
  return crc ^ 0xFFFFFFFFu;
}

// gzip of `data` with stb's deflate (Huffman-coded blocks, so the fuzzer starts from real ones).
std::string gzip(const std::string& data) {
  int length = 0;
  std::string copy = data;
  unsigned char* zlib = stbi_zlib_compress(reinterpret_cast<unsigned char*>(copy.data()), static_cast<int>(copy.size()),
                                           &length, 8);
  REQUIRE(zlib != nullptr);
  // zlib = 2-byte header + raw deflate + 4-byte Adler-32.
  const std::string deflate(reinterpret_cast<const char*>(zlib) + 2, static_cast<size_t>(length) - 6);
  std::free(zlib);
  return std::string("\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff", 10) + deflate + le32(crc32(data)) +
         le32(static_cast<uint32_t>(data.size()));
}

std::string idx(uint8_t code, const std::vector<uint32_t>& dims, const std::string& payload) {
  std::string out("\x00\x00", 2);
  out += static_cast<char>(code);
  out += static_cast<char>(dims.size());
  for (uint32_t d : dims) {
    for (int i = 3; i >= 0; --i) out += static_cast<char>((d >> (8 * i)) & 0xFF);
  }
  return out + payload;
}

void write_seeds(const fs::path& corpus) {
  for (const std::string& target : fuzz::target_names()) fs::create_directories(corpus / target);
  Generator g(11);
  // npy
  save_npy((corpus / "npy/f32-2x3.npy").string(), uniform({2, 3}, -1, 1, DType::f32, &g));
  save_npy((corpus / "npy/f64-4.npy").string(), uniform({4}, -1, 1, DType::f64, &g));
  save_npy((corpus / "npy/i64-scalar.npy").string(), full({}, 7.0, DType::i64));
  save_npy((corpus / "npy/bool-3x2.npy").string(), ops::gt(uniform({3, 2}, 0, 1, DType::f32, &g), full({3, 2}, 0.5)));
  save_npy((corpus / "npy/f32-1x4x4.npy").string(), uniform({1, 4, 4}, 0, 1, DType::f32, &g));
  {
    std::string bytes = read_bytes(corpus / "npy/f32-2x3.npy");
    const size_t at = bytes.find("False");
    bytes.replace(at, 5, "True ");  // the same bytes read as the Fortran-order (3, 2) transpose
    write_bytes(corpus / "npy/f32-2x3-fortran.npy", bytes);
  }
  // safetensors
  save_safetensors((corpus / "safetensors/two.safetensors").string(),
                   {{"a", uniform({2, 2}, 0, 1, DType::f32, &g)}, {"b", full({3}, 2.0, DType::i64)}},
                   {{"note", "seed"}});
  save_safetensors((corpus / "safetensors/empty-and-bool.safetensors").string(),
                   {{"e", Tensor::empty({0, 3}, DType::f64)}, {"m", ops::gt(uniform({4}, 0, 1, DType::f32, &g), full({4}, 0.5))}});
  // checkpoints: a small ResNet18 that the target builds and loads, and a header-only one
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 2;
  info.in_channels = 1;
  info.image_size = 16;
  info.labels = {"a", "b"};
  info.small_input = true;
  info.width = 2;
  nn::save_checkpoint((corpus / "checkpoint/resnet18-width2.safetensors").string(), *nn::build_model(info, &g), info,
                      {}, {{"train.global_step", "3"}});
  // idx_gzip
  std::string bytes(3 * 4 * 4, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>(i * 7);
  write_bytes(corpus / "idx_gzip/u8-3x4x4.idx", idx(0x08, {3, 4, 4}, bytes));
  write_bytes(corpus / "idx_gzip/u8-3x4x4.idx.gz", gzip(idx(0x08, {3, 4, 4}, bytes)));
  write_bytes(corpus / "idx_gzip/labels-10.idx.gz", gzip(idx(0x08, {10}, std::string("\x00\x01\x02\x03\x04\x05\x06\x07\x08\x09", 10))));
  write_bytes(corpus / "idx_gzip/f32-2.idx", idx(0x0D, {2}, std::string("\x3f\x80\x00\x00\xc0\x00\x00\x00", 8)));
  write_bytes(corpus / "idx_gzip/i16-2.idx", idx(0x0B, {2}, std::string("\x01\x00\xff\xff", 4)));
  write_bytes(corpus / "idx_gzip/f64-1.idx", idx(0x0E, {1}, std::string("\x3f\xf0\x00\x00\x00\x00\x00\x00", 8)));
  // csv
  write_bytes(corpus / "csv/simple.csv", "file,split,covid19,pneumonia\na.png,train,1,0\nb.png,test,0,1\n");
  write_bytes(corpus / "csv/quoted-crlf-bom.csv",
              "\xEF\xBB\xBF\"file\",\"note\"\r\n\"a,b.png\",\"said \"\"hi\"\"\"\r\n\"c.png\",\"two\nlines\"\r\n");
  write_bytes(corpus / "csv/empty-fields.csv", "a,b,c\n,,\n\"\",x,\n");
  // images
  nn::save_image((corpus / "image/grey-8x8.png").string(), uniform({1, 8, 8}, 0, 1, DType::f32, &g));
  nn::save_image((corpus / "image/rgb-8x6.png").string(), uniform({3, 8, 6}, 0, 1, DType::f32, &g));
  nn::save_image((corpus / "image/rgba-4x4.png").string(), uniform({4, 4, 4}, 0, 1, DType::f32, &g));
  nn::save_image((corpus / "image/rgb-8x8.bmp").string(), uniform({3, 8, 8}, 0, 1, DType::f32, &g));
  nn::save_image((corpus / "image/rgb-16x16.jpg").string(), uniform({3, 16, 16}, 0, 1, DType::f32, &g));
  nn::save_image((corpus / "image/grey-16x8.jpg").string(), uniform({1, 16, 8}, 0, 1, DType::f32, &g));
}

std::vector<fs::path> files_in(const fs::path& folder) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) return files;
  for (const auto& entry : fs::directory_iterator(folder)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

TEST_CASE("fuzz seeds: every seed of every target is read without error (LOUPE_WRITE_FUZZ_SEEDS=1 rewrites them)") {
  const fs::path corpus = fuzz_root() / "corpus";
  if (const char* write = std::getenv("LOUPE_WRITE_FUZZ_SEEDS"); write && std::string(write) == "1") write_seeds(corpus);
  fuzz::init_fuzzing();
  for (const std::string& target : fuzz::target_names()) {
    const auto seeds = files_in(corpus / target);
    INFO(target);
    CHECK(!seeds.empty());
    for (const fs::path& seed : seeds) {
      INFO(seed.string());
      const std::string bytes = read_bytes(seed);
      CHECK_NOTHROW(fuzz::run_target(target, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), true));
    }
  }
  ::unsetenv("LOUPE_MAX_TENSOR_BYTES");
  set_num_threads(parse_thread_count(std::getenv("LOUPE_NUM_THREADS")));
}

TEST_CASE("fuzz regressions: inputs that once crashed a reader are refused with loupe::Error or read") {
  fuzz::init_fuzzing();
  int64_t replayed = 0;
  for (const std::string& target : fuzz::target_names()) {
    for (const fs::path& input : files_in(fuzz_root() / "regressions" / target)) {
      INFO(target, ": ", input.string());
      const std::string bytes = read_bytes(input);
      try {
        fuzz::run_target(target, reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size(), true);
      } catch (const Error&) {
        // a refusal is the expected outcome for most of them
      } catch (const std::exception& e) {
        FAIL("not a loupe::Error: ", e.what());
      }
      ++replayed;
    }
  }
  MESSAGE("replayed ", replayed, " regression inputs");
  ::unsetenv("LOUPE_MAX_TENSOR_BYTES");
  set_num_threads(parse_thread_count(std::getenv("LOUPE_NUM_THREADS")));
}

}  // namespace loupe::test
