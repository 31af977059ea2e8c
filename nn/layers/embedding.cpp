// Embedding. See embedding.hpp.
#include "nn/layers/embedding.hpp"

#include "nn/init.hpp"

namespace loupe::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim, int64_t padding_idx, Generator* generator) {
  LOUPE_CHECK(num_embeddings > 0 && embedding_dim > 0, "Embedding: sizes must be positive, got (", num_embeddings, ", ",
              embedding_dim, ")");
  if (padding_idx != no_padding) {
    LOUPE_CHECK(padding_idx >= -num_embeddings && padding_idx < num_embeddings, "Embedding: padding_idx ", padding_idx,
                " is out of range for ", num_embeddings, " embeddings");
    padding_idx_ = padding_idx < 0 ? padding_idx + num_embeddings : padding_idx;
  }
  weight = register_parameter("weight", Tensor::empty({num_embeddings, embedding_dim}));
  init::normal_(weight, 0.0, 1.0, generator);
  if (padding_idx_ >= 0) init::zeros_(ops::select(weight, 0, padding_idx_));
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight, indices, padding_idx_); }

}  // namespace loupe::nn
