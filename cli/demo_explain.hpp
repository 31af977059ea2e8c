// The explanation step of `loupe demo`: after training, every attribution method of explain/ on a
// handful of test images, written as heatmaps, .npy files and report.html into one folder.
// Quick by design (IG with 10 Gauss-Legendre points; the sampling methods at their defaults, the
// mask-based ones on a 7x7 grid of 4x4-pixel patches): about ten seconds for a small ResNet at 28x28.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "tensor/tensor.hpp"

namespace loupe::cli {

// checkpoint: the trained model (nn::save_checkpoint); images: (N, C, H, W) preprocessed exactly
// like the model's inputs (flat (N, C*H*W) rows are accepted too); targets: the class to explain
// for each image (for instance its true label), or empty for the predicted class. At most 6
// images are explained. Prints the folder on stdout and returns the path of its report.html;
// on failure prints the reason on stderr and returns "" (the demo's training result stands).
// baseline: black (the default: the black picture, so IG and DeepLIFT leave Fashion-MNIST's black
// background at zero), zeros, blur, uniform or mean (explain/baselines.hpp).
std::string explain_demo(const std::string& checkpoint, const Tensor& images, const std::vector<int64_t>& targets,
                         const std::string& out_dir, const std::string& baseline = "black");

}  // namespace loupe::cli
