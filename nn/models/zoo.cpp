// The model zoo by name. See zoo.hpp.
#include "nn/models/zoo.hpp"

namespace loupe::nn {

std::vector<std::string> model_names() {
  return {"resnet18", "resnet34", "densenet121", "densenet161", "inception_v3", "inception_resnet_v2"};
}

std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes, int64_t in_channels,
                                   Generator* generator) {
  const ModelOptions options{num_classes, in_channels, generator};
  if (name == "resnet18") return resnet18(options);
  if (name == "resnet34") return resnet34(options);
  if (name == "densenet121") return densenet121(options);
  if (name == "densenet161") return densenet161(options);
  if (name == "inception_v3") return inception_v3(options);
  if (name == "inception_resnet_v2") return inception_resnet_v2(options);
  std::string known;
  for (const std::string& n : model_names()) known += (known.empty() ? "" : ", ") + n;
  LOUPE_CHECK(false, "make_model: unknown model '", name, "' (known: ", known, ")");
  return nullptr;
}

}  // namespace loupe::nn
