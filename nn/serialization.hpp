// Model checkpoints as safetensors files (tensor/io/safetensors.hpp): the state dict (parameters
// and persistent buffers under their PyTorch names) plus optional string metadata. A file written
// by PyTorch (safetensors.torch.save_file(model.state_dict(), path)) loads unchanged, and the
// other way round.
// Tests: tests/nn/models/test_module.cpp
#pragma once

#include <map>
#include <string>

#include "nn/module.hpp"

namespace loupe::nn {

// Writes module.state_dict() (atomically: a failed write leaves no partial file).
void save_state_dict(const Module& module, const std::string& path, const std::map<std::string, std::string>& metadata = {});
// Reads a file and loads it with module.load_state_dict(state, strict). Errors name the file.
LoadResult load_state_dict(Module& module, const std::string& path, bool strict = true);

}  // namespace loupe::nn
