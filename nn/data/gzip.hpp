// Reading .gz files (RFC 1952) without zlib: the gzip wrapper is parsed here and the deflate
// stream inflated by stb_image's zlib decoder, which loupe already carries for PNG decoding.
// Tests: tests/nn/test_data.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace loupe::nn {

// The whole decompressed content of a gzip file; checks the size and CRC-32 in the trailer.
std::vector<uint8_t> read_gzip_file(const std::string& path);
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& compressed, const std::string& name);

// Whole file as bytes (throws loupe::Error naming the file when it cannot be read).
std::vector<uint8_t> read_file_bytes(const std::string& path);

}  // namespace loupe::nn
