// The fuzz targets. See targets.hpp.
#include "tests/fuzz/targets.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>

#include "nn/checkpoint.hpp"
#include "nn/data/csv.hpp"
#include "nn/data/gzip.hpp"
#include "nn/data/idx.hpp"
#include "nn/data/image.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/io/safetensors.hpp"
#include "tensor/parallel.hpp"

namespace loupe::fuzz {

namespace {

// The readers take a path: the input goes to an in-memory file (memfd) that they open as
// /proc/self/fd/N, so no disk is touched per execution.
std::string as_file(const uint8_t* data, size_t size) {
  static const int fd = ::memfd_create("loupe-fuzz-input", 0);
  LOUPE_CHECK(fd >= 0, "fuzz: memfd_create failed");
  LOUPE_CHECK(::ftruncate(fd, 0) == 0, "fuzz: ftruncate failed");
  size_t done = 0;
  while (done < size) {
    const ssize_t n = ::pwrite(fd, data + done, size - done, static_cast<off_t>(done));
    LOUPE_CHECK(n > 0, "fuzz: pwrite failed");
    done += static_cast<size_t>(n);
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

void checkpoint_target(const uint8_t* data, size_t size) {
  const std::string path = as_file(data, size);
  const nn::Checkpoint checkpoint = nn::read_checkpoint(path);
  // Building a model costs milliseconds to seconds: only the small ResNet18s of the seeds are built
  // and loaded (that is where the tensors' names and shapes are checked against the model).
  const nn::ModelInfo& info = checkpoint.info;
  if (info.model == "resnet18" && info.width <= 4 && info.num_classes <= 16 && info.image_size <= 64) {
    (void)nn::load_model(path);
  }
}

}  // namespace

const std::vector<std::string>& target_names() {
  static const std::vector<std::string> names = {"npy", "safetensors", "checkpoint", "idx_gzip", "csv", "image"};
  return names;
}

void run_target(const std::string& name, const uint8_t* data, size_t size) {
  if (name == "npy") {
    (void)load_npy(as_file(data, size));
  } else if (name == "safetensors") {
    const std::string path = as_file(data, size);
    (void)load_safetensors_metadata(path);
    (void)load_safetensors(path);
  } else if (name == "checkpoint") {
    checkpoint_target(data, size);
  } else if (name == "idx_gzip") {
    std::vector<uint8_t> bytes(data, data + size);
    if (size >= 2 && data[0] == 0x1f && data[1] == 0x8b) bytes = nn::gunzip(bytes, "input.gz");
    (void)nn::parse_idx(bytes, "input", DType::f32);
  } else if (name == "csv") {
    (void)nn::parse_csv(std::string(reinterpret_cast<const char*>(data), size), "input.csv");
  } else if (name == "image") {
    const std::vector<uint8_t> bytes(data, data + size);
    (void)nn::decode_image(bytes, "input", nn::ImageChannels::as_stored);
    (void)nn::decode_image(bytes, "input", nn::ImageChannels::grey);
    (void)nn::decode_image(bytes, "input", nn::ImageChannels::rgb);
  } else {
    throw Error("fuzz: unknown target '" + name + "'");
  }
}

void init_fuzzing() {
  ::setenv("LOUPE_MAX_TENSOR_BYTES", "4M", 1);  // small: decoding huge images slows the fuzzer
  set_num_threads(1);
}

}  // namespace loupe::fuzz
