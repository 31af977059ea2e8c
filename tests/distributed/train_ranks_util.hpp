// What the data-parallel training tests share (test_train_ranks.cpp on CPUs, test_nccl.cpp on
// GPUs): a tiny image folder, the training options, the comparison of two checkpoints.
#pragma once

#include <doctest/doctest.h>

#include <filesystem>
#include <string>

#include "nn/data/image.hpp"
#include "tensor/io/safetensors.hpp"
#include "tests/cli_test_util.hpp"
#include "tests/support.hpp"

namespace loupe::test {

// root/{train,test}/{bright,dark}/<n>.png, 16x16 grey, 16 training images per class.
inline void write_ranks_folder(const std::string& root) {
  Generator g(5);
  for (const std::string split : {"train", "test"}) {
    for (int c = 0; c < 2; ++c) {
      for (int i = 0; i < (split == "train" ? 16 : 4); ++i) {
        Tensor image = ops::add(uniform({1, 16, 16}, 0.0, 0.4, DType::f32, &g), c == 0 ? 0.5 : 0.05);
        const std::string folder = root + "/" + split + "/" + (c == 0 ? "bright" : "dark");
        std::filesystem::create_directories(folder);
        nn::save_image(folder + "/" + std::to_string(i) + ".png", image);
      }
    }
  }
}

inline std::string train_args(const std::string& data, const std::string& out, int epochs) {
  return "--data '" + data + "' --out '" + out + "' --model resnet18 --small-input --width 4 --image-size 16 "
         "--in-channels 1 --batch-size 8 --limit-train 16 --optimizer sgd --lr 0.01 --momentum 0.9 --workers 0 --seed 7 "
         "--epochs " +
         std::to_string(epochs);
}

// Largest difference over the model's tensors of two checkpoints (float32 parameters and buffers).
inline double model_difference(const std::string& a, const std::string& b) {
  const auto left = load_safetensors(a), right = load_safetensors(b);
  double worst = 0.0;
  std::string worst_name;
  int64_t compared = 0;
  for (const auto& [name, tensor] : left) {
    if (name.rfind("model.", 0) != 0 || tensor.dtype() != DType::f32) continue;
    REQUIRE(right.count(name) == 1);
    const double difference = max_abs_diff(tensor, right.at(name));
    if (difference > worst) worst = difference, worst_name = name;
    ++compared;
  }
  CHECK(compared > 40);  // every conv, batch-norm and linear tensor of the ResNet
  if (worst > 1e-4) MESSAGE(a, " vs ", b, ": largest difference ", worst, " in ", worst_name);
  return worst;
}

inline int run_program(const std::string& prefix, const std::string& args, const std::filesystem::path& dir) {
  const std::string command = prefix + "'" + loupe_program() + "' train " + args + " > '" + (dir / "log.txt").string() +
                              "' 2>&1";
  const int status = std::system(command.c_str());
  INFO(read_text(dir / "log.txt"));
  CHECK(status == 0);
  return status;
}

}  // namespace loupe::test
