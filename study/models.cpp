// The study's models. See models.hpp.
#include "study/models.hpp"

#include "nn/models/zoo.hpp"
#include "tensor/error.hpp"

namespace loupe::study {

bool uses_aux_head(const nn::ModelInfo& info) { return info.model != "inception_v3" || info.image_size >= 299; }

std::shared_ptr<nn::Module> build_study_model(const nn::ModelInfo& info, Generator* generator) {
  if (uses_aux_head(info)) return nn::build_model(info, generator);
  nn::InceptionV3Options v3;
  v3.aux_logits = false;
  return nn::inception_v3(nn::ModelOptions{info.num_classes, info.in_channels, generator}, v3);
}

std::shared_ptr<nn::Module> load_study_model(const std::string& path, nn::ModelInfo* info_out) {
  const nn::Checkpoint checkpoint = nn::read_checkpoint(path);
  std::shared_ptr<nn::Module> model = build_study_model(checkpoint.info);
  nn::StateDict state;
  const std::string prefix = "model.";
  for (const auto& [name, tensor] : checkpoint.tensors)
    if (name.rfind(prefix, 0) == 0) state[name.substr(prefix.size())] = tensor;
  try {
    model->load_state_dict(state, /*strict=*/true);
  } catch (const Error& error) {
    throw Error("study: '" + path + "': " + error.what());
  }
  model->eval();
  if (info_out) *info_out = checkpoint.info;
  return model;
}

}  // namespace loupe::study
