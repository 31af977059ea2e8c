// Embedding: a (num_embeddings, embedding_dim) table "weight", initialised normal(0, 1) like
// torch.nn.Embedding, with the padding_idx row (if any) zeroed and receiving no gradient.
// forward(indices): int64 indices of any shape -> (*indices.shape, embedding_dim).
// padding_idx < 0 counts from the end as in PyTorch (-1 = the last row); pass no_padding for none.
// Tests: tests/nn/models/test_layers.cpp
#pragma once

#include <limits>
#include <string>

#include "nn/module.hpp"

namespace loupe::nn {

class Embedding : public Module {
 public:
  static constexpr int64_t no_padding = std::numeric_limits<int64_t>::min();

  Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx = no_padding,
            Generator* generator = nullptr);
  Tensor forward(const Tensor& indices) override;
  std::string type_name() const override { return "Embedding"; }
  int64_t padding_idx() const { return padding_idx_; }  // -1 when none

  Tensor weight;  // (num_embeddings, embedding_dim)

 private:
  int64_t padding_idx_ = -1;
};

}  // namespace loupe::nn
