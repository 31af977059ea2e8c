// Building and loading the study's models. Like nn::build_model / nn::load_model, except for
// InceptionV3 below 299 px: its auxiliary head needs Mixed_6e maps of at least 17x17 (an input of
// 299 px or more) in training, so there the study builds it without the head (torchvision's
// aux_logits=False; the Trainer then trains the main logits only). Such a checkpoint has no
// AuxLogits.* tensors and metadata study.aux_logits = 0; load_study_model reads both kinds.
#pragma once

#include <memory>
#include <string>

#include "nn/checkpoint.hpp"

namespace loupe::study {

// Whether the study builds this model with InceptionV3's auxiliary head.
bool uses_aux_head(const nn::ModelInfo& info);
std::shared_ptr<nn::Module> build_study_model(const nn::ModelInfo& info, Generator* generator = nullptr);
// The model of a study checkpoint, in eval mode; info_out gets its ModelInfo.
std::shared_ptr<nn::Module> load_study_model(const std::string& path, nn::ModelInfo* info_out = nullptr);

}  // namespace loupe::study
