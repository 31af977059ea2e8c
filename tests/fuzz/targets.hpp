// The fuzz targets: each feeds one untrusted input to one reader, exactly as loupe reads files
// users download. A target may throw loupe::Error (the reader's refusal); anything else (another
// exception, a crash, a sanitizer finding, a hang, an allocation beyond the fuzzer's limit) is a
// bug. Used by the libFuzzer programs (fuzz_main.cpp, ./run fuzz) and by the suite, which replays
// the seed corpus and every regression file (test_fuzz_regressions.cpp).
//
//   npy          load_npy                           (tensor/io/npy.cpp)
//   safetensors  load_safetensors + its metadata    (tensor/io/safetensors.cpp)
//   checkpoint   read_checkpoint, and for a small ResNet18 also loading the weights into the model
//                (built once per configuration and kept)
//   idx_gzip     gunzip (when the bytes start with the gzip magic) then parse_idx
//   csv          parse_csv
//   image        decode_image (stb: PNG, JPEG, BMP) as stored, grey or RGB (chosen by the length)
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loupe::fuzz {

// The target names, in the order of ./run fuzz.
const std::vector<std::string>& target_names();
// Runs one target on one input; returns normally or throws loupe::Error. A fuzzer decodes an image
// in one channel mode per input; `every_mode` (the suite's replay) decodes it in all three.
void run_target(const std::string& name, const uint8_t* data, size_t size, bool every_mode = false);
// Sets the limits a fuzzing process of target `name` runs with: one thread, LOUPE_MAX_TENSOR_BYTES
// 64 KiB for image and 4 MiB for the others. Without a name (the suite's replay) 4 MiB for every
// target, the limit the recorded finds were made under.
void init_fuzzing(const std::string& name = "");

}  // namespace loupe::fuzz
