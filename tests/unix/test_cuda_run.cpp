// GPU cases for unix/run.hpp and unix/generate.hpp (compiled with the CUDA backend, skipped without
// a GPU): a run moved to the GPU (lm.to(cuda) after the CPU initialisation) must train, evaluate,
// measure the conflict and sample like the same run on the CPU — the batches follow the model's
// device. Tolerances: float32 training of a few steps, 1e-3 relative.
#include <doctest/doctest.h>

#include <cmath>

#include "autograd/autograd.hpp"
#include "tests/cuda/cuda_test_util.hpp"
#include "unix/generate.hpp"
#include "unix/run.hpp"

namespace loupe::test {

namespace {

unix::ImageSet gpu_images(int64_t n, int64_t offset) {
  unix::ImageSet set;
  set.name = "tiny";
  set.height = 3;
  set.width = 3;
  set.levels = 17;
  set.captions = unix::digit_captions();
  for (int64_t i = 0; i < n; ++i) {
    set.labels.push_back((i + offset) % 10);
    for (int64_t p = 0; p < 9; ++p) set.pixels.push_back(static_cast<uint8_t>((i * 7 + p * 3 + offset) % 17));
    set.source_index.push_back(i + offset);
  }
  return set;
}

unix::RunConfig gpu_run() {
  unix::RunConfig r;
  r.arm = "unix";
  r.layers = 3;
  r.hidden = 16;
  r.heads = 2;
  r.front = r.back = 1;
  r.steps = 4;
  r.batch_size = 4;
  r.lr = 0.01;
  r.seed = 2;
  return r;
}

}  // namespace

TEST_CASE("unix run on the GPU: training, held-out loss, conflict and sampling match the CPU" * doctest::skip(kNoGpu)) {
  std::string text;
  for (int i = 0; i < 40; ++i) text += "the quick brown fox jumps over the lazy dog. ";
  const unix::UnixData data = unix::make_unix_data(gpu_images(24, 0), gpu_images(6, 100), text, 0.2, 1);
  const unix::RunConfig run = gpu_run();
  const unix::UnixConfig config = unix::model_config(run, data.vocab.size());
  Generator g1(run.seed), g2(run.seed);
  unix::UnixLM on_cpu(config, &g1), on_gpu(config, &g2);
  on_gpu.to(kGpu);
  const unix::TrainResult a = unix::train_run(on_cpu, data, run);
  const unix::TrainResult b = unix::train_run(on_gpu, data, run);
  REQUIRE(a.losses.size() == b.losses.size());
  for (size_t i = 0; i < a.losses.size(); ++i) CHECK(b.losses[i] == doctest::Approx(a.losses[i]).epsilon(1e-3));
  CHECK(a.tokens == b.tokens);

  on_cpu.eval();
  on_gpu.eval();
  const std::vector<unix::Sequence> held = unix::heldout_set(data, -1).all();
  const auto ha = unix::heldout_losses(on_cpu, data.vocab, held, data.seq_len());
  const auto hb = unix::heldout_losses(on_gpu, data.vocab, held, data.seq_len());
  for (const auto& [m, h] : ha) CHECK(hb.at(m).loss == doctest::Approx(h.loss).epsilon(1e-3));

  const unix::ConflictBatches batches = unix::conflict_batches(data, 2, 3, 1);
  const auto ra = unix::run_conflict(on_cpu, data.vocab, batches, 4, 1);
  const auto rb = unix::run_conflict(on_gpu, data.vocab, batches, 4, 1);
  REQUIRE(ra.size() == rb.size());
  for (size_t i = 0; i < ra.size(); ++i) {
    CHECK(rb[i].cos_text_mm == doctest::Approx(ra[i].cos_text_mm).epsilon(1e-3));
    CHECK(rb[i].cos_a_b == doctest::Approx(ra[i].cos_a_b).epsilon(1e-3));
  }

  unix::SampleOptions options;
  options.max_new_tokens = 9;
  options.allowed = unix::image_token_ids(data.vocab);
  const std::vector<int64_t> prompt = unix::caption_prompt(data.vocab, data.train_images.captions[7]);
  const Tensor p = from_values(prompt, {1, static_cast<int64_t>(prompt.size())});
  CHECK(to_vector<int64_t>(cpu(unix::generate(on_gpu, data.vocab, p, options))) ==
        to_vector<int64_t>(unix::generate(on_cpu, data.vocab, p, options)));
}

}  // namespace loupe::test
