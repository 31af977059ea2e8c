// Model checkpoints. See serialization.hpp.
#include "nn/serialization.hpp"

#include "tensor/io/safetensors.hpp"

namespace loupe::nn {

void save_state_dict(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata) {
  StateDict state = module.state_dict();
  for (auto& [name, tensor] : state) tensor = ops::to_device(tensor, Device::cpu());  // files hold CPU tensors
  save_safetensors(path, state, metadata);
}

LoadResult load_state_dict(Module& module, const std::string& path, bool strict) {
  const StateDict state = load_safetensors(path);
  try {
    return module.load_state_dict(state, strict);
  } catch (const Error& e) {
    throw Error(std::string(e.what()) + " (file " + path + ")");
  }
}

}  // namespace loupe::nn
