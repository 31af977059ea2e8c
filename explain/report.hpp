// Explanation reports: run attribution methods on a few images of a trained model and write
// everything a reader (or a script) needs into one folder.
//
// For each image <name> and each requested method <m> the folder gets
//   <name>_input.png                the image as the model saw it (resized and padded, before normalisation)
//   <name>_<m>.npy                  the attribution, (C, H, W) float32, shaped like the model input
//   <name>_<m>.png                  the heatmap alone (diverging colours for signed methods,
//                                   sequential colours for absolute ones; heatmap.hpp)
//   <name>_<m>_overlay.png          the heatmap blended over the input
//   <name>_mask.png                 the feature mask over the input (LIME, KernelSHAP, ... only)
// and, where one image has several targets (all-positive on a multilabel model, or a list),
// <name>_<label>_<m>... instead. report.html shows all of it on one page (images referenced
// relatively, so the folder can be moved), and report_json() gives the same as data.
//
// Preprocessing follows the checkpoint's ModelInfo exactly as training did: grey or RGB by
// in_channels, resize_pad to image_size, normalize with mean/std.
// Used by `loupe explain` (cli/explain.cpp) and the demo (cli/demo_explain.cpp).
// Tests: tests/explain/test_report.cpp
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "explain/attribution.hpp"
#include "explain/baselines.hpp"
#include "nn/checkpoint.hpp"

namespace loupe::explain {

// The methods a report can run, in report order.
enum class MethodKind {
  saliency,              // |gradient| (absolute map)
  input_x_gradient,      // "ixg": (x - x') * gradient, relative to the report's baseline (zeros: Captum's)
  guided_backprop,       // "guided"
  deconvolution,         // "deconv"
  integrated_gradients,  // "ig": Gauss-Legendre, `steps` points
  deeplift,              // rescale rule
  smoothgrad,            // noise tunnel over saliency, `samples` samples (absolute map)
  smoothgrad_sq,         // SmoothGrad^2 over saliency (absolute map)
  vargrad,               // VarGrad over saliency (absolute map)
  occlusion,             // sliding window (`window`, `stride`) set to the baseline
  feature_ablation,      // "ablation": each feature of the mask (`grid`) set to the baseline
  lime,                  // weighted Lasso over Bernoulli coalitions of the mask's features
  clime,                 // least squares over Gaussian noise per feature of the mask
  kernel_shap,           // "kernelshap": Shapley-kernel regression over sampled coalitions
  shapley_sampling,      // "shapley": Shapley value sampling over random feature orders
};

// Does the method work on the features of a feature mask (`grid`)?
bool uses_feature_mask(MethodKind kind);

struct MethodInfo {
  MethodKind kind;
  std::string name;   // short name, used in file names and on the command line
  std::string title;  // shown in the report
  bool is_signed;     // signed map (sum over channels, diverging colours) or absolute
};

const std::vector<MethodInfo>& report_methods();
const MethodInfo& method_info(MethodKind kind);
// "saliency,ig,smoothgrad" -> kinds, in the order given; also the long names (integrated_gradients,
// input_x_gradient, guided_backprop, deconvolution) and "all". Raises on an unknown or repeated name.
std::vector<MethodKind> parse_methods(const std::string& list);

struct ReportOptions {
  std::vector<MethodKind> methods = {MethodKind::saliency, MethodKind::integrated_gradients};
  // "auto" (all-positive on multilabel models, predicted otherwise), "predicted" (the top class),
  // "all-positive" (every label with sigmoid >= 0.5; the top one when none is), or a comma list
  // of class indices and/or label names.
  std::string target = "auto";
  // The explained output; unset: sigmoid on multilabel models (one label at a time), logit otherwise.
  std::optional<Output> output;
  int64_t steps = 50;            // integrated gradients
  // Samples of the sampling methods; 0: each method's default (smoothgrad family 50, LIME, C-LIME
  // and KernelSHAP 1000, Shapley value sampling 25 feature orders).
  int64_t samples = 0;
  double noise = 0.15;           // their noise, as a fraction of each input's value range
  int64_t internal_batch = 16;   // rows per forward/backward pass (IG steps, noisy samples)
  // Occlusion: square window and stride in pixels (over all channels); 0: about 15 and 8 pixels
  // per 224 of the image size (Captum's study settings), at least 3 and 2.
  int64_t window = 0;
  int64_t stride = 0;
  // Features of the mask-based methods: "RxC" (a grid of rectangles) or "slic:N" (about N SLIC
  // superpixels of the displayed image); explain/feature_masks.hpp.
  std::string grid = "8x8";
  int64_t perturbations_per_eval = 0;  // perturbed copies per forward pass; 0: as many as fit 64 MiB
  // The baseline of IG, DeepLIFT and the perturbation methods (explain/baselines.hpp): black
  // (the picture 0, normalised; the default), zeros (0 after normalisation: grey), blur, uniform
  // or mean (data_mean in pixel space; empty: the normalisation's mean). `baseline`, when defined,
  // overrides the kind: a tensor broadcastable to the (normalised) model input (C, H, W).
  BaselineKind baseline_kind = BaselineKind::black;
  std::vector<double> data_mean;
  Tensor baseline;
  double clip_percentile = 99.0;
  double alpha = 0.8;            // overlay opacity where |map| = 1 (heatmap.hpp)
  uint64_t seed = 0;             // noise of the smoothgrad family
  std::string title = "loupe explain";  // heading of report.html
  std::string checkpoint;        // shown in the report (the path it was loaded from)
  // Called after each attribution with (done, total); total is known before the first call.
  std::function<void(int64_t done, int64_t total)> progress;
};

// One image to explain.
struct ReportInput {
  std::string name;    // file-name stem (made safe and unique by explain_to_folder)
  std::string source;  // where it came from, shown in the report
  Tensor input;        // (C, H, W) model input, preprocessed
  Tensor display;      // (1 or 3, H, W) the same picture in [0, 1], for the overlays; undefined: unnormalise(input)
  std::string target;  // this image's target, same grammar as ReportOptions::target; empty: the options'
};

// An image (C, H, W) or (H, W) in [0, 1] -> the model input (C, S, S) per the ModelInfo; the
// resized picture before normalisation goes to *display when given.
Tensor preprocess_image(const Tensor& image, const nn::ModelInfo& info, Tensor* display = nullptr);
// The inverse of the normalisation: a model input back to a picture in [0, 1] (clamped).
Tensor unnormalise(const Tensor& input, const nn::ModelInfo& info);
// Reads an image file (PNG, JPEG, BMP, ...) or a .npy array holding an image ((H, W), (C, H, W) or
// (1, C, H, W), values in [0, 1]) and preprocesses it. Errors name the file.
ReportInput load_report_input(const std::string& path, const nn::ModelInfo& info);

struct ReportAttribution {
  std::string method;      // short name
  std::string npy, map_png, overlay_png;  // file names, relative to the folder
  bool is_signed = true;
  double total = 0.0;      // sum of the attribution
  double delta = 0.0;      // completeness delta (IG, DeepLIFT); NaN where the method has none
  double seconds = 0.0;
};

struct ReportTarget {
  int64_t index = 0;
  std::string label;
  double probability = 0.0;  // of this class (sigmoid or softmax, as the model was trained)
  std::vector<ReportAttribution> attributions;  // in method order
};

struct ReportImage {
  std::string name, source;
  std::string input_png;              // relative to the folder
  std::string mask_png;               // the feature mask over the input; empty when no method used one
  int64_t features = 0;               // number of features of that mask
  std::vector<double> probabilities;  // (K) sigmoid (multilabel) or softmax
  int64_t predicted = 0;              // argmax
  std::vector<ReportTarget> targets;
};

struct Report {
  std::string title;
  std::string model;                // zoo name
  std::string checkpoint;           // path, as given
  bool multilabel = false;
  std::vector<std::string> labels;  // K names (indices when the checkpoint has none)
  Output output = Output::logit;
  ReportOptions options;            // as run (progress callback dropped)
  std::vector<ReportImage> images;
  std::string folder;
  int64_t image_size = 0;           // side of the model input, in pixels
};

// Runs every method on every image and writes the files above plus report.html into `folder`
// (created if missing). The model is used as it is (load_model gives it in eval mode).
Report explain_to_folder(nn::Module& model, const nn::ModelInfo& info, const std::vector<ReportInput>& inputs,
                         const ReportOptions& options, const std::string& folder);

// The report page (one HTML file; images referenced by relative name).
std::string report_html(const Report& report);
// The same as JSON: settings, per image the probabilities and per target and method the files,
// sum and delta.
std::string report_json(const Report& report);

// The sample count a method uses under these options (options.samples, or the method's default).
int64_t method_samples(MethodKind kind, const ReportOptions& options);
// The occlusion window and stride in pixels for an image of this size under these options.
int64_t occlusion_window(const ReportOptions& options, int64_t image_size);
int64_t occlusion_stride(const ReportOptions& options, int64_t image_size);
// The (H, W) int64 feature mask options.grid describes, for a picture (C, H, W) in [0, 1].
Tensor report_feature_mask(const ReportOptions& options, const Tensor& picture);

// The baseline's name for reports and JSON: "file" for a tensor, else baseline_name(kind).
std::string report_baseline_name(const ReportOptions& options);

// Runs one report method on a query under these options (what explain_to_folder runs for each
// method): `mask` is the (1, H, W) feature mask of the mask-based methods (undefined for the
// others), `image_size` sizes the default occlusion window, `generator` feeds the sampling methods.
Attribution run_report_method(MethodKind kind, const Query& query, const ReportOptions& options, Generator& generator,
                              const Tensor& mask, int64_t image_size);

// Writes text to a file atomically (a temporary file beside it, renamed once complete).
void write_text_file(const std::string& path, const std::string& text);

}  // namespace loupe::explain
