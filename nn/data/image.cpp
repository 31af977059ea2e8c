// Image decoding and PNG writing with stb. See image.hpp.
#include "nn/data/image.hpp"

#include <stb_image.h>
#include <stb_image_write.h>

#include <algorithm>
#include <cctype>
#include <climits>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "tensor/io/file_util.hpp"
#include "tensor/io/limits.hpp"
#include "tensor/ops/copy.hpp"
#include "tensor/ops/creation.hpp"
#include "tensor/ops/view.hpp"

namespace loupe::nn {

namespace {

// Whole file as bytes, with an error that says why a file cannot be read.
std::vector<uint8_t> read_image_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  LOUPE_CHECK(fs::exists(status), "load_image: '", path, "': no such file");
  LOUPE_CHECK(!fs::is_directory(status), "load_image: '", path, "': is a directory");
  std::ifstream in(path, std::ios::binary);
  LOUPE_CHECK(in.is_open(), "load_image: '", path, "': cannot open for reading (", std::strerror(errno), ")");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LOUPE_CHECK(!in.bad(), "load_image: '", path, "': read error");
  return bytes;
}

// stb_image 2.27 (Debian 12's) writes past a Huffman table when a JPEG's DHT segment declares more
// than 256 codes (found by the image fuzzer: tests/fuzz/regressions/image/); 2.28 refuses such
// files with "bad DHT header". Until every supported system ships 2.28, loupe refuses them first.
// stb's idea of where a segment starts differs from a strict reading in corner cases (padding
// bytes, segments read by content rather than by length), so every FF C4 (DHT marker) anywhere in
// a file that stb would try as a JPEG (first byte FF) is read as stb reads a DHT segment: tables
// of 16 counts and their codes while any of the segment's length is left, counting bytes past the
// end as 0. A valid JPEG has FF C4 only at its DHT segments (entropy-coded data escapes FF), so
// only a file with an impossible table, or such bytes inside a metadata segment, is refused.
// Real JPEGs have a few DHT markers (dozens when progressive); more than 1024 is refused too, which
// bounds this scan (each marker reads at most 64 KiB) against a file made of FF C4 pairs.
bool jpeg_huffman_tables_fit(const uint8_t* p, size_t n) {
  if (n < 2 || p[0] != 0xFF) return true;  // stb reads only files starting with FF as JPEG
  auto byte = [&](size_t i) -> unsigned { return i < n ? p[i] : 0; };
  int markers = 0;
  for (size_t i = 0; i + 1 < n; ++i) {
    if (p[i] != 0xFF || p[i + 1] != 0xC4) continue;
    if (++markers > 1024) return false;
    const size_t end = i + 2 + (byte(i + 2) << 8 | byte(i + 3));
    for (size_t j = i + 4; j < end && j < n;) {  // past the file every count reads 0: nothing to check
      unsigned codes = 0;
      for (size_t k = 1; k <= 16; ++k) codes += byte(j + k);
      if (codes > 256) return false;
      // A DC table's symbols are bit counts of the DC difference (0 to 11 for 8-bit JPEGs; stb 2.28
      // refuses above 15 when it decodes one). stb 2.27 shifts by such a count and loses track of
      // its bit buffer (its Huffman decoder's assertion fails: image fuzzer find), so a DC table
      // (class 0, the byte before the counts) with a symbol above 15 is refused.
      if ((byte(j) >> 4) == 0) {
        for (size_t k = 0; k < codes; ++k) {
          if (byte(j + 17 + k) > 15) return false;
        }
      }
      j += 17 + codes;
    }
  }
  return true;
}

// stb_image reserves a PNG's IDAT chunk at its declared length (up to 2 GiB) before reading it, so a
// 60-byte file declaring a 2 GiB chunk made it allocate 2 GiB (found by the image fuzzer:
// tests/fuzz/regressions/image/png-idat-length-2gib.png). Every chunk stb reads (those before IEND)
// must fit in the file: its length, type, data and CRC. stb fails on any file that breaks this (it
// reaches the end of the data before IEND), so only corrupt files are refused, before stb
// allocates. Returns the size of the first chunk that does not fit, or 0.
uint64_t png_chunk_past_end(const uint8_t* p, size_t n) {
  static constexpr uint8_t kSignature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  if (n < 8 || std::memcmp(p, kSignature, 8) != 0) return 0;  // not read as PNG by stb
  size_t pos = 8;
  while (n - pos >= 8) {
    const uint64_t length =
        uint64_t{p[pos]} << 24 | uint64_t{p[pos + 1]} << 16 | uint64_t{p[pos + 2]} << 8 | uint64_t{p[pos + 3]};
    if (std::memcmp(p + pos + 4, "IEND", 4) == 0) return 0;
    if (length + 12 > n - pos) return length;
    pos += static_cast<size_t>(length) + 12;
  }
  return 0;  // a file ending without IEND: stb reports it
}

// Interleaved samples (H, W, stored) of type T -> (C, H, W) f32 in [0, 1] with the wanted channels.
template <typename T>
Tensor planar_from_interleaved(const T* pixels, int64_t height, int64_t width, int stored, ImageChannels wanted,
                               double max_value) {
  const bool colour = stored >= 3;  // stored is 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA)
  int64_t channels = colour ? 3 : 1;
  if (wanted == ImageChannels::grey) channels = 1;
  if (wanted == ImageChannels::rgb) channels = 3;
  Tensor out = Tensor::empty({channels, height, width}, DType::f32);
  float* dst = out.data<float>();
  const int64_t plane = height * width;
  const float scale = static_cast<float>(1.0 / max_value);
  for (int64_t p = 0; p < plane; ++p) {
    const T* px = pixels + p * stored;
    if (!colour) {
      const float v = static_cast<float>(px[0]) * scale;
      for (int64_t c = 0; c < channels; ++c) dst[c * plane + p] = v;
    } else if (channels == 3) {
      for (int64_t c = 0; c < 3; ++c) dst[c * plane + p] = static_cast<float>(px[c]) * scale;
    } else {
      // ITU-R 601-2 luma, computed in double so that equal R, G, B give exactly that value.
      const double luma = 0.299 * px[0] + 0.587 * px[1] + 0.114 * px[2];
      dst[p] = static_cast<float>(luma / max_value);
    }
  }
  return out;
}

}  // namespace

Tensor decode_image(const std::vector<uint8_t>& bytes, const std::string& name, ImageChannels channels) {
  LOUPE_CHECK(!bytes.empty(), "load_image: '", name, "': the file is empty");
  LOUPE_CHECK(bytes.size() <= static_cast<size_t>(INT32_MAX), "load_image: '", name, "': the file is too large (",
              bytes.size(), " bytes)");
  LOUPE_CHECK(jpeg_huffman_tables_fit(bytes.data(), bytes.size()), "load_image: '", name,
              "': cannot decode (corrupt JPEG: a Huffman table declares more than 256 codes or a DC symbol "
              "above 15, or more than 1024 tables)");
  const uint64_t chunk = png_chunk_past_end(bytes.data(), bytes.size());
  LOUPE_CHECK(chunk == 0, "load_image: '", name, "': cannot decode (corrupt PNG: a chunk declares ", chunk,
              " bytes, past the end of the ", bytes.size(), "-byte file)");
  const auto* data = reinterpret_cast<const stbi_uc*>(bytes.data());
  const int length = static_cast<int>(bytes.size());
  int width = 0, height = 0, stored = 0;
  // The header's size is checked before stb allocates the pixels (stb itself allows up to 2^24 x
  // 2^24): the decoded samples and the (C, H, W) float tensor must both fit the limit.
  if (stbi_info_from_memory(data, length, &width, &height, &stored)) {
    const bool wide = stbi_is_16_bit_from_memory(data, length) != 0;
    const uint64_t pixels = static_cast<uint64_t>(width) * static_cast<uint64_t>(height);
    const uint64_t samples = pixels * static_cast<uint64_t>(std::max(stored, 3)) * (wide ? 2 : 1);
    const uint64_t floats = pixels * 3 * sizeof(float);
    io::check_declared_bytes("load_image", name,
                             "a " + std::to_string(width) + "x" + std::to_string(height) + " image",
                             std::max(samples, floats));
  }
  // stb keeps its failure reason per thread, so loader threads may decode concurrently.
  if (stbi_is_16_bit_from_memory(data, length)) {
    stbi_us* pixels = stbi_load_16_from_memory(data, length, &width, &height, &stored, 0);
    LOUPE_CHECK(pixels != nullptr, "load_image: '", name, "': cannot decode (", stbi_failure_reason(), ")");
    Tensor out;
    try {
      out = planar_from_interleaved(pixels, height, width, stored, channels, 65535.0);
    } catch (...) {
      stbi_image_free(pixels);
      throw;
    }
    stbi_image_free(pixels);
    return out;
  }
  stbi_uc* pixels = stbi_load_from_memory(data, length, &width, &height, &stored, 0);
  LOUPE_CHECK(pixels != nullptr, "load_image: '", name, "': cannot decode (", stbi_failure_reason(), ")");
  Tensor out;
  try {
    out = planar_from_interleaved(pixels, height, width, stored, channels, 255.0);
  } catch (...) {
    stbi_image_free(pixels);
    throw;
  }
  stbi_image_free(pixels);
  return out;
}

Tensor load_image(const std::string& path, ImageChannels channels) {
  return decode_image(read_image_file(path), path, channels);
}

std::vector<uint8_t> encode_image(const Tensor& image, ImageFormat format, int jpeg_quality) {
  const char* op = "save_image";
  LOUPE_CHECK(image.defined() && (image.dim() == 2 || image.dim() == 3), op,
              ": expected a (C, H, W) or (H, W) image, got shape ",
              image.defined() ? shape_str(image.shape()) : std::string("undefined"));
  Tensor chw = image.dim() == 2 ? ops::unsqueeze(image, 0) : image;
  const int64_t channels = chw.size(0), height = chw.size(1), width = chw.size(2);
  LOUPE_CHECK(channels == 1 || channels == 3 || (channels == 4 && format != ImageFormat::jpeg), op,
              ": cannot write ", channels, " channels (shape ", shape_str(image.shape()), ") in this format");
  LOUPE_CHECK(height > 0 && width > 0 && height <= INT32_MAX / 4 && width <= INT32_MAX / 4, op,
              ": cannot write an image of shape ", shape_str(image.shape()));
  LOUPE_CHECK(jpeg_quality >= 1 && jpeg_quality <= 100, op, ": JPEG quality must be in [1, 100], got ", jpeg_quality);
  LOUPE_CHECK(chw.device().is_cpu(), op, ": the image must be on the CPU");
  const std::vector<double> v = to_vector<double>(chw);
  const int64_t plane = height * width;
  // stb writes interleaved 8-bit samples: (H, W, C).
  std::vector<uint8_t> interleaved(static_cast<size_t>(plane * channels));
  for (int64_t p = 0; p < plane; ++p) {
    for (int64_t c = 0; c < channels; ++c) {
      double x = v[static_cast<size_t>(c * plane + p)];
      x = std::isnan(x) ? 0.0 : std::clamp(x, 0.0, 1.0);
      interleaved[static_cast<size_t>(p * channels + c)] = static_cast<uint8_t>(std::lround(x * 255.0));
    }
  }
  std::vector<uint8_t> bytes;
  auto append = [](void* context, void* data, int size) {
    auto* out = static_cast<std::vector<uint8_t>*>(context);
    const auto* p = static_cast<const uint8_t*>(data);
    out->insert(out->end(), p, p + size);
  };
  const int w = static_cast<int>(width), h = static_cast<int>(height), c = static_cast<int>(channels);
  int ok = 0;
  switch (format) {
    case ImageFormat::png: ok = stbi_write_png_to_func(append, &bytes, w, h, c, interleaved.data(), w * c); break;
    case ImageFormat::bmp: ok = stbi_write_bmp_to_func(append, &bytes, w, h, c, interleaved.data()); break;
    case ImageFormat::jpeg:
      ok = stbi_write_jpg_to_func(append, &bytes, w, h, c, interleaved.data(), jpeg_quality);
      break;
  }
  LOUPE_CHECK(ok != 0, op, ": stb_image_write could not encode the image of shape ", shape_str(image.shape()));
  return bytes;
}

std::vector<uint8_t> encode_png(const Tensor& image) { return encode_image(image, ImageFormat::png); }

void save_png(const std::string& path, const Tensor& image) {
  const std::vector<uint8_t> png = encode_png(image);
  io::write_file_atomically(path, "save_png", [&](const auto& write) { write(png.data(), png.size()); });
}

void save_image(const std::string& path, const Tensor& image, int jpeg_quality) {
  std::string ext = std::filesystem::path(path).extension().string();
  for (char& ch : ext) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  ImageFormat format = ImageFormat::png;
  if (ext == ".png") format = ImageFormat::png;
  else if (ext == ".bmp") format = ImageFormat::bmp;
  else if (ext == ".jpg" || ext == ".jpeg") format = ImageFormat::jpeg;
  else throw Error(detail::make_message("save_image: '", path, "': unknown image format (use .png, .bmp or .jpg)"));
  const std::vector<uint8_t> bytes = encode_image(image, format, jpeg_quality);
  io::write_file_atomically(path, "save_image", [&](const auto& write) { write(bytes.data(), bytes.size()); });
}

}  // namespace loupe::nn
