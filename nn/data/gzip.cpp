// gzip container parsing + raw-deflate inflation. See gzip.hpp.
#include "nn/data/gzip.hpp"

#include <stb_image.h>

#include <algorithm>
#include <array>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>

#include "tensor/error.hpp"
#include "tensor/io/limits.hpp"

namespace loupe::nn {

namespace {

uint32_t crc32(const uint8_t* data, size_t size) {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; ++i) crc = table[(crc ^ data[i]) & 0xFF] ^ (crc >> 8);
  return crc ^ 0xFFFFFFFFu;
}

uint32_t read_le32(const uint8_t* p) {
  return uint32_t(p[0]) | uint32_t(p[1]) << 8 | uint32_t(p[2]) << 16 | uint32_t(p[3]) << 24;
}

}  // namespace

std::vector<uint8_t> read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  LOUPE_CHECK(in.good(), "read: cannot open '", path, "'");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  LOUPE_CHECK(!in.bad(), "read: error while reading '", path, "'");
  return bytes;
}

std::vector<uint8_t> gunzip(const std::vector<uint8_t>& gz, const std::string& name) {
  // Header: magic 1f 8b, method 8 (deflate), flags, mtime(4), xfl, os, then optional fields.
  LOUPE_CHECK(gz.size() >= 18 && gz[0] == 0x1f && gz[1] == 0x8b, "gunzip: '", name, "' is not a gzip file");
  LOUPE_CHECK(gz[2] == 8, "gunzip: '", name, "' uses compression method ", int(gz[2]), " (only deflate is supported)");
  const uint8_t flags = gz[3];
  size_t pos = 10;
  auto need = [&](size_t n) { LOUPE_CHECK(pos + n <= gz.size(), "gunzip: '", name, "' is truncated in its header"); };
  if (flags & 0x04) {  // FEXTRA
    need(2);
    const size_t extra = gz[pos] | size_t(gz[pos + 1]) << 8;
    pos += 2;
    need(extra);
    pos += extra;
  }
  for (uint8_t bit : {uint8_t(0x08), uint8_t(0x10)}) {  // FNAME, FCOMMENT: zero-terminated
    if (flags & bit) {
      while (pos < gz.size() && gz[pos] != 0) ++pos;
      need(1);
      ++pos;
    }
  }
  if (flags & 0x02) {  // FHCRC
    need(2);
    pos += 2;
  }
  LOUPE_CHECK(gz.size() >= pos + 8, "gunzip: '", name, "' is truncated");
  const uint32_t expected_crc = read_le32(&gz[gz.size() - 8]);
  const uint32_t expected_size = read_le32(&gz[gz.size() - 4]);  // size mod 2^32
  // The deflate stream ends at its final block; the decoder is also given the 8 trailer bytes
  // because stb's bit reader looks ahead up to 16 bits and rejects a stream that ends flush
  // with the buffer ("bad huffman code").
  const size_t deflate_size = gz.size() - pos;
  LOUPE_CHECK(deflate_size <= size_t(std::numeric_limits<int>::max()), "gunzip: '", name, "' is too large");
  // The output goes into a buffer of exactly the trailer's size, allocated only after that size
  // passed the limit: a "zip bomb" (or a corrupt trailer) fails in the decoder ("output buffer
  // limit") instead of growing memory without bound. Files of 2 GiB and more are not supported.
  io::check_declared_bytes("gunzip", name, "its trailer", expected_size);
  // Deflate cannot expand more than 1032:1 (a 258-byte match in one bit, plus block overhead), so a
  // trailer claiming more than that is a lie; refusing it keeps the buffer below 1032 x the file.
  LOUPE_CHECK(expected_size <= uint64_t(deflate_size) * 1032 + 1024, "gunzip: '", name, "': its trailer says ",
              expected_size, " bytes, more than ", deflate_size, " compressed bytes can hold");
  LOUPE_CHECK(expected_size <= uint32_t(std::numeric_limits<int>::max()), "gunzip: '", name, "': its trailer says ",
              expected_size, " bytes; files that decompress to 2 GiB or more are not supported");
  std::vector<uint8_t> result(std::max<size_t>(expected_size, 1));
  const int out_len = stbi_zlib_decode_noheader_buffer(reinterpret_cast<char*>(result.data()), int(expected_size),
                                                       reinterpret_cast<const char*>(&gz[pos]), int(deflate_size));
  LOUPE_CHECK(out_len >= 0, "gunzip: '", name, "' has a corrupt deflate stream or decompresses to more than the ",
              expected_size, " bytes its trailer says");
  result.resize(size_t(out_len));
  LOUPE_CHECK(uint32_t(result.size()) == expected_size, "gunzip: '", name, "' decompressed to ", result.size(),
              " bytes, its trailer says ", expected_size);
  LOUPE_CHECK(crc32(result.data(), result.size()) == expected_crc, "gunzip: '", name, "' fails its CRC-32 check");
  return result;
}

std::vector<uint8_t> read_gzip_file(const std::string& path) { return gunzip(read_file_bytes(path), path); }

}  // namespace loupe::nn
