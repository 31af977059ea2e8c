// The model zoo by name: make_model("resnet18", num_classes, in_channels) and the list of names.
// Parameter counts with 1000 classes and 3 channels (REFERENCE.md section 6, torchvision / timm):
//   resnet18 11,689,512   resnet34 21,797,672   densenet121 7,978,856   densenet161 28,681,000
//   inception_v3 27,161,264 (23,834,568 without the auxiliary head)   inception_resnet_v2 55,843,464
// Tests: tests/nn/models/test_models.cpp
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "nn/models/densenet.hpp"
#include "nn/models/inception_resnet_v2.hpp"
#include "nn/models/inception_v3.hpp"
#include "nn/models/resnet.hpp"

namespace loupe::nn {

std::vector<std::string> model_names();
// Raises loupe::Error for an unknown name (listing the known ones) or bad options.
std::shared_ptr<Module> make_model(const std::string& name, int64_t num_classes = 1000, int64_t in_channels = 3,
                                   Generator* generator = nullptr);

}  // namespace loupe::nn
