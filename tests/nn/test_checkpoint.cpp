// Checkpoints: a model saved with its metadata comes back with the same outputs; files that are
// not loupe checkpoints are rejected with the file named.
#include <doctest/doctest.h>

#include <filesystem>

#include "nn/checkpoint.hpp"
#include "nn/models/zoo.hpp"
#include "nn/serialization.hpp"
#include "tests/support.hpp"

namespace loupe::test {

TEST_CASE("checkpoint: save, read metadata, rebuild the model with identical outputs") {
  const auto dir = std::filesystem::temp_directory_path() / "loupe_test_checkpoint";
  std::filesystem::create_directories(dir);
  const std::string path = (dir / "resnet18.safetensors").string();
  Generator gen(5);
  auto model = nn::make_model("resnet18", 3, 1, &gen);
  model->eval();
  nn::ModelInfo info;
  info.model = "resnet18";
  info.num_classes = 3;
  info.in_channels = 1;
  info.image_size = 64;
  info.labels = {"covid19", "pneumonia", "no_finding"};
  info.multilabel = true;
  info.mean = {0.5};
  info.std = {0.25};
  nn::save_checkpoint(path, *model, info, {{"optimizer.step", scalar_tensor(7, DType::i64)}}, {{"train.epoch", "2"}});

  nn::ModelInfo loaded_info;
  auto loaded = nn::load_model(path, &loaded_info);
  CHECK(loaded_info.labels == info.labels);
  CHECK(loaded_info.multilabel);
  CHECK(loaded_info.mean == std::vector<double>{0.5});
  CHECK(loaded_info.image_size == 64);
  const Tensor x = random_tensor({2, 1, 64, 64});
  NoGradGuard no_grad;
  check_close((*loaded)(x), (*model)(x), 0, 0, "reloaded logits");

  const nn::Checkpoint raw = nn::read_checkpoint(path);
  CHECK(raw.metadata.at("train.epoch") == "2");
  CHECK(raw.tensors.at("optimizer.step").item() == 7);

  // A plain state-dict file is not a checkpoint: the error names the file and the missing entry.
  const std::string plain = (dir / "plain.safetensors").string();
  nn::save_state_dict(*model, plain);
  CHECK_THROWS_WITH_AS(nn::load_model(plain), doctest::Contains("plain.safetensors"), Error);
  std::filesystem::remove_all(dir);
}

}  // namespace loupe::test
