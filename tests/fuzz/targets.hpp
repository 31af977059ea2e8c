// The fuzz targets: each feeds one untrusted input to one reader, exactly as loupe reads files
// users download. A target may throw loupe::Error (the reader's refusal); anything else (another
// exception, a crash, a sanitizer finding, a hang, an allocation beyond the fuzzer's limit) is a
// bug. Used by the libFuzzer programs (fuzz_main.cpp, ./run fuzz) and by the suite, which replays
// the seed corpus and every regression file (test_fuzz_regressions.cpp).
//
//   npy          load_npy                           (tensor/io/npy.cpp)
//   safetensors  load_safetensors + its metadata    (tensor/io/safetensors.cpp)
//   checkpoint   read_checkpoint, and for a small ResNet18 also building it and loading the weights
//   idx_gzip     gunzip (when the bytes start with the gzip magic) then parse_idx
//   csv          parse_csv
//   image        decode_image (stb: PNG, JPEG, BMP) as stored, grey and RGB
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loupe::fuzz {

// The target names, in the order of ./run fuzz.
const std::vector<std::string>& target_names();
// Runs one target on one input; returns normally or throws loupe::Error.
void run_target(const std::string& name, const uint8_t* data, size_t size);
// Sets the limits a fuzzing process runs with (LOUPE_MAX_TENSOR_BYTES = 4 MiB, one thread) once.
void init_fuzzing();

}  // namespace loupe::fuzz
