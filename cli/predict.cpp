// `loupe predict`: per-image probabilities of a checkpoint, one line per image with every label's
// probability (softmax for single-label models, sigmoid for multilabel ones) and the prediction;
// --json prints the same as JSON instead. Images go through the model's own pipeline
// (nn::image_transform: grey, resize with zero padding, normalisation, channels).
//   loupe predict --model runs/cxr/best.safetensors --input a.png b.png
#include <cstdio>
#include <iomanip>
#include <iostream>
#include <sstream>

#include "cli/args.hpp"
#include "cli/commands.hpp"
#include "cli/train_common.hpp"
#include "nn/data/image.hpp"
#include "tensor/ops.hpp"

namespace loupe::cli {

namespace {

const std::vector<OptionSpec> kPredictOptions = {
    {"model", "CKPT", "", "checkpoint written by loupe train"},
    {"input", "IMAGE..", "", "one or more image files (PNG, JPEG, BMP)"},
    {"threshold", "P", "0.5", "multilabel decision threshold"},
    {"device", "NAME", "cpu", "cpu, cuda or cuda:N (a GPU needs a build with the CUDA backend)"},
    {"json", "", "", "print JSON instead of text"},
};

std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

int run_predict(int argc, char** argv) {
  // --input takes every following argument up to the next option; the rest goes to the parser.
  std::vector<std::string> inputs;
  std::vector<char*> rest(argv, argv + std::min(argc, 2));
  for (int i = 2; i < argc; ++i) {
    if (std::string(argv[i]) == "--input") {
      while (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) inputs.emplace_back(argv[++i]);
      LOUPE_CHECK(!inputs.empty(), "option --input needs at least one image file");
    } else {
      rest.push_back(argv[i]);
    }
  }
  const Args args(kPredictOptions, static_cast<int>(rest.size()), rest.data(), 2);
  if (args.help()) {
    std::cout << usage("predict", "Per-image probabilities of a checkpoint.", kPredictOptions);
    return 0;
  }
  const Device device = parse_device_option(args.get("device"));
  LOUPE_CHECK(!args.get("model").empty(), "predict: --model CKPT is required");
  LOUPE_CHECK(!inputs.empty(), "predict: --input IMAGE... is required");
  const double threshold = args.get_double("threshold");
  nn::ModelInfo info;
  std::shared_ptr<nn::Module> model = nn::load_model(args.get("model"), &info);
  model->to(device);
  const nn::Compose transform = nn::image_transform(info);

  std::ostringstream json;
  json << "[";
  NoGradGuard no_grad;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Generator unused(0);
    const Tensor image = transform(nn::load_image(inputs[i]), unused);        // (C, S, S)
    const Tensor logits = (*model)(ops::to_device(ops::unsqueeze(image, 0), device));  // (1, K)
    const Tensor p = info.multilabel ? ops::sigmoid(logits) : ops::softmax(logits, 1);
    const std::vector<float> probabilities = to_vector<float>(ops::to_dtype(ops::reshape(p, {-1}), DType::f32));
    std::vector<std::string> predicted;
    size_t best = 0;
    for (size_t k = 0; k < probabilities.size(); ++k) {
      if (probabilities[k] > probabilities[best]) best = k;
      if (info.multilabel && probabilities[k] > threshold) predicted.push_back(info.labels[k]);
    }
    if (!info.multilabel) predicted.push_back(info.labels[best]);
    if (args.flag("json")) {
      json << (i ? ",\n " : "\n ") << "{\"file\": " << json_string(inputs[i]) << ", \"probabilities\": {";
      for (size_t k = 0; k < probabilities.size(); ++k) {
        json << (k ? ", " : "") << json_string(info.labels[k]) << ": " << std::setprecision(6) << probabilities[k];
      }
      json << "}, \"predicted\": [";
      for (size_t k = 0; k < predicted.size(); ++k) json << (k ? ", " : "") << json_string(predicted[k]);
      json << "]}";
    } else {
      std::cout << inputs[i];
      for (size_t k = 0; k < probabilities.size(); ++k) {
        std::printf("  %s %.4f", info.labels[k].c_str(), static_cast<double>(probabilities[k]));
      }
      std::cout << "  ->";
      if (predicted.empty()) std::cout << " (none)";
      for (const std::string& label : predicted) std::cout << " " << label;
      std::cout << std::endl;
    }
  }
  if (args.flag("json")) std::cout << json.str() << "\n]\n";
  return 0;
}

}  // namespace loupe::cli
