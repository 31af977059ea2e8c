// safetensors files: named tensors plus optional string metadata (the format of Hugging Face
// checkpoints and of loupe's own).
//
// Layout: an 8-byte little-endian header length N, N bytes of JSON
//   {"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}, ...}
// (possibly padded with trailing spaces), then the data buffer; offsets are relative to the
// buffer's start.
// Reading checks everything against the file and raises loupe::Error naming the file and the
// problem: bad header length, bad JSON, unknown dtypes, shape * itemsize != byte length, offsets
// out of the buffer, overlapping or out-of-order tensors or gaps between them (the buffer must
// be covered exactly, as the reference implementation requires), a truncated file.
// Dtypes: F32, F64, I64, BOOL; F16 and BF16 load into f16/bf16 storage tensors (and save back).
// Writing sorts tensors by element size (largest first) then name, so every tensor is aligned to
// its element size when the file is memory-mapped, and pads the header with spaces to a multiple
// of 8. The write is atomic (temporary file beside `path`, then rename).
// Tests: tests/tensor/test_io.cpp
#pragma once

#include <map>
#include <memory>
#include <string>

#include "tensor/tensor.hpp"

namespace loupe {

std::map<std::string, Tensor> load_safetensors(const std::string& path);
// The "__metadata__" entries of a file (empty when it has none). Validates the whole header.
std::map<std::string, std::string> load_safetensors_metadata(const std::string& path);

// One open file whose header is parsed and checked once, for a caller that wants both the metadata
// and the tensors (a checkpoint: its metadata says which model the tensors belong to, and a file
// of the wrong kind should be refused before its tensors are read). Parsing a ResNet's header is
// most of the cost of opening a small checkpoint, so it is not done twice.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(const std::string& path);  // opens the file and checks its header
  ~SafetensorsReader();
  SafetensorsReader(const SafetensorsReader&) = delete;
  SafetensorsReader& operator=(const SafetensorsReader&) = delete;

  const std::map<std::string, std::string>& metadata() const;
  std::map<std::string, Tensor> read_tensors();  // reads the data buffer

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// tensors: any layout, on the CPU. The name "__metadata__" is reserved.
void save_safetensors(const std::string& path, const std::map<std::string, Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace loupe
