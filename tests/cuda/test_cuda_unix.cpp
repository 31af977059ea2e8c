// GPU case for unix/: the gradient-conflict analysis accumulates mean gradients in float64 on the
// parameters' device, and the routing mask and batches move with the tensors; on the GPU the rows
// must match the CPU's. Skipped without a GPU.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/autograd.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "tests/support.hpp"
#include "unix/conflict.hpp"
#include "unix/data.hpp"
#include "unix/loss.hpp"

namespace loupe::test {

namespace {

// A two-matrix "layer": logits = tanh(x Wq) Wo, x (B, T, D) fixed per batch.
std::vector<unix::ConflictRow> conflict_rows_on(Device device) {
  const int64_t B = 2, T = 5, D = 6, H = 4, V = 7;
  Tensor wq = to_device(random_tensor({D, H}, DType::f32, -1.0, 1.0, 3), device).detach();
  Tensor wo = to_device(random_tensor({H, V}, DType::f32, -1.0, 1.0, 4), device).detach();
  wq.set_requires_grad();
  wo.set_requires_grad();
  const nn::NamedTensors matrices = {{"model.layers.0.self_attn.q_proj.weight", wq},
                                     {"model.layers.0.self_attn.o_proj.weight", wo}};
  auto logits_of = [&](uint64_t seed) {
    const Tensor x = to_device(random_tensor({B, T, D}, DType::f32, -1.0, 1.0, seed), device);
    return matmul(tanh(matmul(x, wq)), wo);  // (B, T, V)
  };
  const Tensor targets = to_device(random_indices({B, T}, 0, V, 5), device);
  const Tensor modality = to_device(from_values(std::vector<int64_t>{1, 1, 2, 2, 0, 1, 2, 2, 1, 1}, {B, T}), device);
  const Tensor mask = ops::to_dtype(ops::ne(modality, ops::scalar_like(0.0, modality)), DType::f32);
  const Tensor image = ops::to_dtype(ops::eq(modality, ops::scalar_like(1.0, modality)), DType::f32);
  const Tensor text = ops::to_dtype(ops::eq(modality, ops::scalar_like(2.0, modality)), DType::f32);
  unix::ConflictInputs inputs;
  inputs.text_loss = [&](int64_t i) { return unix::masked_token_loss(logits_of(100 + i), targets, mask); };
  inputs.text_batches = 3;
  inputs.multimodal_loss = [&](int64_t i) { return unix::masked_token_loss(logits_of(200 + i), targets, mask); };
  inputs.multimodal_batches = 3;
  inputs.within_batch_losses = [&](int64_t i) {
    const Tensor logits = logits_of(200 + i);
    return std::make_pair(unix::masked_token_loss(logits, targets, image), unix::masked_token_loss(logits, targets, text));
  };
  return unix::gradient_conflict(inputs, matrices, {});
}

}  // namespace

TEST_CASE("cuda: the gradient-conflict rows on the GPU match the CPU's" * doctest::skip(kNoGpu)) {
  const auto on_cpu = conflict_rows_on(Device::cpu());
  const auto on_gpu = conflict_rows_on(kGpu);
  REQUIRE(on_gpu.size() == on_cpu.size());
  for (size_t r = 0; r < on_cpu.size(); ++r) {
    CAPTURE(on_cpu[r].kind);
    CHECK(on_gpu[r].cos_text_mm == doctest::Approx(on_cpu[r].cos_text_mm).epsilon(1e-4));
    CHECK(on_gpu[r].cos_a_b == doctest::Approx(on_cpu[r].cos_a_b).epsilon(1e-4));
    CHECK(on_gpu[r].within_batch_cos_image_text == doctest::Approx(on_cpu[r].within_batch_cos_image_text).epsilon(1e-4));
  }
}

TEST_CASE("cuda: the routing mask and batches on the GPU" * doctest::skip(kNoGpu)) {
  const unix::Vocabulary vocab = unix::Vocabulary::build({"abc"}, 4);
  std::vector<int64_t> ids;
  for (int64_t id = 0; id < vocab.size(); ++id) ids.push_back(id);
  const Tensor tokens = from_values(ids, {1, vocab.size()});
  CHECK(to_vector<int64_t>(vocab.vision_mask(gpu(tokens))) == to_vector<int64_t>(vocab.vision_mask(tokens)));
  const std::vector<unix::Sequence> seqs = {unix::text_window(vocab, "abcabc", 0, 4)};
  const unix::Batch batch = unix::to_device(unix::make_batch(seqs, {0}, 6), kGpu);
  CHECK(batch.tokens.device() == kGpu);
  CHECK(ops::sum(unix::modality_mask(batch, unix::Modality::text)).item() == 4.0);
}

}  // namespace loupe::test
