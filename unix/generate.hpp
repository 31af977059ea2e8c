// Drawing tokens from a UnixLM: greedy or top-k sampling, with the KV cache of unix/model.hpp
// (the prompt once, then one token per step; each new token is routed by its own id) or by full
// recomputation (tests check both give the same tokens). And the pieces `loupe unix sample` needs
// to draw digit images from a caption: the text-to-image prompt and the image of generated levels.
//
//   prompt (B, T) int64 -> (B, T + max_new_tokens) int64
//   caption_prompt: BOS caption IMAGE_START, the instruction part of a text-to-image sequence
//   levels_image: (H*W) codebook ids -> (1, H*scale, W*scale) f32 grey in [0, 1], nearest upscaling
// Tests: tests/unix/test_generate.cpp
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nn/layers/transformer.hpp"
#include "unix/data.hpp"
#include "unix/model.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

struct SampleOptions {
  int64_t max_new_tokens = 16;
  int64_t top_k = 1;  // 1: greedy
  double temperature = 1.0;
  Generator* generator = nullptr;  // draws for top_k > 1 (default_generator() when null)
  bool use_cache = true;           // false: recompute the whole sequence at every step
  std::vector<int64_t> allowed;    // token ids that may be drawn (empty: all)
};

// Runs without a graph, in the model's current mode. Routing of every token (prompt and drawn)
// comes from vocab.vision_mask.
Tensor generate(UnixLM& lm, const Vocabulary& vocab, const Tensor& prompt, const SampleOptions& options = {});

// BOS caption IMAGE_START: what a text-to-image sequence gives the model before the image.
std::vector<int64_t> caption_prompt(const Vocabulary& vocab, const std::string& caption);
// The image codebook ids (the allowed set when drawing pixels).
std::vector<int64_t> image_token_ids(const Vocabulary& vocab);
// ids (H*W) image codebook tokens -> (1, H*scale, W*scale) f32, level l as l / (levels - 1).
// Throws loupe::Error for an id outside the codebook.
Tensor levels_image(const Vocabulary& vocab, const std::vector<int64_t>& ids, int64_t height, int64_t width,
                    int64_t scale);

}  // namespace loupe::unix
