// Explanation reports: preprocessing, running the methods, writing .npy/.png files, the HTML page
// and the JSON summary. See report.hpp.
#include "explain/report.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <set>
#include <sstream>

#include "autograd/grad_mode.hpp"
#include "explain/explain.hpp"
#include "explain/feature_masks.hpp"
#include "explain/heatmap.hpp"
#include "nn/data/image.hpp"
#include "nn/data/transforms.hpp"
#include "report/files.hpp"
#include "report/html.hpp"
#include "tensor/error.hpp"
#include "tensor/io/json.hpp"
#include "tensor/io/npy.hpp"
#include "tensor/ops.hpp"

namespace loupe::explain {

namespace fs = std::filesystem;

// --- methods -------------------------------------------------------------------------------------

const std::vector<MethodInfo>& report_methods() {
  static const std::vector<MethodInfo> methods = {
      {MethodKind::saliency, "saliency", "Saliency (|gradient|)", false},
      {MethodKind::input_x_gradient, "ixg", "Input x gradient", true},
      {MethodKind::guided_backprop, "guided", "Guided backprop", true},
      {MethodKind::deconvolution, "deconv", "Deconvolution", true},
      {MethodKind::integrated_gradients, "ig", "Integrated gradients", true},
      {MethodKind::deeplift, "deeplift", "DeepLIFT (rescale)", true},
      {MethodKind::smoothgrad, "smoothgrad", "SmoothGrad (saliency)", false},
      {MethodKind::smoothgrad_sq, "smoothgrad_sq", "SmoothGrad^2 (saliency)", false},
      {MethodKind::vargrad, "vargrad", "VarGrad (saliency)", false},
      {MethodKind::occlusion, "occlusion", "Occlusion", true},
      {MethodKind::feature_ablation, "ablation", "Feature ablation", true},
      {MethodKind::lime, "lime", "LIME", true},
      {MethodKind::clime, "clime", "C-LIME", true},
      {MethodKind::kernel_shap, "kernelshap", "KernelSHAP", true},
      {MethodKind::shapley_sampling, "shapley", "Shapley value sampling", true},
  };
  return methods;
}

const MethodInfo& method_info(MethodKind kind) {
  for (const MethodInfo& m : report_methods())
    if (m.kind == kind) return m;
  throw Error("explain: unknown method kind");
}

bool uses_feature_mask(MethodKind kind) {
  switch (kind) {
    case MethodKind::feature_ablation:
    case MethodKind::lime:
    case MethodKind::clime:
    case MethodKind::kernel_shap:
    case MethodKind::shapley_sampling: return true;
    default: return false;
  }
}

int64_t method_samples(MethodKind kind, const ReportOptions& options) {
  if (options.samples > 0) return options.samples;
  switch (kind) {
    case MethodKind::lime:
    case MethodKind::clime:
    case MethodKind::kernel_shap: return 1000;
    case MethodKind::shapley_sampling: return 25;
    default: return 50;  // the smoothgrad family
  }
}

int64_t occlusion_window(const ReportOptions& options, int64_t image_size) {
  if (options.window > 0) return options.window;
  return std::clamp<int64_t>((image_size * 15 + 112) / 224, 3, std::max<int64_t>(image_size, 1));
}

int64_t occlusion_stride(const ReportOptions& options, int64_t image_size) {
  if (options.stride > 0) return options.stride;
  return std::max<int64_t>(2, (occlusion_window(options, image_size) + 1) / 2);
}

Tensor report_feature_mask(const ReportOptions& options, const Tensor& picture) {
  LOUPE_CHECK(picture.dim() == 3, "explain: expected a picture (C, H, W), got ", shape_str(picture.shape()));
  const std::string& grid = options.grid;
  if (grid.rfind("slic:", 0) == 0) {
    int64_t segments = 0;
    size_t used = 0;
    try {
      segments = std::stoll(grid.substr(5), &used);
    } catch (...) {
      used = 0;
    }
    LOUPE_CHECK(used > 0 && used == grid.size() - 5 && segments >= 1, "explain: --grid '", grid,
                "' needs a positive number of superpixels after 'slic:' (e.g. slic:100)");
    return slic_feature_mask(picture, segments);
  }
  const GridSize size = parse_grid(grid);
  LOUPE_CHECK(size.rows <= picture.size(1) && size.cols <= picture.size(2), "explain: --grid ", grid,
              " has more cells than the ", picture.size(1), "x", picture.size(2), " image has pixels");
  return grid_feature_mask(picture.size(1), picture.size(2), size.rows, size.cols);
}

std::vector<MethodKind> parse_methods(const std::string& list) {
  static const std::map<std::string, MethodKind> aliases = {
      {"input_x_gradient", MethodKind::input_x_gradient},
      {"guided_backprop", MethodKind::guided_backprop},
      {"deconvolution", MethodKind::deconvolution},
      {"integrated_gradients", MethodKind::integrated_gradients},
      {"smoothgrad2", MethodKind::smoothgrad_sq},
      {"feature_ablation", MethodKind::feature_ablation},
      {"c-lime", MethodKind::clime},
      {"kernel_shap", MethodKind::kernel_shap},
      {"shapley_sampling", MethodKind::shapley_sampling},
  };
  std::vector<MethodKind> out;
  std::stringstream items(list);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty()) continue;
    if (item == "all") {
      for (const MethodInfo& m : report_methods())
        if (std::find(out.begin(), out.end(), m.kind) == out.end()) out.push_back(m.kind);
      continue;
    }
    std::optional<MethodKind> kind;
    for (const MethodInfo& m : report_methods())
      if (m.name == item) kind = m.kind;
    if (auto it = aliases.find(item); !kind && it != aliases.end()) kind = it->second;
    if (!kind) {
      std::string known;
      for (const MethodInfo& m : report_methods()) known += (known.empty() ? "" : ", ") + m.name;
      throw Error("explain: unknown method '" + item + "' (known: " + known + ", all)");
    }
    LOUPE_CHECK(std::find(out.begin(), out.end(), *kind) == out.end(), "explain: method '", item,
                "' is listed twice");
    out.push_back(*kind);
  }
  LOUPE_CHECK(!out.empty(), "explain: no method given in '", list, "'");
  return out;
}

// --- inputs --------------------------------------------------------------------------------------

Tensor preprocess_image(const Tensor& image, const nn::ModelInfo& info, Tensor* display) {
  LOUPE_CHECK(image.defined() && (image.dim() == 2 || image.dim() == 3),
              "explain: expected an image (C, H, W) or (H, W), got ",
              image.defined() ? shape_str(image.shape()) : std::string("nothing"));
  Tensor picture = ops::to_dtype(image.dim() == 2 ? ops::unsqueeze(image, 0) : image, DType::f32);
  LOUPE_CHECK(picture.size(0) == 1 || picture.size(0) == 3, "explain: an image has 1 or 3 channels, got ",
              shape_str(picture.shape()));
  LOUPE_CHECK(info.in_channels == 1 || info.in_channels == 3, "explain: the model takes ", info.in_channels,
              " channels; only 1 (grey) and 3 (RGB) are supported");
  picture = info.in_channels == 1 ? nn::to_grey(picture) : nn::to_rgb(picture);
  picture = ops::contiguous(nn::resize_pad(picture, info.image_size));
  if (display) *display = ops::clamp(picture, 0.0, 1.0);
  return ops::contiguous(nn::normalize(picture, info.mean, info.std));
}

Tensor unnormalise(const Tensor& input, const nn::ModelInfo& info) {
  LOUPE_CHECK(input.dim() == 3, "explain: expected a (C, H, W) input, got ", shape_str(input.shape()));
  const int64_t c = input.size(0);
  auto per_channel = [&](const std::vector<double>& v, const char* what) {
    LOUPE_CHECK(v.size() == 1 || static_cast<int64_t>(v.size()) == c, "explain: ", what, " has ", v.size(),
                " values for ", c, " channels");
    std::vector<double> out(static_cast<size_t>(c));
    for (int64_t i = 0; i < c; ++i) out[static_cast<size_t>(i)] = v[v.size() == 1 ? 0 : static_cast<size_t>(i)];
    return from_values(out, {c, 1, 1}, input.dtype());
  };
  const Tensor picture = ops::add(ops::mul(input, per_channel(info.std, "std")), per_channel(info.mean, "mean"));
  return ops::contiguous(ops::clamp(picture, 0.0, 1.0));
}

ReportInput load_report_input(const std::string& path, const nn::ModelInfo& info) {
  ReportInput in;
  in.source = path;
  in.name = fs::path(path).stem().string();
  std::string ext = fs::path(path).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char ch) { return std::tolower(ch); });
  Tensor image;
  if (ext == ".npy") {
    image = load_npy(path);
    LOUPE_CHECK(image.dtype() == DType::f32 || image.dtype() == DType::f64, "explain: '", path,
                "' holds ", dtype_name(image.dtype()), " values; expected a float image in [0, 1]");
    if (image.dim() == 4 && image.size(0) == 1) image = ops::select(image, 0, 0);
    LOUPE_CHECK(image.dim() == 2 || (image.dim() == 3 && (image.size(0) == 1 || image.size(0) == 3)),
                "explain: '", path, "' holds an array of shape ", shape_str(image.shape()),
                "; expected an image (H, W), (C, H, W) or (1, C, H, W) with C = 1 or 3");
    LOUPE_CHECK(image.numel() > 0, "explain: '", path, "' holds an empty array");
  } else {
    image = nn::load_image(path);  // raises naming the file
  }
  in.input = preprocess_image(image, info, &in.display);
  return in;
}

// --- running -------------------------------------------------------------------------------------

namespace {

// Letters, digits, '-', '_' and '.'; anything else becomes '_'.
std::string safe_name(const std::string& text) {
  std::string out;
  for (unsigned char ch : text) out += (std::isalnum(ch) || ch == '-' || ch == '_' || ch == '.') ? char(ch) : '_';
  if (out.empty() || out[0] == '.') out = "_" + out;
  return out;
}

std::vector<int64_t> parse_target_list(const std::string& text, const std::vector<std::string>& labels) {
  const int64_t k = static_cast<int64_t>(labels.size());
  std::vector<int64_t> out;
  std::stringstream items(text);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty()) continue;
    std::optional<int64_t> index;
    for (int64_t i = 0; i < k; ++i)
      if (labels[static_cast<size_t>(i)] == item) index = i;
    if (!index) {
      size_t used = 0;
      try {
        const int64_t n = std::stoll(item, &used);
        if (used == item.size()) index = n;
      } catch (...) {
      }
    }
    LOUPE_CHECK(index.has_value(), "explain: target '", item,
                "' is neither a class index nor a label (use an index, a label, predicted or all-positive)");
    LOUPE_CHECK(*index >= 0 && *index < k, "explain: target ", *index, " is out of range for ", k, " classes");
    if (std::find(out.begin(), out.end(), *index) == out.end()) out.push_back(*index);
  }
  LOUPE_CHECK(!out.empty(), "explain: no target given");
  return out;
}

// The classes to explain for one image.
std::vector<int64_t> resolve_targets(const std::string& spec, bool multilabel, const std::vector<double>& probs,
                                     int64_t predicted, const std::vector<std::string>& labels) {
  std::string mode = spec;
  if (mode == "auto") mode = multilabel ? "all-positive" : "predicted";
  if (mode == "predicted") return {predicted};
  if (mode == "all-positive") {
    if (!multilabel) return {predicted};
    std::vector<int64_t> out;
    for (size_t i = 0; i < probs.size(); ++i)
      if (probs[i] >= 0.5) out.push_back(static_cast<int64_t>(i));
    if (out.empty()) out.push_back(predicted);  // nothing positive: explain the most likely label
    return out;
  }
  return parse_target_list(spec, labels);
}

Output default_output(bool multilabel) { return multilabel ? Output::sigmoid : Output::logit; }

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Runs one method. `mask` is the (1, H, W) feature mask of the mask-based methods (undefined for
// the others); `image_size` sizes the default occlusion window.
Attribution run_method(MethodKind kind, const Query& q, const ReportOptions& o, Generator& generator,
                       const Tensor& mask, int64_t image_size) {
  const int64_t batch = std::max<int64_t>(o.internal_batch, 0);
  const int64_t samples = method_samples(kind, o);
  const int64_t per_eval = o.perturbations_per_eval;
  auto tunnel = [&](NoiseType type) {
    NoiseTunnelOptions nt;
    nt.type = type;
    nt.n_samples = samples;
    nt.stdevs = {o.noise};
    nt.relative_to_range = true;
    nt.internal_batch_size = batch;
    nt.generator = &generator;
    return noise_tunnel(q, [](const Query& inner) { return saliency(inner); }, nt);
  };
  const std::vector<Tensor> feature_mask = mask.defined() ? std::vector<Tensor>{mask} : std::vector<Tensor>{};
  switch (kind) {
    case MethodKind::saliency: return saliency(q, {.absolute = true, .internal_batch_size = batch});
    case MethodKind::input_x_gradient: {
      // Relative to the baseline: (x - x') * gradient. With the black baseline that is the input x
      // gradient of the picture itself (p * df/dp, zero where the picture is black); with zeros
      // it is Captum's x * gradient (explain::input_x_gradient).
      Attribution a = saliency(q, {.absolute = false, .internal_batch_size = batch});
      const detail::Prepared p = detail::prepare(q, "input x gradient");
      for (size_t i = 0; i < a.attributions.size(); ++i)
        a.attributions[i] = ops::mul(ops::sub(p.inputs[i], p.baselines[i]), a.attributions[i]);
      return a;
    }
    case MethodKind::guided_backprop: return guided_backprop(q, {.internal_batch_size = batch});
    case MethodKind::deconvolution: return deconvolution(q, {.internal_batch_size = batch});
    case MethodKind::integrated_gradients:
      return integrated_gradients(q, {.n_steps = o.steps,
                                      .method = IntegrationRule::gauss_legendre,
                                      .internal_batch_size = batch,
                                      .return_convergence_delta = true});
    case MethodKind::deeplift:
      return deeplift(q, {.internal_batch_size = batch, .return_convergence_delta = true});
    case MethodKind::smoothgrad: return tunnel(NoiseType::smoothgrad);
    case MethodKind::smoothgrad_sq: return tunnel(NoiseType::smoothgrad_sq);
    case MethodKind::vargrad: return tunnel(NoiseType::vargrad);
    case MethodKind::occlusion: {
      // The window covers every channel: (C, w, w) with strides (C, s, s).
      const Tensor& x = q.inputs[0];
      const int64_t c = x.size(1), w = occlusion_window(o, image_size), st = occlusion_stride(o, image_size);
      LOUPE_CHECK(w <= x.size(2) && w <= x.size(3), "explain: the occlusion window ", w,
                  " is larger than the image (", x.size(2), "x", x.size(3), ")");
      LOUPE_CHECK(st <= w, "explain: the occlusion stride ", st, " is larger than the window ", w);
      return occlusion(q, {.windows = {Shape{c, w, w}}, .strides = {{c, st, st}}, .perturbations_per_eval = per_eval});
    }
    case MethodKind::feature_ablation:
      return feature_ablation(q, {.feature_mask = feature_mask, .perturbations_per_eval = per_eval});
    case MethodKind::lime:
      return lime(q, {.feature_mask = feature_mask,
                      .n_samples = samples,
                      .perturbations_per_eval = per_eval,
                      .generator = &generator});
    case MethodKind::clime:
      return clime(q, {.feature_mask = feature_mask,
                       .n_samples = samples,
                       .perturbations_per_eval = per_eval,
                       .generator = &generator});
    case MethodKind::kernel_shap:
      return kernel_shap(q, {.feature_mask = feature_mask,
                             .n_samples = samples,
                             .perturbations_per_eval = per_eval,
                             .generator = &generator});
    case MethodKind::shapley_sampling:
      return shapley_value_sampling(q, {.feature_mask = feature_mask,
                                        .n_samples = samples,
                                        .perturbations_per_eval = per_eval,
                                        .generator = &generator});
  }
  throw Error("explain: unknown method");
}

}  // namespace

Attribution run_report_method(MethodKind kind, const Query& query, const ReportOptions& options, Generator& generator,
                              const Tensor& mask, int64_t image_size) {
  return run_method(kind, query, options, generator, mask, image_size);
}

namespace {

void check_options(const ReportOptions& o) {
  LOUPE_CHECK(!o.methods.empty(), "explain: no method to run");
  LOUPE_CHECK(o.steps >= 1, "explain: steps must be at least 1, got ", o.steps);
  LOUPE_CHECK(o.samples >= 0, "explain: samples must be at least 1 (0: each method's default), got ", o.samples);
  LOUPE_CHECK(o.window >= 0, "explain: the occlusion window must be at least 1 pixel (0: automatic), got ", o.window);
  LOUPE_CHECK(o.stride >= 0, "explain: the occlusion stride must be at least 1 pixel (0: automatic), got ", o.stride);
  LOUPE_CHECK(o.perturbations_per_eval >= 0,
              "explain: perturbations per eval must be at least 1 (0: as many as fit), got ", o.perturbations_per_eval);
  bool needs_mask = false;
  for (MethodKind kind : o.methods) needs_mask |= uses_feature_mask(kind);
  if (needs_mask && o.grid.rfind("slic:", 0) != 0) parse_grid(o.grid);  // a bad --grid fails before any work
  LOUPE_CHECK(std::isfinite(o.noise) && o.noise >= 0.0, "explain: noise must be a non-negative number, got ", o.noise);
  LOUPE_CHECK(o.internal_batch >= 0, "explain: internal batch must be 0 (all at once) or more, got ",
              o.internal_batch);
  LOUPE_CHECK(o.clip_percentile > 0.0 && o.clip_percentile <= 100.0,
              "explain: clip percentile must lie in (0, 100], got ", o.clip_percentile);
  LOUPE_CHECK(o.alpha >= 0.0 && o.alpha <= 1.0, "explain: alpha must lie in [0, 1], got ", o.alpha);
}

// The baseline as a (1, C, H, W) float32 tensor, or undefined for zeros.
Tensor resolve_baseline(const Tensor& baseline, const Shape& input_shape) {
  if (!baseline.defined()) return Tensor();
  LOUPE_CHECK(baseline.dtype() == DType::f32 || baseline.dtype() == DType::f64,
              "explain: the baseline must hold floats, got ", dtype_name(baseline.dtype()));
  Tensor b = baseline;
  if (b.dim() == 4 && b.size(0) == 1) b = ops::select(b, 0, 0);
  bool fits = b.dim() <= 3;
  for (int64_t d = 1; fits && d <= b.dim(); ++d) {
    const int64_t have = b.size(-d), want = input_shape[input_shape.size() - static_cast<size_t>(d)];
    fits = have == want || have == 1;
  }
  LOUPE_CHECK(fits, "explain: a baseline of shape ", shape_str(baseline.shape()),
              " does not broadcast to the model input ", shape_str(input_shape));
  return ops::unsqueeze(ops::contiguous(ops::expand(ops::to_dtype(b, DType::f32), input_shape)), 0);
}

}  // namespace

Report explain_to_folder(nn::Module& model, const nn::ModelInfo& info, const std::vector<ReportInput>& inputs,
                         const ReportOptions& options, const std::string& folder) {
  check_options(options);
  LOUPE_CHECK(!inputs.empty(), "explain: no input images");
  Report report;
  report.title = options.title;
  report.checkpoint = options.checkpoint;
  report.model = info.model;
  report.multilabel = info.multilabel;
  report.output = options.output.value_or(default_output(info.multilabel));
  report.options = options;
  report.options.progress = nullptr;
  report.folder = folder;
  report.image_size = info.image_size;

  std::error_code ec;
  fs::create_directories(folder, ec);
  LOUPE_CHECK(fs::is_directory(folder), "explain: cannot create the output folder '", folder, "'",
              ec ? ": " + ec.message() : std::string());

  const Shape input_shape = {info.in_channels, info.image_size, info.image_size};
  const Tensor baseline = resolve_baseline(options.baseline, input_shape);
  const ForwardFn forward = as_forward(model);

  // First pass: probabilities and targets of every image, so the amount of work is known.
  std::set<std::string> used_names;
  int64_t total = 0;
  std::vector<Tensor> batches;
  for (const ReportInput& in : inputs) {
    LOUPE_CHECK(in.input.defined() && in.input.shape() == input_shape, "explain: input '", in.source,
                "' has shape ", in.input.defined() ? shape_str(in.input.shape()) : std::string("(none)"),
                "; the model takes ", shape_str(input_shape));
    ReportImage image;
    image.source = in.source;
    // A safe, unique file-name stem.
    const std::string stem = safe_name(in.name.empty() ? "image" : in.name);
    std::string name = stem;
    for (int n = 2; used_names.count(name); ++n) name = stem + "-" + std::to_string(n);
    used_names.insert(name);
    image.name = name;

    // (1, C, H, W) on the model's device; results come back to the CPU for the files.
    const Tensor x = ops::to_device(ops::unsqueeze(ops::to_dtype(in.input, DType::f32), 0), model.device());
    Tensor logits;
    {
      NoGradGuard no_grad;
      logits = model.forward(x);
    }
    LOUPE_CHECK(logits.dim() == 2 && logits.size(0) == 1, "explain: the model gave outputs of shape ",
                shape_str(logits.shape()), "; expected (1, classes)");
    const int64_t k = logits.size(1);
    if (report.labels.empty()) {
      report.labels = info.labels;
      if (static_cast<int64_t>(report.labels.size()) != k) {
        report.labels.clear();
        for (int64_t i = 0; i < k; ++i) report.labels.push_back(std::to_string(i));
      }
    }
    const Tensor probs = ops::to_device(info.multilabel ? ops::sigmoid(logits) : ops::softmax(logits, 1), Device::cpu());
    image.probabilities = to_vector<double>(probs);
    image.predicted = static_cast<int64_t>(std::max_element(image.probabilities.begin(), image.probabilities.end()) -
                                           image.probabilities.begin());
    const std::string& spec = in.target.empty() ? options.target : in.target;
    for (int64_t t : resolve_targets(spec, info.multilabel, image.probabilities, image.predicted, report.labels)) {
      ReportTarget target;
      target.index = t;
      target.label = report.labels[static_cast<size_t>(t)];
      target.probability = image.probabilities[static_cast<size_t>(t)];
      image.targets.push_back(target);
    }
    total += static_cast<int64_t>(image.targets.size() * options.methods.size());
    batches.push_back(x);
    report.images.push_back(std::move(image));
  }

  // Second pass: the attributions.
  Generator generator(options.seed);
  HeatmapOptions heat;
  heat.clip_percentile = options.clip_percentile;
  heat.alpha = options.alpha;
  int64_t done = 0;
  if (options.progress) options.progress(0, total);
  for (size_t i = 0; i < report.images.size(); ++i) {
    ReportImage& image = report.images[i];
    const ReportInput& in = inputs[i];
    // The picture for the overlays: as given, else the input with its normalisation undone.
    const Tensor display = in.display.defined() ? in.display : unnormalise(in.input, info);
    LOUPE_CHECK(display.dim() == 3 && display.size(1) == info.image_size && display.size(2) == info.image_size,
                "explain: the picture of input '", in.source, "' has shape ", shape_str(display.shape()),
                "; expected (1 or 3, ", info.image_size, ", ", info.image_size, ")");
    image.input_png = image.name + "_input.png";
    nn::save_png((fs::path(folder) / image.input_png).string(), display);
    // The feature mask of the mask-based methods, made from the picture the model sees.
    Tensor mask;
    if (std::any_of(options.methods.begin(), options.methods.end(), uses_feature_mask)) {
      const Tensor plane = report_feature_mask(options, display);  // (H, W) on the CPU
      image.features = feature_count(plane);
      image.mask_png = image.name + "_mask.png";
      save_mask_png((fs::path(folder) / image.mask_png).string(), display, plane);
      mask = ops::to_device(ops::unsqueeze(plane, 0), batches[i].device());  // (1, H, W): every channel
    }
    // Every target of the image in one call per method: the result rows follow the targets, and
    // the perturbation methods answer all of them from the same forward passes.
    std::vector<int64_t> classes;
    for (const ReportTarget& target : image.targets) classes.push_back(target.index);
    Query q{forward, {batches[i]}, Target::each_of(classes), report.output};
    q.baselines = {Baseline(baseline.defined() ? baseline
                                               : make_baseline(options.baseline_kind, batches[i],
                                                               {.mean = info.mean,
                                                                .std = info.std,
                                                                .data_mean = options.data_mean,
                                                                .seed = options.seed}))};
    for (MethodKind kind : options.methods) {
      const MethodInfo& m = method_info(kind);
      const auto start = std::chrono::steady_clock::now();
      const Attribution a = run_method(kind, q, options, generator, mask, info.image_size);
      const double seconds = seconds_since(start) / static_cast<double>(classes.size());
      const Tensor rows = ops::to_device(ops::contiguous(ops::to_dtype(a.attributions[0], DType::f32)), Device::cpu());
      const Tensor deltas = a.delta.defined() ? ops::to_device(a.delta, Device::cpu()) : Tensor();
      for (size_t t = 0; t < image.targets.size(); ++t) {
        ReportTarget& target = image.targets[t];
        const std::string stem = image.targets.size() == 1 ? image.name : image.name + "_" + safe_name(target.label);
        ReportAttribution r;
        r.method = m.name;
        r.seconds = seconds;
        r.is_signed = m.is_signed;
        const Tensor attribution = ops::contiguous(ops::select(rows, 0, static_cast<int64_t>(t)));
        r.total = ops::sum(ops::to_dtype(attribution, DType::f64)).item();
        r.delta = deltas.defined() ? ops::select(deltas, 0, static_cast<int64_t>(t)).item()
                                   : std::numeric_limits<double>::quiet_NaN();
        r.npy = stem + "_" + m.name + ".npy";
        r.map_png = stem + "_" + m.name + ".png";
        r.overlay_png = stem + "_" + m.name + "_overlay.png";
        save_npy((fs::path(folder) / r.npy).string(), attribution);
        heat.reduction = m.is_signed ? MapReduction::sum : MapReduction::abs_sum;
        const Heatmap h = make_heatmap(attribution, display, heat);
        save_heatmap(h, (fs::path(folder) / r.map_png).string(), (fs::path(folder) / r.overlay_png).string());
        target.attributions.push_back(r);
        if (options.progress) options.progress(++done, total);
      }
    }
  }
  write_text_file((fs::path(folder) / "report.html").string(), report_html(report));
  return report;
}

// --- writing -------------------------------------------------------------------------------------

void write_text_file(const std::string& path, const std::string& text) { report::write_text_atomic(path, text); }

std::string report_baseline_name(const ReportOptions& options) {
  return options.baseline.defined() ? "file" : baseline_name(options.baseline_kind);
}

namespace {

// File names in src attributes: the names are already safe; spaces and the like are not possible.
std::string url(const std::string& name) { return report::html_escape(name); }

std::string number(double v, const char* format = "%.9g") {
  if (!std::isfinite(v)) return "null";
  char buf[40];
  std::snprintf(buf, sizeof buf, format, v);
  return buf;
}

const char* output_name(Output o) {
  switch (o) {
    case Output::logit: return "logit";
    case Output::sigmoid: return "sigmoid";
    case Output::softmax: return "softmax";
  }
  return "?";
}

std::string settings_text(const Report& r) {
  std::ostringstream s;
  s << "explained output: " << output_name(r.output) << "; IG: Gauss-Legendre, " << r.options.steps
    << " steps; smoothgrad family: " << method_samples(MethodKind::smoothgrad, r.options) << " samples, noise "
    << r.options.noise << " of the input range";
  bool mask_methods = false, occluded = false;
  for (MethodKind kind : r.options.methods) {
    mask_methods |= uses_feature_mask(kind);
    occluded |= kind == MethodKind::occlusion;
  }
  if (occluded) {
    s << "; occlusion: window " << occlusion_window(r.options, r.image_size) << ", stride "
      << occlusion_stride(r.options, r.image_size);
  }
  if (mask_methods) {
    s << "; features: " << r.options.grid << "; LIME, C-LIME and KernelSHAP: "
      << method_samples(MethodKind::kernel_shap, r.options) << " samples; Shapley sampling: "
      << method_samples(MethodKind::shapley_sampling, r.options) << " orders";
  }
  s << "; baseline: " << report_baseline_name(r.options) << " ("
    << (r.options.baseline.defined() ? std::string("a tensor given by the caller") : baseline_description(r.options.baseline_kind))
    << ")"
    << "; maps clipped at the " << r.options.clip_percentile << "th percentile of |attribution|";
  return s.str();
}

// Class indices by falling probability, at most `count`.
std::vector<size_t> top_classes(const std::vector<double>& probs, size_t count) {
  std::vector<size_t> order(probs.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return probs[a] > probs[b]; });
  order.resize(std::min(order.size(), count));
  return order;
}

}  // namespace

std::string report_html(const Report& r) {
  std::ostringstream h;
  h << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" << report::html_escape(r.title)
    << "</title>\n<style>\n"
    << "body { font-family: sans-serif; margin: 1.5em; color: #222; }\n"
    << "section { border-top: 1px solid #ccc; margin-top: 1.5em; padding-top: 0.5em; }\n"
    << "figure { display: inline-block; margin: 0.3em; text-align: center; vertical-align: top; }\n"
    << "figure img { width: 160px; height: 160px; image-rendering: pixelated; border: 1px solid #ddd; }\n"
    << "figcaption { font-size: 0.8em; max-width: 160px; }\n"
    << "table.probs td { padding: 0 0.6em 0 0; font-size: 0.9em; }\n"
    << ".bar { background: #4a7bb7; height: 0.7em; display: inline-block; }\n"
    << ".target { font-weight: bold; }\n"
    << ".note { font-size: 0.85em; color: #555; }\n"
    << "</style>\n</head>\n<body>\n";
  h << "<h1>" << report::html_escape(r.title) << "</h1>\n";
  h << "<p>Model <b>" << report::html_escape(r.model) << "</b>";
  if (!r.checkpoint.empty()) h << " from <code>" << report::html_escape(r.checkpoint) << "</code>";
  h << " (" << (r.multilabel ? "multilabel, sigmoid per label" : "single label, softmax") << ").</p>\n";
  h << "<p class=\"note\">" << report::html_escape(settings_text(r))
    << ". Signed maps: red = evidence for the target, blue = against, white = none. Absolute maps: "
       "dark = little, bright = much.</p>\n";
  for (const ReportImage& image : r.images) {
    h << "<section>\n<h2>" << report::html_escape(image.name) << "</h2>\n<p class=\"note\">" << report::html_escape(image.source)
      << "</p>\n";
    h << "<figure><img src=\"" << url(image.input_png) << "\" alt=\"input\"><figcaption>input</figcaption></figure>\n";
    if (!image.mask_png.empty()) {
      h << "<figure><img src=\"" << url(image.mask_png) << "\" alt=\"feature mask\"><figcaption>" << image.features
        << " features (" << report::html_escape(r.options.grid) << ")</figcaption></figure>\n";
    }
    h << "<table class=\"probs\">\n";
    for (size_t c : top_classes(image.probabilities, 10)) {
      const double p = image.probabilities[c];
      bool is_target = false;
      for (const ReportTarget& t : image.targets) is_target |= static_cast<size_t>(t.index) == c;
      h << "<tr" << (is_target ? " class=\"target\"" : "") << "><td>" << report::html_escape(r.labels[c]) << "</td><td>"
        << number(p, "%.4f") << "</td><td><span class=\"bar\" style=\"width: " << number(100.0 * p, "%.1f")
        << "px\"></span></td></tr>\n";
    }
    h << "</table>\n";
    for (const ReportTarget& t : image.targets) {
      h << "<h3>target " << report::html_escape(t.label) << " (class " << t.index << ", probability "
        << number(t.probability, "%.4f") << ")</h3>\n<div>\n";
      for (const ReportAttribution& a : t.attributions) {
        std::string title = a.method;
        for (const MethodInfo& m : report_methods())
          if (m.name == a.method) title = m.title;
        std::string caption = report::html_escape(title);
        if (std::isfinite(a.delta)) caption += "<br>delta " + number(a.delta, "%.2e");
        h << "<figure><a href=\"" << url(a.npy) << "\"><img src=\"" << url(a.map_png) << "\" alt=\""
          << report::html_escape(a.method) << " map\"></a><figcaption>" << caption << "</figcaption></figure>";
        h << "<figure><img src=\"" << url(a.overlay_png) << "\" alt=\"" << report::html_escape(a.method)
          << " overlay\"><figcaption>" << report::html_escape(title) << " over the input</figcaption></figure>\n";
      }
      h << "</div>\n";
    }
    h << "</section>\n";
  }
  h << "</body>\n</html>\n";
  return h.str();
}

std::string report_json(const Report& r) {
  std::ostringstream j;
  j << "{\n  \"model\": " << json::quote(r.model) << ",\n  \"checkpoint\": " << json::quote(r.checkpoint)
    << ",\n  \"multilabel\": " << (r.multilabel ? "true" : "false") << ",\n  \"output\": "
    << json::quote(output_name(r.output)) << ",\n  \"folder\": " << json::quote(r.folder)
    << ",\n  \"report\": \"report.html\",\n  \"settings\": {\"steps\": " << r.options.steps
    << ", \"samples\": " << r.options.samples << ", \"noise\": " << number(r.options.noise)
    << ", \"window\": " << occlusion_window(r.options, r.image_size)
    << ", \"stride\": " << occlusion_stride(r.options, r.image_size) << ", \"grid\": " << json::quote(r.options.grid)
    << ", \"perturbations_per_eval\": " << r.options.perturbations_per_eval
    << ", \"internal_batch\": " << r.options.internal_batch << ", \"baseline\": "
    << json::quote(report_baseline_name(r.options)) << ", \"clip_percentile\": "
    << number(r.options.clip_percentile) << ", \"seed\": " << r.options.seed << "},\n  \"labels\": [";
  for (size_t i = 0; i < r.labels.size(); ++i) j << (i ? ", " : "") << json::quote(r.labels[i]);
  j << "],\n  \"images\": [";
  for (size_t i = 0; i < r.images.size(); ++i) {
    const ReportImage& image = r.images[i];
    j << (i ? "," : "") << "\n    {\"name\": " << json::quote(image.name)
      << ", \"source\": " << json::quote(image.source) << ", \"input_png\": " << json::quote(image.input_png) << ", \"mask_png\": "
      << json::quote(image.mask_png) << ", \"features\": " << image.features << ", \"predicted\": " << image.predicted
      << ", \"probabilities\": [";
    for (size_t c = 0; c < image.probabilities.size(); ++c) j << (c ? ", " : "") << number(image.probabilities[c]);
    j << "],\n     \"targets\": [";
    for (size_t t = 0; t < image.targets.size(); ++t) {
      const ReportTarget& target = image.targets[t];
      j << (t ? "," : "") << "\n       {\"index\": " << target.index << ", \"label\": " << json::quote(target.label)
        << ", \"probability\": " << number(target.probability) << ", \"attributions\": [";
      for (size_t m = 0; m < target.attributions.size(); ++m) {
        const ReportAttribution& a = target.attributions[m];
        j << (m ? "," : "") << "\n         {\"method\": " << json::quote(a.method) << ", \"signed\": "
          << (a.is_signed ? "true" : "false") << ", \"npy\": " << json::quote(a.npy) << ", \"map\": "
          << json::quote(a.map_png) << ", \"overlay\": " << json::quote(a.overlay_png) << ", \"sum\": "
          << number(a.total) << ", \"delta\": " << number(a.delta) << ", \"seconds\": " << number(a.seconds, "%.4f")
          << "}";
      }
      j << "]}";
    }
    j << "]}";
  }
  j << "\n  ]\n}\n";
  return j.str();
}

}  // namespace loupe::explain
