// A Mixture-of-Transformers layer (Liang et al. 2024; REFERENCE.md section 8's relatives), the
// `--arm mot` of the Uni-X experiment: every non-embedding weight of a decoder layer exists once per
// modality (q, k, v, o, the QK-norms, both RMSNorms, the MLP), each token uses its own modality's
// weights, and attention is GLOBAL (causal over all tokens of both modalities) — unlike a Uni-X
// separated layer, whose attention is same-modality only.
//
//   x (B, T, C), vision (B, T) bool -> (B, T, C)
//   h = rms_m(x); q, k, v = proj_m(h) per token (m its modality); QK-norm_m; RoPE; causal attention
//   x = x + o_m(attn); x = x + mlp_m(rms2_m(x))
// Both copies run on every token and `where` keeps each token's own (a copy's weights get zero
// gradient from the other modality's positions). With equal copies the layer is exactly a shared
// nn::DecoderLayer (tests/unix/test_mot.cpp checks this against nn::DecoderLM).
// Parameter names: text.<decoder layer names>, vision.<...> (as SeparatedLayer's).
// Tests: tests/unix/test_mot.cpp
#pragma once

#include <memory>
#include <string>

#include "nn/layers/transformer.hpp"

#if defined(unix)
#error "unix/ needs -std=c++20 (GNU dialects predefine the macro 'unix', the name of this namespace)"
#endif

namespace loupe::unix {

class MoTLayer : public nn::Module {
 public:
  MoTLayer(const nn::DecoderConfig& config, Generator* generator = nullptr);
  Tensor forward(const Tensor& x) override;  // throws: routing needs the vision mask
  // positions (B, T) or (1, T) int64; cache: keys/values of earlier tokens (extended in place).
  Tensor forward(const Tensor& x, const Tensor& vision, const Tensor& positions, nn::LayerCache* cache = nullptr);
  std::string type_name() const override { return "MoTLayer"; }

  std::shared_ptr<nn::DecoderLayer> text, vision;
};

}  // namespace loupe::unix
