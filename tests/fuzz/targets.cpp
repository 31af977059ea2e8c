// The fuzz targets. See targets.hpp.
#include "tests/fuzz/targets.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <memory>

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

// The models the checkpoint target has built, one per configuration (build_model's inputs). Building
// a ResNet18 (initialising its weights) costs far more than parsing the file, so it is done once per
// configuration and later inputs only load their weights into it: the parse and the strict
// name/shape check of the weights, which is what untrusted files reach, run at every execution.
std::shared_ptr<nn::Module> cached_model(const nn::ModelInfo& info) {
  static std::map<std::string, std::shared_ptr<nn::Module>> models;
  const std::string key = info.model + "/" + std::to_string(info.num_classes) + "/" +
                          std::to_string(info.in_channels) + "/" + std::to_string(info.small_input) + "/" +
                          std::to_string(info.width);
  auto it = models.find(key);
  if (it != models.end()) return it->second;
  if (models.size() >= 256) models.clear();  // bounds the memory over millions of executions
  std::shared_ptr<nn::Module> model = nn::build_model(info);
  models.emplace(key, model);
  return model;
}

void checkpoint_target(const uint8_t* data, size_t size) {
  const std::string path = as_file(data, size);
  const nn::Checkpoint checkpoint = nn::read_checkpoint(path);
  // Only small ResNet18s (the seeds' kind) are built: a large one would take seconds per input.
  const nn::ModelInfo& info = checkpoint.info;
  if (info.model == "resnet18" && info.width <= 4 && info.num_classes <= 16 && info.image_size <= 64) {
    nn::load_checkpoint_weights(*cached_model(info), checkpoint, path);
  }
}

}  // namespace

const std::vector<std::string>& target_names() {
  static const std::vector<std::string> names = {"npy", "safetensors", "checkpoint", "idx_gzip", "csv", "image"};
  return names;
}

void run_target(const std::string& name, const uint8_t* data, size_t size, bool every_mode) {
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
    // One decode per input (each decode runs the same stb code; the channel modes differ only in the
    // conversion after it), the mode chosen by the input's length so that all three are reached.
    static constexpr nn::ImageChannels kModes[] = {nn::ImageChannels::as_stored, nn::ImageChannels::grey,
                                                   nn::ImageChannels::rgb};
    const std::vector<uint8_t> bytes(data, data + size);
    if (!every_mode) {
      (void)nn::decode_image(bytes, "input", kModes[size % 3]);
    } else {
      for (const nn::ImageChannels mode : kModes) (void)nn::decode_image(bytes, "input", mode);
    }
  } else {
    throw Error("fuzz: unknown target '" + name + "'");
  }
}

void init_fuzzing(const std::string& name) {
  // Small limits keep every execution fast: the readers' checks against the limit run the same way
  // whatever its value, and a decoded image above 64 KiB (about 5400 pixels as float RGB) mostly
  // repeats the decoders' inner loops (the image fuzzer ran at 127 executions/s with 4 MiB).
  ::setenv("LOUPE_MAX_TENSOR_BYTES", name == "image" ? "64K" : "4M", 1);
  set_num_threads(1);
}

}  // namespace loupe::fuzz
