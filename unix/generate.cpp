// Sampling from a UnixLM with or without the KV cache. See generate.hpp.
#include "unix/generate.hpp"

#include <limits>

#include "autograd/autograd.hpp"

namespace loupe::unix {

Tensor generate(UnixLM& lm, const Vocabulary& vocab, const Tensor& prompt, const SampleOptions& options) {
  LOUPE_CHECK(
      prompt.defined() && prompt.dim() == 2 && prompt.dtype() == DType::i64 && prompt.size(1) > 0,
      "unix generate: expected a prompt (B, T) int64 with T > 0, got ",
      prompt.defined() ? shape_str(prompt.shape()) + " " + dtype_name(prompt.dtype()) : std::string("undefined"));
  LOUPE_CHECK(options.max_new_tokens >= 0, "unix generate: max_new_tokens must be >= 0, got ", options.max_new_tokens);
  const int64_t V = lm.config().vocab_size;
  Tensor bias;  // (V): 0 where allowed, -inf elsewhere
  if (!options.allowed.empty()) {
    std::vector<double> values(static_cast<size_t>(V), -std::numeric_limits<double>::infinity());
    for (int64_t id : options.allowed) {
      LOUPE_CHECK(id >= 0 && id < V, "unix generate: allowed token ", id, " is outside the vocabulary [0, ", V, ")");
      values[static_cast<size_t>(id)] = 0.0;
    }
    bias = ops::to_device(from_values(values, {V}, DType::f32), lm.device());
  }
  NoGradGuard no_grad;
  const Tensor on_device = ops::to_device(prompt, lm.device());  // the device follows the model
  Tensor sequence = on_device;
  UnixCache cache = lm.make_cache();
  Tensor step_input = on_device;
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    Tensor logits;  // (B, t, V)
    if (options.use_cache) {
      logits = lm.forward_cached(step_input, vocab.vision_mask(step_input), cache);
    } else {
      logits = lm.forward(sequence, vocab.vision_mask(sequence));
    }
    Tensor last = ops::select(logits, 1, logits.size(1) - 1);  // (B, V)
    if (bias.defined()) last = ops::add(last, ops::to_dtype(bias, last.dtype()));
    const Tensor next =
        ops::unsqueeze(nn::sample_next(last, options.top_k, options.temperature, options.generator), 1);  // (B, 1)
    sequence = ops::cat({sequence, next}, 1);
    step_input = next;
  }
  return sequence;
}

std::vector<int64_t> caption_prompt(const Vocabulary& vocab, const std::string& caption) {
  std::vector<int64_t> ids = {Vocabulary::bos};
  const std::vector<int64_t> text = vocab.encode(caption);
  ids.insert(ids.end(), text.begin(), text.end());
  ids.push_back(Vocabulary::image_start);
  return ids;
}

std::vector<int64_t> image_token_ids(const Vocabulary& vocab) {
  std::vector<int64_t> ids;
  for (int64_t l = 0; l < vocab.image_levels(); ++l) ids.push_back(vocab.image_token(l));
  return ids;
}

Tensor levels_image(const Vocabulary& vocab, const std::vector<int64_t>& ids, int64_t height, int64_t width,
                    int64_t scale) {
  LOUPE_CHECK(height > 0 && width > 0 && scale > 0 && static_cast<int64_t>(ids.size()) == height * width,
              "unix levels_image: expected ", height, " x ", width, " = ", height * width,
              " tokens and scale > 0, got ", ids.size(), " tokens and scale ", scale);
  const double top = static_cast<double>(std::max<int64_t>(vocab.image_levels() - 1, 1));
  std::vector<float> pixels(static_cast<size_t>(height * scale * width * scale));
  for (int64_t y = 0; y < height * scale; ++y) {
    for (int64_t x = 0; x < width * scale; ++x) {
      const int64_t id = ids[static_cast<size_t>((y / scale) * width + x / scale)];
      LOUPE_CHECK(vocab.is_image_level_token(id), "unix levels_image: token ", id, " (", vocab.token_name(id),
                  ") is not an image level");
      pixels[static_cast<size_t>(y * width * scale + x)] = static_cast<float>(vocab.image_level(id) / top);
    }
  }
  return from_values(pixels, {1, height * scale, width * scale});
}

}  // namespace loupe::unix
