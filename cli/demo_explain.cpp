// The demo's explanation step. See demo_explain.hpp.
#include "cli/demo_explain.hpp"

#include <chrono>
#include <exception>
#include <iostream>

#include "explain/report.hpp"
#include "nn/checkpoint.hpp"
#include "tensor/error.hpp"
#include "tensor/ops.hpp"

namespace loupe::cli {

namespace {

constexpr int64_t kMaxImages = 6;

std::string run(const std::string& checkpoint, const Tensor& images, const std::vector<int64_t>& targets,
                const std::string& out_dir, const std::string& baseline) {
  nn::ModelInfo info;
  std::shared_ptr<nn::Module> model = nn::load_model(checkpoint, &info);
  const Shape input_shape = {info.in_channels, info.image_size, info.image_size};
  const int64_t per_image = shape_numel(input_shape);
  LOUPE_CHECK(images.defined() && images.dim() >= 2 && images.size(0) > 0, "demo: no images to explain");
  LOUPE_CHECK(images.numel() == images.size(0) * per_image, "demo: images of shape ", shape_str(images.shape()),
              " do not fit the model input ", shape_str(input_shape));
  LOUPE_CHECK(targets.empty() || static_cast<int64_t>(targets.size()) >= std::min(images.size(0), kMaxImages),
              "demo: ", targets.size(), " targets for ", images.size(0), " images");
  const Tensor batch = ops::reshape(ops::to_dtype(images, DType::f32), {images.size(0), info.in_channels,
                                                                          info.image_size, info.image_size});

  std::vector<explain::ReportInput> inputs;
  for (int64_t i = 0; i < std::min(images.size(0), kMaxImages); ++i) {
    explain::ReportInput in;
    in.name = "test" + std::to_string(i);
    in.source = "test image " + std::to_string(i);
    in.input = ops::contiguous(ops::select(batch, 0, i));
    in.display = explain::unnormalise(in.input, info);
    in.target = targets.empty() ? "predicted" : std::to_string(targets[static_cast<size_t>(i)]);
    inputs.push_back(std::move(in));
  }

  explain::ReportOptions options;
  options.methods = explain::parse_methods("all");
  options.steps = 10;
  options.samples = 0;   // each method's default: SmoothGrad 50, LIME/C-LIME/KernelSHAP 1000, Shapley 25 orders
  options.grid = "7x7";  // 4x4-pixel patches of the 28x28 images
  options.internal_batch = 64;
  options.baseline_kind = explain::parse_baseline(baseline);
  options.title = "loupe demo: explanations of test images";
  options.checkpoint = checkpoint;
  const auto start = std::chrono::steady_clock::now();
  const explain::Report report = explain::explain_to_folder(*model, info, inputs, options, out_dir);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::cout << "explanations: " << report.images.size() << " test images x " << options.methods.size()
            << " methods in " << static_cast<int>(seconds * 10) / 10.0 << " s, heatmaps in " << out_dir
            << "/ (baseline: " << explain::baseline_name(options.baseline_kind) << "; open " << out_dir
            << "/report.html)\n";
  return out_dir + "/report.html";
}

}  // namespace

std::string explain_demo(const std::string& checkpoint, const Tensor& images, const std::vector<int64_t>& targets,
                         const std::string& out_dir, const std::string& baseline) {
  try {
    return run(checkpoint, images, targets, out_dir, baseline);
  } catch (const std::exception& error) {
    std::cerr << "demo: explanations skipped: " << error.what() << "\n";
    return "";
  }
}

}  // namespace loupe::cli
